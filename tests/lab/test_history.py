"""The run history of the lab session in ARA's web UI, as an operator opens it.

The module's runs are recorded, as every run is by default, into the session's own database
(conftest.lab_history; erp.ops.history is enabled in ansible.cfg). It deploys the running
release as `make demo` does, runs one faulty rollout (the build that crashes on start:
deploy.yml's health gate fails the canary and rolls it back), then serves the database with
`ara-manage runserver` and opens, in headless Chromium, the pages of both runs:
the run, its play, its hosts, and for the faulty one the failed task. Screenshots are kept
in artifacts/lab-history/screenshots. No value of the lab vault is anywhere in the history.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import (
    HISTORY,
    QUICK,
    app_hosts,
    current_versions,
    ensure_release,
    lab_vault_values,
    playbook,
    served_versions,
)
from history_browser import HistoryServer, database, leaked

SCREENSHOTS = HISTORY / "screenshots"
FAULTY = "1.1.0-fault-crash"


def deploy_runs(base_dir: Path, status: str) -> list[int]:
    """Ids of the recorded deploy.yml runs with ``status``, oldest first."""
    if not database(base_dir).exists():  # nothing recorded yet in this session
        return []
    with sqlite3.connect(f"file:{database(base_dir)}?mode=ro", uri=True) as connection:
        rows = connection.execute("SELECT id, path FROM playbooks WHERE status = ? ORDER BY id", (status,)).fetchall()
    return [playbook_id for playbook_id, path in rows if Path(path).name == "deploy.yml"]


def words(text: str) -> str:
    return " ".join(str(text).split())


@pytest.fixture(scope="module")
def recording(lab_history):
    """The session records nothing (conftest.lab_history) but this module's runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ERP_RECORD_HISTORY", "1")
        yield lab_history


@pytest.fixture(scope="module")
def history(lab_hosts, recording):
    """A good deploy.yml run (the running release deployed again, as make demo deploys),
    then one faulty rollout; the history server over the session's database."""
    lab_history = recording
    ensure_release(lab_hosts, "1.0.0", or_any=True)
    (running,) = set(current_versions(lab_hosts).values())
    proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={running}", *QUICK)
    assert proc.returncode == 0, proc.output[-4000:]
    good = deploy_runs(lab_history, "completed")[-1]
    before = current_versions(lab_hosts)
    failed_before = deploy_runs(lab_history, "failed")
    proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={FAULTY}", *QUICK)
    assert proc.returncode != 0, proc.output[-4000:]
    assert f"Deploy of {FAULTY} to lab FAILED: " in " ".join(proc.output.split()), proc.output[-4000:]
    assert current_versions(lab_hosts) == before
    assert served_versions() == set(before.values())
    (faulty,) = [run for run in deploy_runs(lab_history, "failed") if run not in failed_before]
    # The crashed build's container stays in the canary's idle slot, as a failed rollout
    # leaves it for diagnosis; the modules after this one start from a lab without it.
    for host in app_hosts(lab_hosts):
        host.ssh(f"sudo docker ps -aq --filter ancestor=registry:5000/erp-app:{FAULTY} | xargs -r sudo docker rm -f")
    with HistoryServer(lab_history, HISTORY / "runserver.log") as server:
        yield server, good, faulty


def shot(name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    print(f"screenshot: {path}")
    return path


def test_the_faulty_rollout_shows_its_hosts_and_its_failed_task(history, lab_hosts):
    server, _, faulty = history
    hosts = [host["name"] for host in server.api(f"/api/v1/hosts?playbook={faulty}&limit=100")["results"]]
    # deploy.yml's guard and preflight plays run on every host of the environment.
    assert set(lab_hosts) <= set(hosts), hosts
    failed = server.api(f"/api/v1/results?playbook={faulty}&status=failed&limit=100")["results"]
    assert failed, f"run {faulty} recorded no failed result"
    tasks = {result["task"] for result in failed}
    task_names = [words(server.api(f"/api/v1/tasks/{task}")["name"]) for task in sorted(tasks)]
    # The run's page filtered to its failed results: the link behind a host's red count.
    page = server.browse(f"/playbooks/{faulty}.html?status=failed", shot("faulty-deploy"))
    assert f"Playbook #{faulty}" in page and "deploy.yml" in page
    for host in hosts:
        assert host in page, f"host {host} not on the page of run {faulty}"
    assert "FAILED" in page
    for name in task_names:
        assert name in page, f"failed task {name!r} not on the page of run {faulty}"
    last = max(failed, key=lambda result: result["id"])
    play = words(server.api(f"/api/v1/plays/{last['play']}")["name"])
    task = words(server.api(f"/api/v1/tasks/{last['task']}")["name"])
    detail = server.browse(f"/results/{last['id']}.html", shot("faulty-deploy-failed-result"))
    assert "Status FAILED" in detail
    assert f"Play {play}" in detail and f"Task {task}" in detail


def test_the_good_deploy_shows_its_plays_and_its_hosts(history, lab_hosts):
    server, good, _ = history
    hosts = [host["name"] for host in server.api(f"/api/v1/hosts?playbook={good}&limit=100")["results"]]
    assert set(lab_hosts) <= set(hosts), hosts
    page = server.browse(f"/playbooks/{good}.html", shot("good-deploy"))
    assert f"Playbook #{good}" in page and "deploy.yml" in page
    for host in hosts:
        assert host in page, f"host {host} not on the page of run {good}"
    plays = server.api(f"/api/v1/plays?playbook={good}&limit=100")["results"]
    assert plays, f"run {good} recorded no play"
    # The play that rolled the release out: the one with the most results.
    play = max(plays, key=lambda item: item["items"]["results"])
    (result,) = server.api(f"/api/v1/results?play={play['id']}&limit=1")["results"]
    detail = server.browse(f"/results/{result['id']}.html", shot("good-deploy-result"))
    assert f"Play {words(play['name'])}" in detail


def test_no_value_of_the_lab_vault_is_in_the_history(history, lab_history):
    assert leaked(lab_history, lab_vault_values()) == []
