"""No task prints a container's secrets.

A docker_container_info result is the container's whole inspection, its environment
included (for the app slots the database URL and password and the application's secret
key): without no_log it is in the output at -v and in every ansible-runner / AWX job event.
A command run in a container (docker_container_exec) carries its argv and output, where the
roles pass passwords to psql. A docker_container task returns the same inspection: it has
no_log unless the container gets no secret through its environment (secrets as *_FILE
mounts, no env_file), which this test checks too; a removal returns nothing.
"""

from __future__ import annotations

import re

import pytest
from task_files import tasks_using

CONTAINER = "community.docker.docker_container"
ALWAYS = ("community.docker.docker_container_info", "community.docker.docker_container_exec")
SECRET = re.compile(r"password|secret|token|_key\b|database_url|vault", re.I)

ALWAYS_TASKS = [found for module in ALWAYS for found in tasks_using(module)]
RUN_TASKS = [(where, task) for where, task, _ in tasks_using(CONTAINER)
             if task[CONTAINER].get("state", "started") != "absent"]


def secret_in_environment(args: dict) -> str | None:
    if "env_file" in args:
        return "an env_file"
    for name, value in (args.get("env") or {}).items():
        if not name.endswith("_FILE") and (SECRET.search(name) or SECRET.search(str(value))):
            return f"env {name}"
    return None


def test_the_walk_finds_the_container_tasks_there_are():
    assert len(ALWAYS_TASKS) >= 8 and len(RUN_TASKS) >= 4


@pytest.mark.parametrize("where,task", [(w, t) for w, t, _ in ALWAYS_TASKS], ids=[w for w, _, _ in ALWAYS_TASKS])
def test_an_inspection_or_a_command_in_a_container_keeps_its_result_out_of_the_output(where, task):
    assert task.get("no_log") is True, f"{where}: its result can hold secrets; add no_log: true"


@pytest.mark.parametrize("where,task", RUN_TASKS, ids=[w for w, _ in RUN_TASKS])
def test_a_container_given_secrets_in_its_environment_keeps_its_result_out_of_the_output(where, task):
    secret = secret_in_environment(task[CONTAINER])
    if secret:
        assert task.get("no_log") is True, f"{where}: the container gets {secret}; add no_log: true"


def test_the_check_tells_a_secret_in_the_environment():
    assert secret_in_environment({"env_file": "/etc/erp/app.env"}) == "an env_file"
    assert secret_in_environment({"env": {"POSTGRES_PASSWORD": "{{ erp_db_password }}"}}) == "env POSTGRES_PASSWORD"
    assert secret_in_environment({"env": {"URL": "{{ erp_database_url }}"}}) == "env URL"
    assert secret_in_environment({"env": {"POSTGRES_PASSWORD_FILE": "/run/secrets/db", "POSTGRES_DB": "erp"}}) is None
