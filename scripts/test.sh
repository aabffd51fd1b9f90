#!/usr/bin/env bash
# `make test`: every test stage, or the named ones (lint unit molecule backup lab).
# Fails on the first failing stage; prints one closing line of stage results.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
export PATH="$repo/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$repo/ansible.cfg"
export PY_COLORS=0 ANSIBLE_FORCE_COLOR=0

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint unit molecule backup lab)
passed=0

banner() { printf '\n===== %s =====\n' "$*"; }

# pytest exits 5 when it collected nothing: here that means tests went missing.
run_pytest() {
  local rc=0
  pytest "$@" || rc=$?
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests in $*: they are missing" >&2; return 1; fi
  return "$rc"
}

stage_lint() {
  ruff check .
  yamllint --strict .
  ansible-lint
}

# Two workers (pytest-xdist): the unit tests are independent, and half of their time is
# waiting for the ansible-playbook and ansible-inventory processes some of them start.
stage_unit() {
  run_pytest -q -n 2 tests/unit
}

# The scenarios load the reference images (postgres, erp-app) into their instances' engines.
# MOLECULE_JOBS scenarios run at a time (default 2): most of a scenario's time is waiting on
# apt, image copies and the services it starts, not on the CPU. Each scenario's output is
# printed whole when it ends; after a failure the running ones finish (and destroy their
# instances), no new one starts, and the stage fails.
MOLECULE_LONG_FIRST=(erp_healthcheck erp_stack erp_backup)

molecule_scenarios() {
  local all
  all=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml | cut -d/ -f2 | sort)
  # The long ones first, so that two lanes end at about the same time.
  printf '%s\n' "${MOLECULE_LONG_FIRST[@]}" | grep -xF -f <(printf '%s\n' "$all") || true
  grep -vxF -f <(printf '%s\n' "${MOLECULE_LONG_FIRST[@]}") <<<"$all" || true
}

run_scenario() {
  local scenario=$1 log=$2 rc=0 started=$SECONDS
  molecule test -s "$scenario" >"$log" 2>&1 || rc=$?
  docker volume rm -f "molecule-$scenario-docker" >/dev/null 2>&1 || true
  echo "molecule $scenario: exit $rc after $((SECONDS - started)) s" >>"$log"
  return "$rc"
}

stage_molecule() {
  python3 lab/labctl.py images
  local jobs=${MOLECULE_JOBS:-2} logs scenario pid rc failed=0
  local -a queue
  local -A running=()
  mapfile -t queue < <(molecule_scenarios)
  logs=$(mktemp -d)
  while [ ${#queue[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    if [ "$failed" -eq 0 ] && [ ${#queue[@]} -gt 0 ] && [ ${#running[@]} -lt "$jobs" ]; then
      scenario=${queue[0]}
      queue=("${queue[@]:1}")
      echo "molecule: $scenario started"
      run_scenario "$scenario" "$logs/$scenario.log" &
      running[$!]=$scenario
      continue
    fi
    [ ${#running[@]} -gt 0 ] || break
    rc=0
    wait -n -p pid "${!running[@]}" || rc=$?
    scenario=${running[$pid]}
    unset "running[$pid]"
    banner "molecule: $scenario"
    cat "$logs/$scenario.log"
    if [ "$rc" -ne 0 ]; then failed=1; fi
  done
  rm -rf "$logs"
  return "$failed"
}

# The backup scripts run for real against PostgreSQL containers on this machine's engine.
stage_backup() {
  python3 lab/labctl.py images
  run_pytest -q tests/backup
}

# One lab for every lab test module, in this order: provisioning (hardening) first, so every
# module after it proves the hardened lab still works; then the lab itself, deploy.yml,
# erpctl, deploy.yml from inside the execution environment AWX runs, the run history of those
# runs in ARA's web UI, health checks and alerting, backup and restore, then what Prometheus
# scrapes from all of it. LAB_TESTS=<file,...> runs a subset.
LAB_ORDER=(test_provision test_lab_smoke test_deploy test_erpctl test_execution_environment test_history
  test_health test_restore test_monitoring)

lab_modules() {
  local name found=() unknown
  for name in "${LAB_ORDER[@]}"; do
    [ -f "tests/lab/$name.py" ] && found+=("tests/lab/$name.py")
  done
  # A module missing from LAB_ORDER would silently never run.
  unknown=$(find tests/lab -maxdepth 1 -name 'test_*.py' -printf '%f\n' | sed 's/\.py$//' \
    | grep -vxF -f <(printf '%s\n' "${LAB_ORDER[@]}") || true)
  if [ -n "$unknown" ]; then echo "test.sh: tests/lab modules not in LAB_ORDER: $unknown" >&2; return 1; fi
  printf '%s\n' "${found[@]}"
}

stage_lab() {
  local modules
  if [ -n "${LAB_TESTS:-}" ]; then
    modules=$(tr ',' '\n' <<<"$LAB_TESTS" | sed 's#^#tests/lab/#; s#\(\.py\)*$#.py#')
  else
    modules=$(lab_modules) || return 1
  fi
  # Each stage runs in its own subshell: EXIT fires however the stage ends.
  trap 'python3 lab/labctl.py down || true' EXIT
  python3 lab/labctl.py up
  # shellcheck disable=SC2086 # one module per word
  run_pytest -q --durations=0 $modules
}

for stage in "${stages[@]}"; do
  case "$stage" in
    lint|unit|molecule|backup|lab) ;;
    *) echo "test.sh: unknown stage '$stage' (choose from lint unit molecule backup lab)" >&2; exit 2 ;;
  esac
  banner "$stage"
  started=$SECONDS
  # Not `if ! stage_x`: bash ignores errexit inside a function called as a condition, so a
  # failing command in the middle of a stage would pass unnoticed. A plain subshell keeps it.
  set +e
  (set -e; "stage_$stage")
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo "stage $stage FAILED after $((SECONDS - started)) s" >&2
    echo "stages: $passed passed, 1 failed"
    exit 1
  fi
  echo "stage $stage passed in $((SECONDS - started)) s"
  passed=$((passed + 1))
done
echo "stages: $passed passed, 0 failed"
