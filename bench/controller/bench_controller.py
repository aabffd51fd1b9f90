#!/usr/bin/env python3
"""Controller benchmarks: plain Ansible against Mitogen in the same run, and growth with the
number of app hosts (bench/controller/results.md holds what was measured).

    python3 bench/controller/bench_controller.py speed      # reference, deploy, warm rollback,
                                                            # provision second run: plain vs Mitogen
    python3 bench/controller/bench_controller.py molecule   # one molecule scenario: plain vs Mitogen
    python3 bench/controller/bench_controller.py growth     # the same upgrade on 2, 4, 6 app hosts
                                                            # (BENCH_SIZES=2,4,6,9) under steady traffic

Against the lab (`make lab`, ERP 1.0.0 or 1.1.0 deployed on every app host). `growth` brings
the lab to each size with LAB_APP_HOSTS, deploys 1.0.0 to the new hosts, then measures the
upgrade to 1.1.0 under 40 requests/s through the LB, and brings the lab back to 2 app hosts.
Every deploy uses a 5 s bake after each of its two batches. The reference workload is 20
trivial command tasks on every lab host under plain linear: the yardstick the deploy is
measured against on the same machine in the same run. Each measurement prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "deploy"))
from bench_deploy import ENV, Load, app_hosts, other_release, state  # noqa: E402

BAKE = 5
DEPLOY_VARS = ["-e", f"erp_deploy_bake_seconds={BAKE}", "-e", "erp_deploy_bake_interval=2"]
STRATEGIES = {"plain": "linear", "mitogen": "mitogen_linear"}
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))

REFERENCE = """\
- name: Reference workload, 20 trivial command tasks on every host
  hosts: lab
  gather_facts: false
  become: true
  tasks:
""" + "".join(f"""    - name: Trivial command {i}
      ansible.builtin.command: "true"
      changed_when: false
""" for i in range(1, 21))


def run(cmd: list[str], strategy: str, timeout: float = 3600, extra_env: dict | None = None) -> dict:
    """Wall time and the controller's CPU (user + system of the child processes) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=dict(ENV, ANSIBLE_STRATEGY=STRATEGIES[strategy], **(extra_env or {})),
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:4])} ({strategy}) failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": round(seconds, 1), "controller_cpu_seconds": round(cpu, 1)}


def emit(record: dict) -> dict:
    print(json.dumps(record), flush=True)
    return record


def reference(strategy: str = "plain") -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".yml", dir=REPO / "bench" / "controller", delete=False) as f:
        f.write(REFERENCE)
    try:
        return emit({"bench": "reference: 20 trivial tasks on every lab host", "strategy": strategy,
                     **run(["ansible-playbook", f.name, "-l", "lab"], strategy)})
    finally:
        os.unlink(f.name)


def deploy(strategy: str, extra: list[str] = ()) -> dict:
    version = other_release()
    result = run(["ansible-playbook", "deploy.yml", "-l", "lab", "-e", f"erp_version={version}", *DEPLOY_VARS,
                  *extra], strategy)
    moved = {host: state(host)["current"]["version"] for host in app_hosts()}
    if set(moved.values()) != {version}:
        sys.exit(f"deploy ({strategy}) left the hosts on {moved}")
    return emit({"bench": f"deploy.yml, {len(moved)} app hosts, bake {BAKE} s x 2", "strategy": strategy,
                 "to": version, **result, "outside_bakes": round(result["seconds"] - 2 * BAKE, 1)})


def warm_rollback(strategy: str) -> dict:
    before = {host: state(host)["current"]["version"] for host in app_hosts()}
    result = run(["ansible-playbook", "rollback.yml", "-l", "lab"], strategy)
    after = {host: state(host)["current"]["version"] for host in app_hosts()}
    if any(before[h] == after[h] for h in before):
        sys.exit(f"rollback ({strategy}) did not move every host: {before} -> {after}")
    return emit({"bench": "rollback.yml, warm (the previous release's slot kept, stopped)",
                 "strategy": strategy, **result})


def provision_second(strategy: str) -> dict:
    return emit({"bench": "provision.yml, a run on a provisioned lab", "strategy": strategy,
                 **run(["ansible-playbook", "provision.yml", "-l", "lab"], strategy)})


def speed() -> None:
    reference("plain")
    reference("mitogen")
    # Interleaved, so both strategies meet the same machine; each deploy moves the lab to the
    # other release, and each rollback brings it back with the slot the deploy kept warm.
    for _ in range(ROUNDS):
        for strategy in STRATEGIES:
            deploy(strategy)
            warm_rollback(strategy)
    reference("plain")
    # The first run converges whatever differs; the timed ones find everything in place.
    run(["ansible-playbook", "provision.yml", "-l", "lab"], "mitogen")
    for _ in range(ROUNDS):
        for strategy in STRATEGIES:
            provision_second(strategy)


# Under mitogen_linear, molecule's own destroy playbook did not end here (results.md): each
# run is bounded, and one that does not end is reported as such, its instance removed.
MOLECULE_LIMIT = 600


def molecule(scenario: str = os.environ.get("BENCH_SCENARIO", "base")) -> None:
    for strategy in STRATEGIES:
        subprocess.run(["docker", "volume", "rm", "-f", f"molecule-{scenario}-docker"], capture_output=True)
        try:
            result = run(["molecule", "test", "-s", scenario], strategy, timeout=MOLECULE_LIMIT,
                         extra_env={"PY_COLORS": "0"})
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "rm", "-f", f"molecule-{scenario}"], capture_output=True)
            result = {"seconds": None, "did_not_end_within_seconds": MOLECULE_LIMIT}
        emit({"bench": f"molecule test -s {scenario}", "strategy": strategy, **result})


def lab_up(app_count: int) -> None:
    proc = subprocess.run([sys.executable, "lab/labctl.py", "up"], cwd=REPO, capture_output=True, text=True,
                          env=dict(ENV, LAB_APP_HOSTS=str(app_count)), timeout=1800)
    if proc.returncode != 0:
        sys.exit(f"labctl up with {app_count} app hosts failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def growth() -> None:
    sizes = [int(n) for n in os.environ.get("BENCH_SIZES", "2,4,6").split(",")]
    results = {}
    try:
        for size in sizes:
            lab_up(size)
            # As a user adds hosts: provision (the database host's firewall learns the new app
            # hosts), then deploy.
            run(["ansible-playbook", "provision.yml", "-l", "lab"], "mitogen")
            # Every host on 1.0.0 first (new hosts have no release yet), bakes off.
            subprocess.run(["ansible-playbook", "deploy.yml", "-l", "lab", "-e", "erp_version=1.0.0",
                            "-e", "erp_deploy_bake_seconds=0"], cwd=REPO, env=ENV, capture_output=True,
                           check=True, timeout=3600)
            with Load(rate=40) as load:
                result = run(["ansible-playbook", "deploy.yml", "-l", "lab", "-e", "erp_version=1.1.0",
                              *DEPLOY_VARS], "mitogen")
            results[size] = result["seconds"]
            emit({"bench": f"upgrade 1.0.0 -> 1.1.0 on {size} app hosts under 40 requests/s, bake {BAKE} s x 2",
                  "strategy": "mitogen", **result, "requests_ok": load.ok, "requests_failed": load.failed,
                  "errors": load.errors, "vs_smallest": round(result["seconds"] / results[sizes[0]], 2)})
    finally:
        lab_up(2)


BENCHES = {"speed": speed, "molecule": molecule, "growth": growth}

if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what not in BENCHES:
        sys.exit(__doc__)
    BENCHES[what]()
