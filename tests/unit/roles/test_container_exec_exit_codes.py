"""Every command run in a container fails its task when the command fails.

community.docker.docker_container_exec reports the command's exit code in `rc` and never
fails on it: a failed psql statement or migration would pass silently. Each such task in the
roles and playbooks either fails on `rc` itself (failed_when naming the registered rc), or is
a probe (failed_when: false) whose rc a later task of the same file acts on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
EXEC = "community.docker.docker_container_exec"
FILES = sorted([*REPO.glob("roles/*/tasks/*.yml"), *REPO.glob("roles/*/handlers/*.yml"), *REPO.glob("playbooks/*.yml")])


def tasks(node):
    """Every task of a tasks file or playbook, blocks, rescues and plays' sections included."""
    if isinstance(node, list):
        for item in node:
            yield from tasks(item)
    elif isinstance(node, dict):
        if any(key in node for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")):
            for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
                yield from tasks(node.get(key) or [])
        else:
            yield node


def container_execs() -> list[tuple[str, dict, str]]:
    found = []
    for path in FILES:
        text = path.read_text()
        for task in tasks(yaml.safe_load(text) or []):
            if EXEC in task:
                found.append((f"{path.relative_to(REPO)}: {task.get('name')}", task, text))
    return found


def test_the_repository_runs_commands_in_containers():
    # Guards the walk above: it must find the container commands there are.
    assert len(container_execs()) >= 3


@pytest.mark.parametrize("where,task,text", container_execs(), ids=[w for w, _, _ in container_execs()])
def test_a_failing_command_in_a_container_fails_its_task(where, task, text):
    registered = task.get("register")
    assert registered, f"{where}: register the result, to act on its rc"
    failed_when = task.get("failed_when")
    if failed_when is False:
        assert re.search(rf"{re.escape(registered)}\.rc\b", text.replace(f"register: {registered}", "")), \
            f"{where}: a probe (failed_when: false) whose rc nothing acts on"
    else:
        assert failed_when is not None and re.search(rf"{re.escape(registered)}\.rc\b", str(failed_when)), \
            f"{where}: failed_when must fail on {registered}.rc (the module never fails on a command's exit)"
