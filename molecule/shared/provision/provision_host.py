"""Helpers of the scenarios base, hardening and access (each scenario's tests/conftest.py
takes its fixtures from here): the host (docker backend, one `docker exec` per command), ssh
logins from this machine, and ansible-playbook runs against the scenario."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra

SHARED = Path(__file__).resolve().parent
REPO = SHARED.parents[2]
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
NAME = f"molecule-{os.environ['MOLECULE_SCENARIO_NAME']}"
# The host's address on its Docker network, whose gateway is this machine.
ADDRESS = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", NAME],
                         capture_output=True, text=True, check=True).stdout.strip()
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNWThbTfunht326l/l4+EU0YZJsKkCYD/mZWpN0W8OB alice@test"


@pytest.fixture(scope="session")
def host():
    return testinfra.get_host(f"docker://{NAME}")


@pytest.fixture(scope="session")
def client_key(tmp_path_factory):
    """A key pair on this machine (the client); tests authorize its public half where they need it."""
    key = tmp_path_factory.mktemp("client") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "probe@test", "-f", str(key)], check=True)
    return key


def ssh(user: str, key: Path | None = None, *options: str, command: str = "id -Gn") -> subprocess.CompletedProcess:
    """A real ssh client on this machine logging in to the host over the scenario network."""
    identity = ["-i", str(key), "-o", "IdentitiesOnly=yes"] if key else []
    return subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", *identity, *options, f"{user}@{ADDRESS}", command],
        capture_output=True, text=True, timeout=60,
    )


def playbook(path: Path, *args: str, extra: dict, tmp: Path) -> subprocess.CompletedProcess:
    """Run a playbook against the scenario's host with extra variables; JSON output."""
    extra_file = tmp / "extra.json"
    extra_file.write_text(json.dumps(extra))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"))
    return subprocess.run(["ansible-playbook", "-i", str(INVENTORY), str(path), *args, "-e", f"@{extra_file}"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=900)


def failure_messages(proc: subprocess.CompletedProcess) -> str:
    output = json.loads(proc.stdout[proc.stdout.index("{"):])
    return "\n".join(str(result.get(key, "")) for play in output["plays"] for task in play["tasks"]
                     for result in task["hosts"].values() if result.get("failed") for key in ("msg", "stderr"))
