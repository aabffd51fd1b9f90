#!/usr/bin/env bash
# `make setup`: everything the controller needs, idempotent and quick on a ready machine.
#   - Debian packages the toolchain and lab need (only the missing ones are installed);
#   - .venv with the exact pins of requirements.txt (re-installed only when they change);
#   - a Docker engine that answers: an existing engine is left alone; otherwise the
#     distribution's engine is installed and dockerd started in the background (these
#     machines have no systemd as PID 1, so `systemctl start docker` cannot work).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
python=${PYTHON:-python3}
dockerd_log=/var/log/erplab-dockerd.log
min_free_gb=${SETUP_MIN_FREE_GB:-15}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $* (run as root or install sudo)"
  fi
}

ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && { say "Debian packages: present"; return; }
  command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
  say "Debian packages: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "could not install ${missing[*]} (is a Debian mirror reachable?)"
}

ensure_python() {
  "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "$python is missing or older than 3.11"
  local stamp="$venv/.requirements.sha256" want
  want=$(cat "$repo/requirements.txt" "$repo/erpctl/pyproject.toml" 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    say "Python toolchain: .venv up to date"
    return
  fi
  [ -x "$venv/bin/python" ] || { say "Python toolchain: creating .venv"; "$python" -m venv "$venv"; }
  say "Python toolchain: installing requirements.txt into .venv (about a minute)"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/requirements.txt" \
    || die "pip could not install requirements.txt (is PyPI reachable?)"
  if [ -f "$repo/erpctl/pyproject.toml" ]; then
    say "Python toolchain: installing the erpctl CLI (editable) into .venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$repo/erpctl" \
      || die "pip could not install erpctl"
  fi
  # The bundled collections satisfy requirements.yml, so this contacts no Galaxy server;
  # where they do not (a user pinned something newer) it tries Galaxy and we say so.
  if ! "$venv/bin/ansible-galaxy" collection install -r "$repo/requirements.yml" >/dev/null 2>&1; then
    say "WARNING: requirements.yml is not satisfied by the bundled collections and Galaxy is unreachable"
  fi
  echo "$want" > "$stamp"
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_docker() {
  if engine_answers; then
    say "Docker engine: running, left alone ($(docker info -f '{{.ServerVersion}}'))"
    return
  fi
  command -v dockerd >/dev/null 2>&1 || ensure_packages docker.io
  command -v dockerd >/dev/null 2>&1 || die "no Docker engine obtainable: dockerd is not installed and docker.io could not be installed"
  # A dockerd killed at the end of an earlier session leaves its pid file behind.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    as_root rm -f /var/run/docker.pid
  fi
  if pgrep -x dockerd >/dev/null 2>&1; then
    say "Docker engine: dockerd is running but not answering yet, waiting"
  elif command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    say "Docker engine: starting the docker service"
    as_root systemctl start docker
  else
    say "Docker engine: starting dockerd in the background (log: $dockerd_log)"
    as_root sh -c "nohup dockerd >>'$dockerd_log' 2>&1 &"
  fi
  local i
  for i in $(seq 1 60); do
    engine_answers && { say "Docker engine: ready ($(docker info -f '{{.ServerVersion}}'))"; return; }
    sleep 1
  done
  die "no Docker engine obtainable: dockerd did not answer within 60 s (see $dockerd_log)"
}

check_disk() {
  local dir=/var/lib/docker free_gb
  [ -d "$dir" ] || dir=/var/lib
  free_gb=$(df -P -BG "$dir" | awk 'NR==2 {gsub("G","",$4); print $4}')
  [ "$free_gb" -ge "$min_free_gb" ] \
    || die "not enough disk: ${free_gb} GB free under $dir, the lab needs ${min_free_gb} GB (set SETUP_MIN_FREE_GB to override)"
  say "disk: ${free_gb} GB free under $dir"
}

# promtool (package prometheus) checks the alert rules and metrics in the tests.
# age encrypts backups at rest (erp_backup) and its tests use it.
# chromium (headless) opens the run history's web UI in the lab tests (tests/lab/test_history.py).
ensure_packages openssh-client debootstrap rsync prometheus age chromium
ensure_python
check_disk
ensure_docker
say "done"
