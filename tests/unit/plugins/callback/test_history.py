# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The callback erp.ops.history, through the repository's own ansible.cfg, on localhost.

A run with a failing task is recorded (ARA, offline client, a sqlite database in a temporary
ARA_BASE_DIR) with its failed task; extra variables, inline or from a file, and a no_log
task's result are not in the record; ERP_RECORD_HISTORY=0 records nothing; a controller
without ARA runs the playbook with one warning; a playbook erpctl runs through ansible-runner
is recorded with erpctl's labels. How the record looks in ARA's web UI (headless Chromium)
is tests/lab/test_history.py's part: a server and a browser cost more than a unit test may.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.erp.ops.plugins.callback import history
from ara.plugins.callback import ara_default
from erpctl.runner import AnsibleRunner
from history_browser import database, leaked

REPO = Path(__file__).resolve().parents[4]
SECRETS = {"from_file": "file-secret-7f3a9c", "inline": "inline-secret-2b8e41", "no_log": "nolog-secret-5d0c77"}
PLAYBOOK = """\
- name: Record a failing run
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Greet
      ansible.builtin.debug:
        msg: hello
    - name: Handle a credential
      ansible.builtin.set_fact:
        handled: "{{ from_file }} {{ inline }} {{ lookup('ansible.builtin.env', 'HISTORY_TEST_SECRET') }}"
      no_log: true
    - name: Fail on purpose
      ansible.builtin.fail:
        msg: this task fails
"""


def documented_options(source: str) -> dict:
    return yaml.safe_load(source)["options"]


def test_every_option_of_aras_callback_is_documented_as_ara_documents_it():
    ours = documented_options(history.DOCUMENTATION)
    for name, spec in documented_options(ara_default.DOCUMENTATION).items():
        assert ours.get(name) == spec, f"option {name} differs from ARA's ara_default"
    assert {"record", "base_dir", "labels"} <= ours.keys()


@pytest.mark.parametrize(("extra_vars", "expected"), [
    ((), []),
    (None, []),
    (("a=1", '{"b": 2}'), []),
    (("@vars.json",), ["/work/vars.json"]),
    (("@/abs/secret.yml", "x=1", "@"), ["/abs/secret.yml"]),
])
def test_extra_vars_files_are_the_at_arguments_made_absolute(extra_vars, expected):
    assert history.extra_vars_files(extra_vars, "/work") == expected


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("history")
    (work / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (work / "run.yml").write_text(PLAYBOOK)
    (work / "secret.json").write_text(json.dumps({"from_file": SECRETS["from_file"]}))
    return work


def run(project: Path, base_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "hosts", "run.yml", "-e", "@secret.json",
         "-e", f"inline={SECRETS['inline']}"],
        cwd=project, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
             "ARA_BASE_DIR": str(base_dir), "ARA_API_CLIENT": "offline", "ERP_RECORD_HISTORY": "1",
             "HISTORY_TEST_SECRET": SECRETS["no_log"], **env},
    )


def playbook_rows(base_dir: Path) -> list[tuple]:
    with sqlite3.connect(database(base_dir)) as connection:
        return connection.execute("SELECT id, path, status FROM playbooks ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def recorded(project) -> Path:
    base_dir = project / "ara"
    proc = run(project, base_dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # The offline client's migration report stays out of the run's output.
    assert "Operations to perform" not in proc.stdout and "[ara]" not in proc.stdout
    return base_dir


def test_a_failed_run_is_recorded_failed_with_its_failed_task(recorded):
    assert [(Path(path).name, status) for _, path, status in playbook_rows(recorded)] == [("run.yml", "failed")]
    with sqlite3.connect(database(recorded)) as connection:
        tasks = dict(connection.execute("SELECT name, status FROM tasks").fetchall())
    assert tasks == {"Greet": "completed", "Handle a credential": "completed", "Fail on purpose": "failed"}


def test_extra_variables_and_no_log_results_are_not_recorded(recorded):
    assert leaked(recorded, SECRETS) == []


def test_erp_record_history_0_records_nothing(project, recorded):
    before = playbook_rows(recorded)
    proc = run(project, recorded, ERP_RECORD_HISTORY="0")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "erp.ops.history" not in proc.stderr
    assert playbook_rows(recorded) == before


def test_without_ara_the_run_goes_on_with_one_warning(project, tmp_path):
    # A package named ara that fails to import stands for a controller without ARA.
    (tmp_path / "ara").mkdir()
    (tmp_path / "ara" / "__init__.py").write_text("raise ImportError('No module named ara')\n")
    proc = run(project, tmp_path / "unused", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ARA is not installed" in proc.stderr and "this run is not recorded" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "PLAY RECAP" in proc.stdout
    assert not (tmp_path / "unused").exists()


def test_a_playbook_erpctl_runs_is_recorded_with_its_labels_and_without_its_secret_variables(
        project, recorded, tmp_path, monkeypatch):
    # ansible-runner replaces ANSIBLE_CALLBACK_PLUGINS: the callback is found by its
    # collection name, as the repository's ansible.cfg enables it.
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ansible.cfg").write_text(
        f"[defaults]\ncollections_path = {REPO / '.collections'}\ncallbacks_enabled = erp.ops.history\n")
    (repo / "run.yml").write_text(PLAYBOOK.replace("{{ from_file }}", "{{ db_password }}"))
    monkeypatch.setenv("ARA_BASE_DIR", str(recorded))
    monkeypatch.setenv("ERP_RECORD_HISTORY", "1")
    monkeypatch.setenv("HISTORY_TEST_SECRET", SECRETS["no_log"])
    before = playbook_rows(recorded)
    run = AnsibleRunner(repo, str(project / "hosts")).playbook(
        playbook="run.yml", limit="localhost", private_data_dir=tmp_path / "20261201-rollout", ident="stage-1",
        extravars={"inline": SECRETS["inline"], "db_password": SECRETS["from_file"]})
    assert run.status == "failed" and run.hosts["localhost"].task == "Fail on purpose"
    added = playbook_rows(recorded)[len(before):]
    assert [(Path(path).name, status) for _, path, status in added] == [("run.yml", "failed")]
    with sqlite3.connect(database(recorded)) as connection:
        labels = {name for (name,) in connection.execute(
            "SELECT labels.name FROM labels JOIN playbooks_labels ON playbooks_labels.label_id = labels.id"
            " WHERE playbooks_labels.playbook_id = ?", (added[0][0],))}
    assert {"erpctl", "erpctl:20261201-rollout"} <= labels
    assert leaked(recorded, SECRETS) == []
