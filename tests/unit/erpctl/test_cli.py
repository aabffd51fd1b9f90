# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The other commands, bad input (one line, no traceback, exit 3) and secrets."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from conftest import TtyInput
from erpctl.cli import main
from erpctl.errors import EXIT_CODES_HELP
from erpctl.progress import MASK, Progress
from erpctl.rollout import StageCanceller
from erpctl.session import Interrupt

from erpctl import contract


def one_line_error(result, fragment):
    assert result.code == 3, (result.code, result.err)
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("erpctl: ")
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("argv, fragment", [
    (["rollout", "--env", "lab", "--version", "1.1.0", "--stages", "canary,fifty", "--yes"], "'fifty'"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "--stages", "0", "--yes"], "--stages:"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "--bake", "soon", "--yes"], "--bake: 'soon' is not a duration"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "--interval", "0", "--yes"], "--interval: must be more than 0"),
    (["rollout", "--env", "lab", "--version", "1.1.0 ; rm", "--yes"], "is not an image tag"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "--error-rate-max", "5", "--yes"], "--error-rate-max"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "--latency-p95-max-ratio", "0.5"], "at least 1"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "-e", "erp_version=2"], "set by erpctl itself"),
    (["rollout", "--env", "lab", "--version", "1.1.0", "-e", "novalue"], "NAME=VALUE"),
    (["rollout", "--env", "lab"], "--version"),
    (["rollout", "--env", "qa", "--version", "1.1.0", "--yes"], "unknown environment 'qa' (inventories in "),
    (["status", "--env", "prod", "--vault-id", "prod@prompt"], "cannot prompt"),
    (["status", "--env", "lab,prod"], "not an inventory group name"),
    (["launch"], "invalid choice"),
    (["lock", "steal", "--env", "lab"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_3(erpctl, lab, argv, fragment):
    result = erpctl(*argv)
    one_line_error(result, fragment)
    assert [call for call in lab.calls if call[0] == "playbook"] == []


def test_inventory_missing(erpctl, repo):
    for env in ("lab", "prod"):
        (repo / "inventories" / env).rmdir()
    one_line_error(erpctl("status", "--env", "lab"), "unknown environment 'lab' (inventories in ")
    (repo / "inventories").rmdir()
    one_line_error(erpctl("status", "--env", "lab"), "inventories does not exist")
    one_line_error(erpctl("status", "--env", "lab", "--inventory", str(repo / "nowhere")), "nowhere does not exist")


def test_environment_directory_without_its_group(erpctl):
    # inventories/prod exists, but the (fake) inventory it loads has no prod group
    one_line_error(erpctl("status", "--env", "prod"), "no environment group 'prod'")


def test_playbook_missing(erpctl, repo):
    (repo / "playbooks" / "deploy.yml").unlink()
    one_line_error(erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--yes"), "playbooks/deploy.yml not found")


def test_not_in_a_repository(tmp_path):
    err = io.StringIO()
    code = main(["status", "--env", "lab"], stderr=err, stdout=io.StringIO(), environ={}, cwd=tmp_path)
    assert code == 3
    assert err.getvalue().startswith("erpctl: not inside the erp.ops repository")
    code = main(["status", "--env", "lab"], stderr=err, environ={"ERPCTL_REPO": str(tmp_path)})
    assert code == 3 and "ERPCTL_REPO=" in err.getvalue()


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["rollout", "--help"])
    assert caught.value.code == 0
    assert EXIT_CODES_HELP.splitlines()[1] in capsys.readouterr().out


def test_status_table(erpctl, lab):
    lab.apps["app2"].release_file = False
    result = erpctl("status", "--env", "lab")
    assert result.code == 2
    header, app1, app2 = result.out.splitlines()
    assert header.split() == ["HOST", "SLOT", "VERSION", "DIGEST", "HEALTH", "LAST", "DEPLOY"]
    assert app1.split()[:5] == ["app1", "blue", "1.0.0", "sha256:1.0.0", "pass"]
    assert "release.json not found" in app2
    assert "no release state from app2" in result.err


def test_status_json(erpctl, lab):
    result = erpctl("status", "--env", "lab", "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["hosts"]["app1"]["health"] == "pass"
    assert report["hosts"]["app2"]["slot"] == "blue"


def test_history_newest_first(erpctl, lab):
    assert erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--yes", "--bake", "0").code == 0
    result = erpctl("history", "--env", "lab")
    assert result.code == 0
    rows = result.out.splitlines()[1:]
    assert [row.split()[1] for row in rows] == ["app2", "app1"]
    assert all("1.1.0" in row for row in rows)


def test_rollback_command(erpctl, lab):
    assert erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--yes", "--bake", "0").code == 0
    result = erpctl("rollback", "--env", "lab", "--to", "1.0.0", "--yes")
    assert result.code == 0, result.err
    last = [call for call in lab.calls if call[0] == "playbook"][-1]
    assert last[1:] == (contract.ROLLBACK_PLAYBOOK, "lab",
                        {contract.VAR_ROLLBACK_HOSTS: ["app1", "app2"], contract.VAR_VERSION: "1.0.0"})
    assert {app.version for app in lab.apps.values()} == {"1.0.0"}
    only = erpctl("rollback", "--env", "lab", "--hosts", "app2", "--yes")
    assert [call for call in lab.calls if call[0] == "playbook"][-1][3] == {contract.VAR_ROLLBACK_HOSTS: ["app2"]}
    assert only.code == 0
    one_line_error(erpctl("rollback", "--env", "lab", "--hosts", "app9", "--yes"), "app9 not app hosts of lab")
    one_line_error(erpctl("rollback", "--env", "lab"), "pass --yes")


def test_rollback_command_is_refused_while_another_run_holds_the_lock(erpctl, lab):
    lab.lb.lock = json.dumps({"run": "deploy-of-bob", "by": "bob", "time": "t", "version": "1.1.0"})
    result = erpctl("rollback", "--env", "lab", "--to", "1.0.0", "--yes")
    assert result.code == 2
    assert "rollback failed: lb1: failed in task 'Refuse': Deploy lock of lab held by bob" in result.err, result.err
    assert {app.version for app in lab.apps.values()} == {"1.0.0"}
    assert json.loads(lab.lb.lock)["run"] == "deploy-of-bob"


def test_lock_status_and_release(erpctl, lab):
    free = erpctl("lock", "status", "--env", "lab")
    assert free.code == 0 and "deploy lock of lab: free" in free.out
    lab.lb.lock = json.dumps({"run": "x", "by": "bob", "time": "t", "version": "1.0.1"})
    held = erpctl("lock", "status", "--env", "lab")
    assert "held by bob since t for 1.0.1 (no message) on lb1" in held.out
    declined = erpctl("lock", "release", "--env", "lab", stdin=TtyInput("no\n"))
    assert declined.code == 3 and lab.lb.lock is not None
    released = erpctl("lock", "release", "--env", "lab", "--yes")
    assert released.code == 0 and lab.lb.lock is None


def test_backup(erpctl, lab):
    result = erpctl("backup", "--env", "lab")
    assert result.code == 0
    assert [call[1:3] for call in lab.calls if call[0] == "playbook"] == [(contract.BACKUP_PLAYBOOK, "lab")]


def test_unreachable_host_is_reported_not_raised(erpctl, lab):
    lab.unreachable = {"app2"}
    result = erpctl("status", "--env", "lab")
    assert result.code == 2
    assert "unreachable: ssh: connect to host" in result.out


def test_secrets_never_reach_output_report_or_audit(erpctl, lab, repo):
    secret = "S3cr3t-vault-value"  # noqa: S105 - a stand-in vault value the test looks for
    lab.fail_deploy = {"app1": f"could not log in with {secret}"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--yes", "-e", f"vault_erp_db_password={secret}",
                    "-e", f"erp_api_token={secret}x", "-e", "erp_note=harmless")
    assert result.code == 1
    written = [path.read_text() for path in (repo / "artifacts" / "erpctl").rglob("*") if path.is_file()]
    for text in (result.out, result.err, *written):
        assert secret not in text
    assert "harmless" in result.report()["extravars"]["erp_note"]
    assert result.report()["extravars"]["vault_erp_db_password"] == MASK
    assert "could not log in with ********" in result.out
    # the playbook itself still gets the real value
    assert next(call for call in lab.calls if call[0] == "playbook")[3]["vault_erp_db_password"] == secret
    # and what erpctl writes is its user's only, whatever the umask
    artifacts = repo / "artifacts" / "erpctl"
    directories = [artifacts, *(path for path in artifacts.iterdir() if path.is_dir())]
    assert {oct(path.stat().st_mode & 0o777) for path in directories} == {"0o700"}
    assert oct((artifacts / "audit.log").stat().st_mode & 0o777) == "0o600"
    assert oct((Path(result.report()["run_dir"]) / "report.json").stat().st_mode & 0o777) == "0o600"


def test_progress_plain_and_tty():
    plain, tty = io.StringIO(), io.StringIO()
    clock = iter(range(100)).__next__
    for stream, is_tty in ((plain, False), (tty, True)):
        progress = Progress(stream, tty=is_tty, secrets=["hunter2"], clock=clock)
        progress.set_phase("stage 1/2 canary", "deploying")
        progress.event({"event": "playbook_on_task_start", "event_data": {"task": "Start the new slot"}})
        progress.event({"event": "runner_on_ok", "event_data": {"host": "app1", "task": "Start the new slot",
                                                                "res": {"changed": True, "stdout": "hunter2"}}})
        progress.event({"event": "runner_on_failed", "event_data": {"host": "app2", "task": "Gate",
                                                                    "res": {"msg": "bad password hunter2"}}})
        progress.close()
    assert "stage 1/2 canary | app1 | changed | Start the new slot" in plain.getvalue()
    assert "\x1b[K" not in plain.getvalue()
    assert "\r\x1b[K" in tty.getvalue()
    for text in (plain.getvalue(), tty.getvalue()):
        assert "hunter2" not in text
        assert "stage 1/2 canary | app2 | FAILED | Gate: bad password ********" in text


def test_stage_canceller_waits_for_a_task_boundary():
    class S:
        interrupt = Interrupt()

    canceller = StageCanceller(S, lambda event: True)
    assert not canceller.cancel()
    S.interrupt.press()
    canceller.event({"event": "runner_on_ok", "event_data": {"host": "app1"}})
    assert not canceller.cancel()  # the running task finishes first
    canceller.event({"event": "playbook_on_task_start", "event_data": {}})
    assert canceller.cancel()
    hurry = StageCanceller(type("S2", (), {"interrupt": Interrupt()}), lambda event: True)
    hurry.session.interrupt.press()
    hurry.session.interrupt.press()
    assert hurry.cancel()  # a second Ctrl-C does not wait


def test_slurp_result_decoding():
    from erpctl.release import decode_slurp, parse_release_document

    doc = {"current": {"version": "1.0.0", "slot": "blue"}, "history": []}
    text = decode_slurp({"content": base64.b64encode(json.dumps(doc).encode()).decode()})
    assert parse_release_document("h", text).slot == "blue"
    assert parse_release_document("h", "{").error.startswith("/var/lib/erp/release.json is not JSON")
    assert parse_release_document("h", '{"current": {}}').error.endswith("has no current.version")


def test_runner_artifacts_keep_no_secret(tmp_path):
    from erpctl.runner import scrub_command_artifact, split_secret_vars

    command = tmp_path / "command"
    command.write_text(json.dumps({"command": ["ansible-playbook"], "env": {"PATH": "/bin", "GITHUB_TOKEN": "t0k",
                                                                           "ANSIBLE_VAULT_PASSWORD": "pw"}}))
    scrub_command_artifact(command)
    env = json.loads(command.read_text())["env"]
    assert env == {"PATH": "/bin", "GITHUB_TOKEN": MASK, "ANSIBLE_VAULT_PASSWORD": MASK}
    public, secret = split_secret_vars({"erp_version": "1", "vault_erp_secret_key": "k", "erp_api_token": "t"})
    assert public == {"erp_version": "1"}
    assert secret == {"vault_erp_secret_key": "k", "erp_api_token": "t"}


def test_release_state_as_the_deploy_writes_it():
    from erpctl.release import parse_release_document

    state = {"current": {"version": "1.1.0", "image": "registry:5000/erp-app@sha256:ab", "slot": "green",
                         "time": "2026-11-27T20:00:00+00:00", "by": "alice@ctl", "rollout": "r1"},
             "previous": {"version": "1.0.0", "slot": "blue", "image": "x", "time": "t0", "by": "bob"},
             "history": [{"version": "1.1.0", "slot": "green", "time": "t1", "by": "alice@ctl", "outcome": "deployed"}]}
    release = parse_release_document("app1", json.dumps(state))
    assert release.error is None
    assert release.current == {"version": "1.1.0", "image": "registry:5000/erp-app@sha256:ab", "slot": "green",
                               "time": "2026-11-27T20:00:00+00:00", "by": "alice@ctl", "rollout": "r1"}
    assert release.previous["version"] == "1.0.0"
    assert release.history[0]["by"] == "alice@ctl" and release.history[0]["time"] == "t1"
    assert release.history[0]["outcome"] == "deployed"
    fresh = parse_release_document("app2", json.dumps({"current": None, "previous": None, "history": []}))
    assert fresh.error is None and fresh.version is None


def test_lock_release_says_what_it_did(erpctl, lab):
    lab.lb.lock = json.dumps({"run": "x", "by": "bob", "time": "t", "version": "1.0.1"})
    released = erpctl("lock", "release", "--env", "lab", "--yes")
    assert "erpctl: ok: deploy lock of lab released (was held by bob since t" in released.out


def test_a_rescued_failure_is_not_the_hosts_outcome():
    from erpctl.runner import outcome_collector

    hosts = {}
    handle = outcome_collector(hosts, None)
    handle({"event": "runner_on_failed", "event_data": {"host": "app1", "task": "Gate", "res": {"msg": "503"}}})
    handle({"event": "runner_on_failed", "event_data": {"host": "app2", "task": "Gate", "res": {"msg": "503"}}})
    handle({"event": "runner_on_ok", "event_data": {"host": "app1", "task": "Put the old slot back", "res": {}}})
    handle({"event": "playbook_on_stats", "event_data": {"failures": {"app2": 1}, "dark": {}, "rescued": {"app1": 1}}})
    assert hosts["app1"].status == "ok" and "rescued" in hosts["app1"].message
    assert hosts["app2"].status == "failed" and hosts["app2"].message == "503"


@pytest.mark.parametrize("digest, shown", [
    ("registry:5000/erp-app@sha256:c20c40d8e502cf4ca4dea6501197bf07", "sha256:c20c40d8e502"),
    ("sha256:c20c40d8e502cf4ca4dea6501197bf07", "sha256:c20c40d8e502"),
    (None, "-"),
    ("erp-app:1.1.0", "erp-app:1.1.0"),
])
def test_digest_column(digest, shown):
    from erpctl.commands import _short

    assert _short(digest) == shown
