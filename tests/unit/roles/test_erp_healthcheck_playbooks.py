"""The health check's entry playbooks: healthcheck.yml (install only the check), health.yml
(report) and incident.yml (diagnostics) are thin imports, and refuse in one line, before
any host is contacted, a run not limited to exactly one environment.

Runs against the example prod inventory (documentation addresses that are never reached).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
PLAYBOOKS = ["healthcheck.yml", "health.yml", "incident.yml"]


def run(playbook: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "inventories/prod", playbook, *args],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
    )


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_root_entry_point_is_one_import(name):
    (play,) = yaml.safe_load((REPO / name).read_text())
    assert play["ansible.builtin.import_playbook"] == f"playbooks/{name}"


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_the_first_play_is_the_environment_guard(name):
    guard = yaml.safe_load((REPO / "playbooks" / name).read_text())[0]
    assert guard["hosts"] == "all" and guard["any_errors_fatal"] is True
    assert guard["tasks"][0]["ansible.builtin.import_role"] == {"name": "erp_environment"}


def test_healthcheck_applies_only_the_erp_healthcheck_role_and_stops_everywhere_on_a_failure():
    _guard, install = yaml.safe_load((REPO / "playbooks" / "healthcheck.yml").read_text())
    assert install["hosts"] == "erp_lb:erp_app:erp_db"
    assert install["any_errors_fatal"] is True
    assert [role["role"] for role in install["roles"]] == ["erp_healthcheck"]


@pytest.mark.parametrize(("name", "limit", "shown"), [
    ("healthcheck.yml", [], "no -l"),
    ("health.yml", ["-l", "prod,lab"], "'prod,lab'"),
    ("incident.yml", ["-l", "prod-app1"], "'prod-app1'"),
])
def test_a_run_not_limited_to_one_environment_is_refused(name, limit, shown):
    proc = run(name, *limit)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    refusals = [line for line in output.splitlines() if "Refusing to run" in line]
    assert refusals, output[-2000:]
    assert f"(got {shown})" in refusals[0]
    assert "UNREACHABLE" not in output
    assert "TASK [Gathering Facts]" not in output and "TASK [erp_healthcheck" not in output
