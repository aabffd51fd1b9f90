"""Every command run in a container fails its task when the command fails.

community.docker.docker_container_exec reports the command's exit code in `rc` and never
fails on it: a failed psql statement or migration would pass silently. Each such task in the
roles and playbooks either fails on `rc` itself (failed_when naming the registered rc), or is
a probe (failed_when: false) whose rc a later task of the same file acts on.
"""

from __future__ import annotations

import re

import pytest
from task_files import tasks_using

EXEC = "community.docker.docker_container_exec"


def container_execs() -> list[tuple[str, dict, str]]:
    return tasks_using(EXEC)


def test_the_repository_runs_commands_in_containers():
    # Guards the walk above: it must find the container commands there are.
    assert len(container_execs()) >= 2


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
