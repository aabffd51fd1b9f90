#!/usr/bin/env python3
"""Deploy benchmarks against the lab (see bench/deploy/results.md for what was measured).

    python3 bench/deploy/bench_deploy.py naive     # failed requests during a naive in-place restart
    python3 bench/deploy/bench_deploy.py rolling   # failed requests and wall time of deploy.yml
    python3 bench/deploy/bench_deploy.py rollback  # wall time of rollback.yml (warm old slot)

Traffic goes only to the lab LB on 127.0.0.1 (LAB_HTTP_PORT, default 8080), from a few
threads, bounded in time; every run prints one JSON line to append to results.md.
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

REPO = Path(__file__).resolve().parents[2]
PORT = os.environ.get("LAB_HTTP_PORT", "8080")
KEY = REPO / ".lab" / "id_ed25519"
KNOWN = REPO / ".lab" / "known_hosts"
APP_PORTS = {"app1": 2203, "app2": 2204}


class Load:
    def __init__(self, threads: int = 4, max_seconds: float = 1200):
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._end = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/customers?limit=5", timeout=15) as r:
                    r.read()
                with self._lock:
                    self.ok += 1
            except (urllib.error.URLError, OSError):
                with self._lock:
                    self.failed += 1

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


def ssh(host: str, command: str) -> str:
    return subprocess.run(
        ["ssh", "-i", str(KEY), "-p", str(APP_PORTS[host]), "-o", f"UserKnownHostsFile={KNOWN}",
         "-o", "BatchMode=yes", "debian@127.0.0.1", command],
        capture_output=True, text=True, check=True, timeout=300).stdout


def playbook(*args: str) -> tuple[int, float]:
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", *args], cwd=REPO, capture_output=True, text=True, timeout=3600)
    return proc.returncode, round(time.monotonic() - started, 1)


def naive() -> dict:
    """What a deploy without slots does: restart the live container in place, host by host."""
    with Load() as load:
        time.sleep(3)
        for host in APP_PORTS:
            slot = json.loads(ssh(host, "sudo cat /var/lib/erp/release.json"))["current"]["slot"]
            ssh(host, f"sudo docker restart -t 15 erp-app-{slot}")
        time.sleep(10)
    return {"bench": "naive in-place restart", "ok": load.ok, "failed": load.failed}


def rolling(version: str) -> dict:
    with Load() as load:
        rc, seconds = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={version}",
                               "-e", "erp_deploy_converge=false", "-e", "erp_deploy_bake_seconds=5")
    return {"bench": f"rolling deploy to {version}", "rc": rc, "seconds": seconds, "ok": load.ok, "failed": load.failed}


def rollback() -> dict:
    with Load() as load:
        rc, seconds = playbook("rollback.yml", "-l", "lab")
    return {"bench": "rollback (warm slot)", "rc": rc, "seconds": seconds, "ok": load.ok, "failed": load.failed}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "naive":
        result = naive()
    elif what == "rolling":
        result = rolling(sys.argv[2] if len(sys.argv) > 2 else "1.1.0")
    elif what == "rollback":
        result = rollback()
    else:
        sys.exit(__doc__)
    print(json.dumps(result))
