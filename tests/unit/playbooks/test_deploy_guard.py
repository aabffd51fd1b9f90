"""The guard of deploy.yml and rollback.yml refuses in one line before any host is contacted.

Runs against the example prod inventory (documentation addresses that are never reached):
every refusal happens in the first play, which only asserts on the controller.
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


@pytest.mark.parametrize(("playbook", "args", "says"), [
    ("deploy.yml", ["-e", "erp_version=1.1.0"], "got no -l"),
    ("deploy.yml", ["-l", "prod-app1", "-e", "erp_version=1.1.0"], "got 'prod-app1'"),
    ("deploy.yml", ["-l", "prod,lab", "-e", "erp_version=1.1.0"], "got 'prod,lab'"),
    ("deploy.yml", ["-l", "prod"], "-e erp_version=<image tag>"),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=bad/tag"], "(got 'bad/tag')"),
    ("rollback.yml", [], "got no -l"),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", '{"erp_rollout_hosts": ["prod-lb1"]}'],
     'got ["prod-lb1"]'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_rollout_hosts=prod-app1"],
     'got "prod-app1"'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_rollout_stage=0"], "a stage number"),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_lock_id=a;rm"], '"a;rm"'),
    ("rollback.yml", ["-l", "prod", "-e", '{"erp_rollback_hosts": ["staging-app1"]}'], 'got ["staging-app1"]'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_bake_interval=0"], '(got 90, "0", 120)'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_bake_seconds=2m"], '"2m")'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_health_deadline=-5"], '(got "-5"'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", '{"erp_rollout_batches": [1, 0]}'],
     "erp_rollout_batches [1, 0] cannot split"),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", '{"erp_rollout_batches": ["half"]}'],
     "'half' (position 1)"),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_keep_images=-1"],
     '(got "-1", 2048, 20, 24, 600)'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_history_keep=0"],
     '(got 3, 2048, "0", 24, 600)'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_migrate_timeout=10m"],
     '"10m")'),
    ("deploy.yml", ["-l", "prod", "-e", "erp_version=1.1.0", "-e", "erp_deploy_backup_max_age_hours=0"],
     '20, "0", 600)'),
    ("rollback.yml", ["-l", "prod", "-e", '{"erp_lock_id": "a b"}'], '"a b")'),
    ("restore.yml", ["-l", "prod-db1"], "got 'prod-db1'"),
])
def test_guard_refuses_with_one_line_reason_and_contacts_no_host(playbook, args, says):
    proc = run(playbook, *args)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    refusals = [line for line in output.splitlines() if "Refusing to run" in line]
    assert refusals, output[-2000:]
    assert says in refusals[0]
    assert "PLAY [Preflight" not in output
    assert "UNREACHABLE" not in output


def test_entry_points_are_thin_imports():
    for name in ("deploy.yml", "rollback.yml"):
        text = (REPO / name).read_text()
        assert f"ansible.builtin.import_playbook: playbooks/{name}" in text
