"""Fixtures for tests that run against the lab brought up by `lab/labctl.py up`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"


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
            capture_output=True, text=True, timeout=timeout,
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
