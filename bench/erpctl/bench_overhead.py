#!/usr/bin/env python3
"""What `erpctl rollout` costs over running the same stages with ansible-playbook by hand.

    python3 bench/erpctl/bench_overhead.py [rounds]     # default 2 rounds

Against the lab (up, on release 1.0.0 or 1.1.0). Use an even number of rounds. Each round
moves the lab to the other release twice: once by hand (deploy.yml per stage: the canary host, then the rest, each run
taking and releasing the lock itself), once with `erpctl rollout --stages canary,100%
--bake 0` (plan, registry check, lock, the same two deploy.yml runs through ansible-runner,
the hosts' release state read after each stage, lock release, report). The bake is off on
both sides: waiting is not overhead. Both sides use the same deploy settings. Prints one
JSON line per measurement and a summary line to copy into results.md.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
SETTINGS = {"erp_deploy_converge": False, "erp_deploy_bake_seconds": 0, "erp_deploy_health_deadline": 60}
ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), PATH=f"{VENV_BIN}:{os.environ['PATH']}")


def run(argv: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv[:4])}... failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return elapsed


def app_hosts() -> list[str]:
    inventory = json.loads(subprocess.run(["ansible-inventory", "--list"], cwd=REPO, env=ENV, check=True,
                                          capture_output=True, text=True).stdout)
    return inventory["erp_app"]["hosts"]


def current_version(host: str) -> str:
    proc = subprocess.run(["ansible", host, "-b", "-m", "ansible.builtin.slurp", "-a", "src=/var/lib/erp/release.json",
                           "-o"], cwd=REPO, env=ENV, check=True, capture_output=True, text=True)
    content = json.loads(proc.stdout.split("=>", 1)[1])["content"]
    return json.loads(base64.b64decode(content))["current"]["version"]


def by_hand(version: str, hosts: list[str]) -> float:
    total = 0.0
    for number, stage_hosts in enumerate([hosts[:1], hosts[1:]], start=1):
        extra = dict(SETTINGS, erp_version=version, erp_rollout_hosts=stage_hosts, erp_rollout_stage=number)
        total += run(["ansible-playbook", "deploy.yml", "-l", "lab", "-e", json.dumps(extra)])
    return total


def with_erpctl(version: str) -> float:
    extra = [arg for name, value in SETTINGS.items() for arg in ("-e", f"{name}={json.dumps(value)}")]
    return run(["erpctl", "rollout", "--env", "lab", "--version", version, "--stages", "canary,100%",
                "--bake", "0", "--yes", *extra])


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    hosts = app_hosts()
    other = {"1.0.0": "1.1.0", "1.1.0": "1.0.0"}
    hand, tool = [], []
    for round_number in range(1, rounds + 1):
        # Alternate who goes first: each side then moves the lab both ways (1.0.0 -> 1.1.0
        # runs the migration, the way back does not) as often as the other.
        for kind in ("hand", "erpctl") if round_number % 2 else ("erpctl", "hand"):
            target = other[current_version(hosts[0])]
            seconds = by_hand(target, hosts) if kind == "hand" else with_erpctl(target)
            (hand if kind == "hand" else tool).append(seconds)
            print(json.dumps({"round": round_number, "kind": kind, "to": target, "seconds": round(seconds, 1)}))
    hand_mean, tool_mean = sum(hand) / len(hand), sum(tool) / len(tool)
    print(json.dumps({"by_hand_mean_s": round(hand_mean, 1), "erpctl_mean_s": round(tool_mean, 1),
                      "overhead_pct": round(100 * (tool_mean - hand_mean) / hand_mean, 1),
                      "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
