#!/usr/bin/env python3
"""Deploy benchmarks against the lab (bench/deploy/results.md holds what was measured).

    python3 bench/deploy/bench_deploy.py all        # everything below, in this order
    python3 bench/deploy/bench_deploy.py naive      # failed requests during a naive in-place restart
    python3 bench/deploy/bench_deploy.py rolling    # deploy.yml to the other release: failed requests, wall time
    python3 bench/deploy/bench_deploy.py floor      # boot-to-ready of one slot (the floor of a batch),
                                                    # after a rolling deploy
    python3 bench/deploy/bench_deploy.py rollback   # rollback.yml with the old slots warm (stopped containers)
    python3 bench/deploy/bench_deploy.py rollback-paced  # the same under 40 requests/s instead of
                                                         # as many as 4 threads can send
    python3 bench/deploy/bench_deploy.py cold       # rollback.yml with the old slots' containers removed
                                                    # (after a rolling deploy)

Against the lab (`make lab`, ERP 1.0.0 or 1.1.0 deployed). Traffic goes only to the lab LB
on 127.0.0.1 (LAB_HTTP_PORT, default 8080), from 4 threads with no think time (those
saturate both cores of the machine the lab and the controller share; `rollback-paced`
sends a steady 40 requests/s instead, as the lab tests do); `rolling`
keeps the traffic going until the deploy ended AND at least 20,000 requests were sent
during it, by deploying with the lab's own bake times. Every measurement prints one JSON
line; copy the figures into results.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PORT = os.environ.get("LAB_HTTP_PORT", "8080")
ENV = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
           PATH=f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}")
RELEASES = ("1.0.0", "1.1.0")
MIN_REQUESTS = 20_000


class Load:
    """Users reading the ERP through the LB as fast as 4 threads go, or at ``rate`` requests
    a second in all; counts answers."""

    def __init__(self, threads: int = 4, max_seconds: float = 1800, rate: float | None = None):
        self._pause = threads / rate if rate else 0.0
        self.ok = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self._stop = threading.Event()
        self._end = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._end:
            if self._pause:
                self._stop.wait(self._pause)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/customers?limit=5", timeout=15) as r:
                    r.read()
                with self._lock:
                    self.ok += 1
            except (urllib.error.URLError, OSError) as exc:
                with self._lock:
                    self.failed += 1
                    kind = type(getattr(exc, "reason", exc)).__name__ if not hasattr(exc, "code") else str(exc.code)
                    self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def sent(self) -> int:
        return self.ok + self.failed

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def app_hosts() -> dict[str, int]:
    """The lab's app hosts and their SSH ports, from the inventory labctl wrote."""
    lab = yaml.safe_load((REPO / "inventories" / "lab" / "hosts.yml").read_text())["lab"]
    return {name: hv["ansible_port"] for name, hv in lab["children"]["erp_app"]["hosts"].items()}


def ssh(host: str, command: str) -> str:
    lab = REPO / ".lab"
    return subprocess.run(
        ["ssh", "-i", str(lab / "id_ed25519"), "-p", str(app_hosts()[host]), "-o",
         f"UserKnownHostsFile={lab / 'known_hosts'}", "-o", "BatchMode=yes", "debian@127.0.0.1", command],
        capture_output=True, text=True, check=True, timeout=300).stdout


def state(host: str) -> dict:
    return json.loads(ssh(host, "sudo cat /var/lib/erp/release.json"))


def playbook(*args: str) -> float:
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"ansible-playbook {' '.join(args[:4])} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return round(time.monotonic() - started, 1)


def other_release() -> str:
    running = {state(h)["current"]["version"] for h in app_hosts()}
    if len(running) != 1 or not running <= set(RELEASES):
        sys.exit(f"the lab runs {sorted(running)}: deploy 1.0.0 first (make demo)")
    return RELEASES[1 - RELEASES.index(running.pop())]


def naive() -> dict:
    """What a deploy without slots does: restart the live container in place on every app
    host at once (a compose file re-applied by a script with forks), graceful stop included."""
    with Load() as load:
        time.sleep(3)
        commands = {host: f"sudo docker restart -t 15 erp-app-{state(host)['current']['slot']}" for host in app_hosts()}
        restarts = [threading.Thread(target=ssh, args=item) for item in commands.items()]
        for thread in restarts:
            thread.start()
        for thread in restarts:
            thread.join()
        time.sleep(10)
    return {"bench": "naive in-place restart", "ok": load.ok, "failed": load.failed, "errors": load.errors}


def rolling() -> dict:
    version = other_release()
    with Load() as load:
        seconds = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={version}", "-e", "erp_deploy_converge=false")
        sent_during_deploy = load.sent
        # Keep users coming until MIN_REQUESTS were sent, so figures of different runs compare.
        while load.sent < MIN_REQUESTS:
            time.sleep(0.5)
    return {"bench": f"rolling deploy to {version}", "seconds": seconds, "ok": load.ok, "failed": load.failed,
            "errors": load.errors, "sent_during_deploy": sent_during_deploy}


FLOOR_PROBE = """
import subprocess, sys, time, urllib.request
slot, url = sys.argv[1], sys.argv[2]
subprocess.run(["docker", "start", "erp-app-" + slot], check=True, capture_output=True)
started = time.monotonic()
while time.monotonic() - started < 120:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                break
    except OSError:
        pass
    time.sleep(0.1)
print(round(time.monotonic() - started, 2))
subprocess.run(["docker", "stop", "-t", "15", "erp-app-" + slot], check=True, capture_output=True)
"""


def floor() -> dict:
    """Boot-to-ready of a slot: the idle (stopped) slot of the first app host started and
    polled on /health/ready every 0.1 s from the host itself, then stopped again. Needs a
    deploy first (the idle slot holds the previous release)."""
    host = next(iter(app_hosts()))
    idle = "green" if state(host)["current"]["slot"] == "blue" else "blue"
    # The slots listen on the host's internal address only (erp_app_bind_address).
    lab = yaml.safe_load((REPO / "inventories" / "lab" / "hosts.yml").read_text())["lab"]
    address = lab["children"]["erp_app"]["hosts"][host]["erp_internal_address"]
    url = f"http://{address}:{ {'blue': 8001, 'green': 8002}[idle]}/health/ready"
    seconds = float(ssh(host, f"sudo python3 -c '{FLOOR_PROBE}' {idle} {url}"))
    return {"bench": "slot boot-to-ready", "host": host, "slot": idle, "seconds": seconds}


def rollback(cold: bool = False, rate: float | None = None) -> dict:
    if cold:
        for host in app_hosts():
            ssh(host, f"sudo docker rm -f erp-app-{state(host)['previous']['slot']}")
    with Load(rate=rate) as load:
        seconds = playbook("rollback.yml", "-l", "lab")
    return {"bench": f"rollback ({'cold: old slot removed' if cold else 'warm: old slot stopped'})",
            "traffic": f"{rate:g} requests/s" if rate else "4 threads, no think time",
            "seconds": seconds, "ok": load.ok, "failed": load.failed, "errors": load.errors}


BENCHES = {"naive": naive, "rolling": rolling, "floor": floor, "rollback": rollback,
           "rollback-paced": lambda: rollback(rate=40), "cold": lambda: rollback(cold=True)}

if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "all":
        # rolling moves the lab to the other release (floor then boots the old slot it left)
        # and rollback brings it back; the second
        # rolling gives the cold rollback a previous release to return to.
        for name in ("naive", "rolling", "floor", "rollback", "rolling", "cold"):
            print(json.dumps(BENCHES[name]()), flush=True)
    elif what in BENCHES:
        print(json.dumps(BENCHES[what]()))
    else:
        sys.exit(__doc__)
