"""restore.yml, backup.yml and backup_verify.yml refuse bad runs before any host is contacted.

Runs against the example prod inventory (documentation addresses that are never reached): every
refusal below happens in a first play that only asserts on the controller, so reaching a host
would show as UNREACHABLE in the output.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def run(playbook: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ansible-playbook", "-i", "inventories/prod", playbook, *args],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
    )


def refused(proc: subprocess.CompletedProcess, says: str) -> None:
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-2000:]
    assert says in output, output[-2000:]
    assert "UNREACHABLE" not in output
    assert "PLAY [Preflight" not in output
    assert "PLAY [Safety dump" not in output


def test_restore_on_prod_without_confirmation_is_refused():
    refused(run("restore.yml", "-l", "prod"), "Refusing to restore prod")


def test_restore_on_prod_with_the_wrong_confirmation_is_refused():
    refused(run("restore.yml", "-l", "prod", "-e", "restore_confirm=staging"), "-e restore_confirm=prod")


@pytest.mark.parametrize(("args", "says"), [
    ([], "limit the run to exactly one environment"),
    (["-l", "prod-db1", "-e", "restore_confirm=prod"], "limit the run to exactly one environment"),
    (["-l", "prod", "-e", "restore_confirm=prod", "-e", "restore_backup=20261127T021500Z",
      "-e", "restore_target_time=2026-11-27 14:03:00+00"], "Give at most one of restore_backup"),
    (["-l", "prod", "-e", "restore_confirm=prod", "-e", "restore_backup=../../etc"], "Give at most one of"),
])
def test_restore_refuses_bad_targets(args, says):
    refused(run("restore.yml", *args), says)


@pytest.mark.parametrize("playbook", ["backup.yml", "backup_verify.yml"])
def test_backup_playbooks_need_one_environment(playbook):
    refused(run(playbook), "limit the run to exactly one environment")


def test_backup_refuses_a_bad_label_before_installing_anything():
    proc = run("backup.yml", "-l", "prod", "-e", "backup_label=Bad Label")
    refused(proc, "backup_label: lower-case letters")
    assert "Apply the erp_backup role" not in proc.stdout


def test_entry_points_are_thin_imports():
    for name in ("backup.yml", "restore.yml", "backup_verify.yml"):
        text = (REPO / name).read_text()
        assert f"ansible.builtin.import_playbook: playbooks/{name}" in text
