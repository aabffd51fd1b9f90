"""Fixtures for tests that run against the lab brought up by `lab/labctl.py up`."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"
# The lab session's run history: erp.ops.history (ARA, enabled in ansible.cfg) records here,
# in a database of its own, rather than into the checkout's .ara/ or a shared server an
# operator may have configured; it stays behind with the other artifacts. Recording costs the
# controller CPU on every task result, so the session records only test_history's runs (which
# turns it on for its module) and the other modules run with ERP_RECORD_HISTORY=0.
HISTORY = REPO / "artifacts" / "lab-history"


@dataclass(frozen=True)
class Host:
    name: str
    group: str
    port: int
    user: str
    key: str
    known_hosts: str

    def ssh(self, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command on the host over real SSH, as an operator would."""
        proc = subprocess.run(
            ["ssh", "-i", self.key, "-p", str(self.port), "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{self.user}@127.0.0.1", command],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{self.name}: `{command}` exited {proc.returncode}: {proc.stderr.strip()}")
        return proc


@pytest.fixture(scope="session")
def lab_hosts() -> dict[str, Host]:
    if not INVENTORY.exists():
        pytest.fail("no lab inventory: run `lab/labctl.py up` first (make test does)")
    lab = yaml.safe_load(INVENTORY.read_text())["lab"]
    conn = lab["vars"]
    known_hosts = conn["ansible_ssh_common_args"].split("UserKnownHostsFile=")[1].split()[0]
    hosts = {}
    for group, members in lab["children"].items():
        for name, hostvars in members["hosts"].items():
            hosts[name] = Host(name, group, hostvars["ansible_port"], conn["ansible_user"],
                               conn["ansible_ssh_private_key_file"], known_hosts)
    return hosts


def internal_addresses() -> dict[str, str]:
    """Each lab host's address on the lab network (erp_internal_address), reachable from here."""
    lab = yaml.safe_load(INVENTORY.read_text())["lab"]
    return {name: hostvars["erp_internal_address"]
            for group in lab["children"].values() for name, hostvars in group["hosts"].items()}


@pytest.fixture(scope="session", autouse=True)
def lab_history() -> Path:
    """ARA's data directory (ARA_BASE_DIR) of the session, recording off until a module
    turns it on."""
    shutil.rmtree(HISTORY, ignore_errors=True)
    base_dir = HISTORY / "server"
    base_dir.mkdir(parents=True)
    wanted = {"ARA_BASE_DIR": str(base_dir), "ARA_API_CLIENT": "offline", "ERP_RECORD_HISTORY": "0"}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    yield base_dir
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# Shared by the lab test modules: run playbooks as an operator does, read the hosts' release
# state, and drive user traffic through the LB.
LB_PORT = os.environ.get("LAB_HTTP_PORT", "8080")
LAB_NAME = os.environ.get("LAB_NAME", "erplab")
FAST = ["-e", "erp_deploy_bake_seconds=4", "-e", "erp_deploy_bake_interval=2", "-e", "erp_deploy_health_deadline=40"]
QUICK = [*FAST, "-e", "erp_deploy_converge=false"]


def playbook(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["ansible-playbook", *args], cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=timeout,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1"),
    )
    proc.output = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    return proc


def recap(proc: subprocess.CompletedProcess) -> dict[str, dict[str, int]]:
    stats = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", proc.stdout, re.M):
        stats[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return stats


def release_state(host) -> dict:
    return json.loads(host.ssh("sudo cat /var/lib/erp/release.json").stdout)


def app_hosts(lab_hosts):
    return [h for h in lab_hosts.values() if h.group == "erp_app"]


def current_versions(lab_hosts) -> dict[str, str]:
    return {h.name: release_state(h)["current"]["version"] for h in app_hosts(lab_hosts)}


def served_versions(samples: int = 12) -> set[str]:
    seen = set()
    for _ in range(samples):
        with urllib.request.urlopen(f"http://127.0.0.1:{LB_PORT}/version", timeout=10) as response:
            seen.add(json.load(response)["version"])
    return seen


# Requests per second of paced user traffic: enough to see a broken build served or a host
# out of rotation (seconds of errors), while the lab's two cores are left to the rollout
# itself. It can miss a glitch of a few milliseconds: the upgrade test, which measures zero
# downtime, keeps unpaced traffic.
PACED = 40


class Load:
    """Steady user traffic through the LB: a few threads, bounded in time and count; as fast
    as they go, or ``rate`` requests per second in all."""

    def __init__(self, threads: int = 4, max_seconds: float = 900, max_requests: int = 400_000,
                 rate: float | None = None):
        self._pause = threads / rate if rate else 0.0
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._max = max_requests
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        paths = ["/api/customers?limit=5", "/api/invoices?limit=5", "/"]
        n = 0
        while not self._stop.is_set() and time.monotonic() < self._deadline and self.ok + len(self.failed) < self._max:
            path = paths[n % len(paths)]
            n += 1
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{LB_PORT}{path}", timeout=15) as response:
                    response.read()
                with self._lock:
                    self.ok += 1
            except (urllib.error.URLError, OSError) as exc:
                with self._lock:
                    self.failed.append(f"{path}: {exc}")
            if self._pause:
                self._stop.wait(self._pause)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


HEALTHCHECK_SCRIPT = "/usr/local/lib/erp-healthcheck/erp_healthcheck.py"

SAMPLER = """
import json, os, subprocess, sys, time
script, seconds, stop = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.time() + seconds
while time.time() < deadline and not os.path.exists(stop):
    run = subprocess.run(["/usr/bin/python3", script, "--dry-run"], capture_output=True, text=True)
    report = json.loads(run.stdout)
    failing = [c["name"] + ": " + c["detail"] for c in report["checks"] if c["status"] == "fail"]
    print(json.dumps({"time": time.time(), "failing": failing}), flush=True)
    time.sleep(0.5)
"""


class HealthSampler:
    """Runs a host's installed health check (the role erp_healthcheck's script, --dry-run: no
    state, no webhook) over and over, bounded in time, and keeps what each run reports
    failing: what the on-call person would have been alerted about, sampled far more often
    than cron runs it."""

    def __init__(self, host: Host, max_seconds: int = 900):
        self.host = host
        encoded = base64.b64encode(SAMPLER.encode()).decode()
        self.dir = host.ssh(f"d=$(mktemp -d) && echo {encoded} | base64 -d > $d/sampler.py && echo $d").stdout.strip()
        self.proc = subprocess.Popen(
            ["ssh", "-i", host.key, "-p", str(host.port), "-o", f"UserKnownHostsFile={host.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{host.user}@127.0.0.1",
             f"sudo /usr/bin/python3 {self.dir}/sampler.py {HEALTHCHECK_SCRIPT} {max_seconds} {self.dir}/stop"],
            # Its own /dev/null: ssh makes its stdin non-blocking, and an ansible-playbook
            # started meanwhile with the same stdin would refuse to run.
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def stop(self) -> list[dict]:
        self.host.ssh(f"touch {self.dir}/stop")
        out, err = self.proc.communicate(timeout=120)
        self.host.ssh(f"rm -rf {self.dir}")
        assert self.proc.returncode == 0, err[-2000:]
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def ensure_healthcheck(lab_hosts) -> None:
    """The health check installed on every host (provision.yml installs it; a lab brought up
    for a single module may not have it yet)."""
    if all(h.ssh(f"test -e {HEALTHCHECK_SCRIPT}", check=False).returncode == 0 for h in lab_hosts.values()):
        return
    proc = playbook("healthcheck.yml", "-l", "lab")
    assert proc.returncode == 0, proc.output[-4000:]


def ensure_release(lab_hosts, version: str = "1.0.0", *, or_any: bool = False) -> None:
    """Bring every app host of the lab to ``version`` with deploy.yml, so each test module
    starts from a known release whatever ran before it. Skipped when every app host already
    records it and the LB serves only it (the modules share one lab: saves a deploy each);
    with ``or_any``, when they all run and serve any one release (a module that does not
    care which)."""
    try:
        running = set(current_versions(lab_hosts).values())
        if len(running) == 1 and served_versions() == running and (or_any or running == {version}):
            return
    except (AssertionError, KeyError, TypeError, ValueError, OSError):
        pass  # no release yet, or not served: deploy it
    proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={version}", *FAST)
    assert proc.returncode == 0, proc.output[-4000:]
    assert set(current_versions(lab_hosts).values()) == {version}


def lab_vault_values() -> dict[str, str]:
    """Every secret of the lab vault, decrypted: tests assert none of them leaks anywhere."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    group_vars = REPO / "inventories" / "lab" / "group_vars" / "lab"
    password = (REPO / "inventories" / "lab" / "vault-password-lab-only.txt").read_bytes().strip()
    vault = VaultLib([("lab", VaultSecret(password))])
    values = {}
    for name, block in re.findall(r"^(\w+): !vault \|\n((?:[ \t]+\S.*\n?)+)", (group_vars / "vault.yml").read_text(),
                                  re.M):
        ciphertext = "\n".join(line.strip() for line in block.splitlines())
        values[name] = vault.decrypt(ciphertext).decode()
    assert values, "no vaulted value found in the lab vault"
    return values


def secrets_in(text: str) -> list[str]:
    """The names of the lab vault's values that appear in ``text``."""
    return sorted(name for name, value in lab_vault_values().items() if value in text)
