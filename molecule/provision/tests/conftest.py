"""Helpers shared by the provision scenario's tests: the hosts by name (docker backend, one
`docker exec` per command), and ansible-playbook runs against the scenario's inventory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import testinfra

SCENARIO = Path(__file__).resolve().parents[1]
REPO = SCENARIO.parents[1]
INVENTORY = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
ADDRESS = {"lb": "10.231.5.11", "app": "10.231.5.12", "db": "10.231.5.13"}
NAME = {"lb": "provision-lb1", "app": "provision-app1", "db": "provision-db1"}
ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNWThbTfunht326l/l4+EU0YZJsKkCYD/mZWpN0W8OB alice@test"
CAROL_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0hLZOfQHt+/4b7XdtEnox5UCDZcga6M7MjN41uG4m carol@test"
# The matrix of inventory/group_vars/lab.yml; the tests add people to copies of it.
PEOPLE = [
    {"name": "alice", "full_name": "Alice Admin", "roles": ["admin"], "keys": [ALICE_KEY]},
    {"name": "carol", "full_name": "Carol DBA", "roles": ["dba", "auditor"], "keys": [CAROL_KEY],
     "expires": "2099-12-31"},
]


def get(role: str):
    return testinfra.get_host(f"docker://{NAME[role]}")


@pytest.fixture(scope="session")
def lb():
    return get("lb")


@pytest.fixture(scope="session")
def app():
    return get("app")


@pytest.fixture(scope="session")
def db():
    return get("db")


def playbook(path: Path, *args: str, extra: dict | None = None, tmp: Path | None = None) -> subprocess.CompletedProcess:
    """Run a playbook against the scenario's hosts; JSON output (see results())."""
    command = ["ansible-playbook", "-i", str(INVENTORY), str(path), *args]
    if extra is not None:
        assert tmp is not None
        extra_file = tmp / "extra.json"
        extra_file.write_text(json.dumps(extra))
        command += ["-e", f"@{extra_file}"]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_COLLECTIONS_PATH=str(REPO / ".collections"))
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp or REPO, timeout=900)


def results(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def changed_hosts(proc: subprocess.CompletedProcess) -> dict[str, int]:
    return {host: stats["changed"] for host, stats in results(proc)["stats"].items()}


def failure_messages(proc: subprocess.CompletedProcess) -> str:
    messages = []
    for play in results(proc)["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed"):
                    messages += [str(result.get(key, "")) for key in ("msg", "stderr")]
                for item in result.get("results", []) if isinstance(result.get("results"), list) else []:
                    if isinstance(item, dict) and item.get("failed"):
                        messages.append(str(item.get("msg", "")))
    return "\n".join(messages)


def ssh(client, user: str, target: str, key: str | None = None, extra: str = "", command: str = "id -Gn"):
    """A real ssh client on `client` logging in to `target`; returns the command result."""
    options = ("-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
               "-o ConnectTimeout=10 -o LogLevel=ERROR")
    identity = f"-i {key} -o IdentitiesOnly=yes" if key else ""
    return client.run(f"ssh {options} {identity} {extra} {user}@{ADDRESS[target]} {command}")
