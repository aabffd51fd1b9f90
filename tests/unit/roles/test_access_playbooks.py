"""The entry playbooks of provisioning and access review: the one-environment guard refuses
what it must (run for real with ansible-playbook on this controller), and provision.yml
proves every role's inputs on every host before the first change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
INVENTORY = """
lab:
  children:
    erp_app:
      hosts:
        lab-app1: {ansible_connection: local}
dev:
  children:
    dev_erp_app:
      hosts:
        dev-app1: {ansible_connection: local}
"""
PLAYBOOK = """
- name: Guarded
  hosts: all
  gather_facts: false
  any_errors_fatal: true
  tasks:
    - name: Guard
      ansible.builtin.import_role:
        name: erp_environment
- name: After the guard
  hosts: all
  gather_facts: false
  tasks:
    - name: Reached
      ansible.builtin.debug:
        msg: reached
"""


def run_guard(tmp_path: Path, *limit: str) -> subprocess.CompletedProcess:
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
         str(tmp_path / "play.yml"), *limit],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )


def test_one_environment_passes_the_guard(tmp_path):
    proc = run_guard(tmp_path, "-l", "lab")
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "reached" in proc.stdout
    assert "dev-app1" not in proc.stdout


@pytest.mark.parametrize(("limit", "shown"), [
    ((), "no -l"),
    (("-l", "lab,dev"), "'lab,dev'"),
    (("-l", "lab:dev"), "'lab:dev'"),
    (("-l", "lab-app1"), "'lab-app1'"),
    (("-l", "erp_app"), "'erp_app'"),
])
def test_anything_else_is_refused_with_the_reason(tmp_path, limit, shown):
    proc = run_guard(tmp_path, *limit)
    assert proc.returncode != 0
    assert "Refusing to run: limit the run to exactly one environment with -l lab|dev|staging|prod" in proc.stdout
    assert f"(got {shown})" in proc.stdout
    assert "reached" not in proc.stdout


def load(path: str) -> list[dict]:
    return yaml.safe_load((REPO / path).read_text())


def test_provision_guards_then_checks_every_role_before_changing_anything():
    guard, checks, provision = load("playbooks/provision.yml")
    assert guard["hosts"] == "all"
    assert guard["tasks"][0]["ansible.builtin.import_role"] == {"name": "erp_environment"}
    check = checks["tasks"][0]
    assert check["ansible.builtin.include_role"]["tasks_from"] == "preflight.yml"
    roles = ["base", "docker_engine", "hardening", "access", "erp_healthcheck"]
    assert check["loop"] == roles
    assert checks["any_errors_fatal"] is True
    assert [r["role"] for r in provision["roles"]] == roles


@pytest.mark.parametrize("name", ["provision", "site", "access_review"])
def test_root_entry_points_are_one_import_each(name):
    (play,) = load(f"{name}.yml")
    assert play["ansible.builtin.import_playbook"] == f"playbooks/{name}.yml"


def test_the_access_review_is_guarded_and_only_reads():
    guard, review = load("playbooks/access_review.yml")
    assert guard["tasks"][0]["ansible.builtin.import_role"] == {"name": "erp_environment"}
    assert review["tasks"][0]["ansible.builtin.include_role"] == {"name": "access", "tasks_from": "review.yml"}
    tasks = yaml.safe_load((REPO / "roles/access/tasks/review.yml").read_text())
    writers = [t["name"] for t in tasks if any(k in t for k in ("ansible.builtin.copy", "ansible.builtin.template",
                                                                "ansible.builtin.file"))]
    assert writers
    for task in tasks:
        if task["name"] in writers:
            assert task.get("delegate_to") == "localhost", task["name"]


def test_site_provisions_then_deploys():
    checks, provision, deploy = load("playbooks/site.yml")
    assert checks["tasks"][0]["ansible.builtin.import_role"] == {"name": "erp_environment"}
    assert provision["ansible.builtin.import_playbook"] == "provision.yml"
    assert deploy["ansible.builtin.import_playbook"] == "deploy.yml"


def test_site_refuses_a_run_without_a_release_before_provisioning(tmp_path):
    (tmp_path / "inventory.yml").write_text(INVENTORY)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
         str(REPO / "playbooks" / "site.yml"), "-l", "lab"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode != 0
    assert "Refusing to run: site.yml also deploys; give the release with -e erp_version=<image tag>" in proc.stdout
    assert "Check inputs of each role" not in proc.stdout
