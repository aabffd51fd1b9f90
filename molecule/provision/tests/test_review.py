"""The access review (playbooks/access_review.yml, the real entry playbook): read-only on the
hosts, and what was changed by hand shows up as drift in the Markdown and JSON reports."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from conftest import ALICE_KEY, NAME, PEOPLE, REPO, playbook, results

# dave as the lifecycle tests left him: deactivated.
DAVE = {"name": "dave", "roles": ["dba"], "state": "inactive"}


@pytest.fixture(scope="module")
def hand_changes(app, db):
    """What someone did by hand: an account, a key and a sudo group membership."""
    app.run_expect([0], "id mallory || useradd -m -s /bin/bash mallory")
    db.run_expect([0], f"echo '{ALICE_KEY.replace('alice@test', 'copied')}' >> /home/carol/.ssh/authorized_keys")
    db.run_expect([0], "usermod -aG sudo carol")
    yield
    app.run("userdel -r mallory")
    db.run("gpasswd -d carol sudo; sed -i '/copied$/d' /home/carol/.ssh/authorized_keys")


@pytest.fixture(scope="module")
def review(hand_changes, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    proc = playbook(REPO / "playbooks" / "access_review.yml", "-l", "lab", tmp=tmp,
                    extra={"access_people": [*copy.deepcopy(PEOPLE), DAVE], "access_review_report_dir": str(tmp),
                           "access_today": "2026-11-27"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    markdown = tmp / "access-review-2026-Q4-2026-11-27.md"
    report = json.loads((tmp / "access-review-2026-Q4-2026-11-27.json").read_text())
    return proc, report, markdown.read_text()


def test_hand_made_changes_are_drift(review):
    _proc, report, _markdown = review
    found = {(f["kind"], f["host"], f["account"]) for f in report["findings"]}
    assert ("unknown_account", NAME["app"], "mallory") in found
    assert ("unknown_key", NAME["db"], "carol") in found
    assert ("excess_rights", NAME["db"], "carol") in found
    # dave is deactivated in the matrix and locked on the hosts: no drift.
    assert not [f for f in report["findings"] if f["account"] == "dave"]


def test_the_report_lists_real_accounts_and_last_logins(review):
    _proc, report, _markdown = review
    dave = report["hosts"][NAME["db"]]["state"]["accounts"]["dave"]
    assert dave["locked"] is True
    assert dave["last_login"]  # lastlog answered for every account
    assert report["period"] == "2026-Q4"
    assert report["environment"] == "lab"


def test_the_markdown_report_follows_the_review_template(review):
    _proc, _report, markdown = review
    assert markdown.startswith("# Quarterly access review 2026-Q4 - lab")
    for section in ("## 1. Scope", "## 2. Access matrix", "## 3. Accounts found on the hosts", "## 4. Findings",
                    "## 5. Reviewer sign-off"):
        assert section in markdown
    assert "| unknown_account | " + NAME["app"] + " | `mallory` |" in markdown


def test_the_review_changes_nothing_on_the_hosts(review):
    proc, _report, _markdown = review
    tasks = yaml.safe_load((REPO / "roles" / "access" / "tasks" / "review.yml").read_text())
    on_controller = {t["name"] for t in tasks if t.get("delegate_to") == "localhost"}
    changed = [(task["task"]["name"].split(" : ", 1)[-1], host)
               for play in results(proc)["plays"] for task in play["tasks"]
               for host, result in task["hosts"].items() if result.get("changed")]
    assert changed  # the reports were written...
    assert {name for name, _host in changed} <= on_controller  # ...and only on the controller


def test_the_review_refuses_to_run_without_one_environment(tmp_path):
    proc = playbook(REPO / "playbooks" / "access_review.yml", tmp=tmp_path)
    assert proc.returncode != 0
    assert "Refusing to run: limit the run to exactly one environment" in proc.stdout
