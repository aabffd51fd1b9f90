#!/usr/bin/env bash
# `make test`: every test stage, or the named ones (lint unit molecule backup lab).
# Fails on the first failing stage; prints one closing line of stage results. molecule runs
# beside lint, unit and backup (its output printed whole when it ends), the lab comes up
# beside molecule's last scenarios, and its tests run after them all.
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
    if [ "$failed" -eq 0 ] && [ ! -e "$molecule_stop" ] && [ ${#queue[@]} -gt 0 ] \
      && [ ${#running[@]} -lt "$jobs" ]; then
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
  [ ! -e "$molecule_stop" ] || { echo "molecule: stopped after another stage failed" >&2; failed=1; }
  return "$failed"
}

# The backup scripts run for real against PostgreSQL containers on this machine's engine.
stage_backup() {
  python3 lab/labctl.py images
  run_pytest -q tests/backup
}

# One lab for every lab test module, in this order: provisioning (hardening) first, so every
# module after it proves the hardened lab still works; then the lab itself, deploy.yml, the
# perimeter as an outside user meets it, deploy.yml meeting broken infrastructure, erpctl,
# deploy.yml from inside the execution environment AWX runs, the run history of those runs
# in ARA's web UI, health checks and alerting, backup and restore, then what Prometheus
# scrapes from all of it.
# LAB_TESTS=<file,...> runs a subset.
LAB_ORDER=(test_provision test_lab_smoke test_deploy test_security test_failure_paths test_erpctl
  test_execution_environment test_history test_health test_restore test_monitoring)

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
  # Brought up already beside molecule (below), or now.
  [ -n "${LAB_UP_BESIDE_MOLECULE:-}" ] || python3 lab/labctl.py up
  # shellcheck disable=SC2086 # one module per word
  run_pytest -q --durations=0 $modules
}

for stage in "${stages[@]}"; do
  case "$stage" in
    lint|unit|molecule|backup|lab) ;;
    *) echo "test.sh: unknown stage '$stage' (choose from lint unit molecule backup lab)" >&2; exit 2 ;;
  esac
done

# One stage in a subshell with errexit on. Callers run it as a plain command with errexit off,
# never as a condition (`if ! run_stage`, `run_stage || ...`): bash ignores errexit inside
# anything called as a condition, so a failing command in the middle of a stage would pass.
run_stage() {
  (set -e; "stage_$1")
}

stage_passed() {
  echo "stage $1 passed in $2 s"
  passed=$((passed + 1))
}

stage_failed() {
  echo "stage $1 FAILED after $2 s" >&2
  echo "stages: $passed passed, 1 failed"
  exit 1
}

# molecule, when asked for, starts first in the background: most of a scenario's time is
# waiting on apt, image copies and the services it starts, which the CPU-bound stages fill.
# After another stage fails, the scenarios running finish (and destroy their instances) and
# no new one starts.
molecule_stop=$(mktemp -u)
molecule_pid=""
if printf '%s\n' "${stages[@]}" | grep -qx molecule; then
  molecule_log=$(mktemp)
  molecule_started=$SECONDS
  set +e
  run_stage molecule >"$molecule_log" 2>&1 &
  molecule_pid=$!
  set -e
  echo "molecule: started beside the other stages (its output follows when it ends)"
fi

# Waits for molecule and prints its output; its exit status is molecule's.
wait_molecule() {
  local rc=0
  wait "$molecule_pid" || rc=$?
  molecule_pid=""
  banner molecule
  cat "$molecule_log"
  rm -f "$molecule_log" "$molecule_stop"
  return "$rc"
}

finish_molecule() {
  local rc
  [ -n "$molecule_pid" ] || return 0
  set +e
  wait_molecule
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then stage_failed molecule "$((SECONDS - molecule_started))"; fi
  stage_passed molecule "$((SECONDS - molecule_started))"
}

# The lab comes up (containers, the images loaded into each host's engine: mostly I/O) while
# molecule's last scenarios run, once every CPU-bound stage is done; so is the execution
# environment image its EE module runs (built and pushed to the lab registry), when that
# module is to run. A failed build is left to that module, which builds again and says why.
lab_up_pid=""
start_lab_up() {
  lab_up_log=$(mktemp)
  (
    python3 lab/labctl.py up
    if [ -z "${LAB_TESTS:-}" ] || grep -q execution_environment <<<"$LAB_TESTS"; then
      scripts/build-ee.sh || echo "lab: the execution environment image was not built; its module tries again"
    fi
  ) >"$lab_up_log" 2>&1 &
  lab_up_pid=$!
  echo "lab: coming up beside molecule (its output follows when molecule ends)"
  trap 'if [ -n "$lab_up_pid" ]; then wait "$lab_up_pid" || true; python3 lab/labctl.py down || true; fi' EXIT
}

# Waits for that bring-up; the lab stage then starts from an up lab. Fails like a stage.
finish_lab_up() {
  local rc=0
  [ -n "$lab_up_pid" ] || return 0
  wait "$lab_up_pid" || rc=$?
  lab_up_pid=""
  trap - EXIT
  cat "$lab_up_log"
  rm -f "$lab_up_log"
  if [ "$rc" -ne 0 ]; then python3 lab/labctl.py down || true; stage_failed lab 0; fi
  export LAB_UP_BESIDE_MOLECULE=1
}

for stage in "${stages[@]}"; do
  [ "$stage" != molecule ] || continue
  if [ "$stage" = lab ]; then
    [ -z "$molecule_pid" ] || start_lab_up
    finish_molecule
    finish_lab_up
  fi
  banner "$stage"
  started=$SECONDS
  set +e
  run_stage "$stage"
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    if [ -n "$molecule_pid" ]; then
      : >"$molecule_stop"
      wait_molecule || true
    fi
    stage_failed "$stage" "$((SECONDS - started))"
  fi
  stage_passed "$stage" "$((SECONDS - started))"
done
finish_molecule
echo "stages: $passed passed, 0 failed"
