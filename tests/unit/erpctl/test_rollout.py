# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""erpctl rollout end to end against the fake runner: stages, rollback, exit codes, Ctrl-C."""

from __future__ import annotations

import json
import os

from conftest import TtyInput
from erpctl.session import Interrupt

from erpctl import contract

YES = ("--yes", "--bake", "30s", "--interval", "5s")


def deploys(lab):
    return [call[3] for call in lab.calls if call[:2] == ("playbook", contract.DEPLOY_PLAYBOOK)]


def rollbacks(lab):
    """rollback.yml's extra vars, less the lock id (asserted on its own: rollout_lock_ids)."""
    return [{key: value for key, value in call[3].items() if key != contract.VAR_LOCK_ID}
            for call in lab.calls if call[:2] == ("playbook", contract.ROLLBACK_PLAYBOOK)]


def rollout_lock_ids(lab):
    """The lock ids of lock.yml's acquire, of every deploy stage and of every rollback run."""
    acquired = [call[3][contract.VAR_LOCK_RUN] for call in lab.calls
                if call[:2] == ("playbook", contract.LOCK_PLAYBOOK) and call[3][contract.VAR_LOCK_ACTION] == "acquire"]
    used = [call[3].get(contract.VAR_LOCK_ID) for call in lab.calls
            if call[:2] in (("playbook", contract.DEPLOY_PLAYBOOK), ("playbook", contract.ROLLBACK_PLAYBOOK))]
    return acquired, used


def versions(lab):
    return {name: app.version for name, app in lab.apps.items()}


def locks(lab):
    return {name: app.lock for name, app in (*lab.apps.items(), ("lb1", lab.lb)) if app.lock is not None}


def test_good_rollout_goes_stage_by_stage(erpctl, lab):
    lab.apps.update({})
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 0, result.err
    assert [d[contract.VAR_ROLLOUT_HOSTS] for d in deploys(lab)] == [["app1"], ["app2"]]
    first = deploys(lab)[0]
    assert first[contract.VAR_VERSION] == "1.1.0"
    assert first[contract.VAR_ROLLOUT_BATCHES] == ["100%"]
    # Stage numbers: deploy.yml converges, backs up and migrates in stage 1 only.
    assert [d[contract.VAR_ROLLOUT_STAGE] for d in deploys(lab)] == [1, 2]
    assert first[contract.VAR_LOCK_ID] == deploys(lab)[1][contract.VAR_LOCK_ID]
    assert first[contract.VAR_LOCK_ID] == result.report()["lock"]["run"]
    assert result.report()["lock"]["host"] == "lb1"
    assert all(call[2] == "lab" for call in lab.calls if call[0] == "playbook")
    assert rollbacks(lab) == []
    assert versions(lab) == {"app1": "1.1.0", "app2": "1.1.0"}
    assert locks(lab) == {}
    assert "stage 1 canary: app1 (1.0.0 -> 1.1.0)" in result.out
    assert "erpctl: ok: lab is on 1.1.0" in result.out
    report = result.report()
    assert report["outcome"] == "succeeded" and report["exit_code"] == 0
    assert [stage["outcome"] for stage in report["stages"]] == ["passed", "passed"]
    assert report["stages"][0]["analysis"]["decision"]["verdict"] == "pass"
    # 30 s bake polled every 5 s: 7 polls after the first scrape, 100 user requests between scrapes
    assert report["stages"][0]["analysis"]["polls"] == 7
    assert report["stages"][0]["analysis"]["new"]["requests"] == 700
    assert report["user"]
    assert result.audit()[-1]["outcome"] == "succeeded"


def test_failed_stage_rolls_back_exactly_the_touched_hosts(erpctl, lab):
    lab.apps["app3"] = type(lab.apps["app1"])("app3", "10.0.0.13")
    lab.fail_deploy = {"app2": "erp_health: http://10.0.0.12:8002/health/ready: HTTP 503"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--stages", "canary,1", *YES)
    assert result.code == 1, result.err
    # app3 was never touched: stage 3 did not start, and it is not rolled back
    assert [d[contract.VAR_ROLLOUT_HOSTS] for d in deploys(lab)] == [["app1"], ["app2"]]
    assert rollbacks(lab) == [{contract.VAR_ROLLBACK_HOSTS: ["app1", "app2"], contract.VAR_VERSION: "1.0.0"}]
    # The rollback works under the rollout's own lock, as its stages do (rollback.yml refuses
    # any other run's).
    acquired, used = rollout_lock_ids(lab)
    assert len(acquired) == 1 and used == acquired * 3
    assert versions(lab) == {"app1": "1.0.0", "app2": "1.0.0", "app3": "1.0.0"}
    assert locks(lab) == {}
    assert "ROLLED BACK" in result.err and "HTTP 503" in result.err
    report = result.report()
    assert report["outcome"] == "rolled-back"
    assert report["stages"][1]["outcome"] == "failed"
    assert report["rollback"][0]["hosts"] == ["app1", "app2"]


def test_failed_analysis_rolls_back_before_the_second_stage(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0-fault-errors-500", *YES)
    assert result.code == 1
    assert [d[contract.VAR_ROLLOUT_HOSTS] for d in deploys(lab)] == [["app1"]]
    assert rollbacks(lab) == [{contract.VAR_ROLLBACK_HOSTS: ["app1"], contract.VAR_VERSION: "1.0.0"}]
    assert versions(lab) == {"app1": "1.0.0", "app2": "1.0.0"}
    decision = result.report()["stages"][0]["analysis"]["decision"]
    assert decision["verdict"] == "fail"
    assert any("error rate 30.00%" in reason for reason in decision["reasons"])
    assert "canary analysis failed: error rate 30.00%" in result.err


def test_unhealthy_canary_ends_the_bake_at_once(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0-fault-never-ready", "--yes", "--bake", "10m")
    assert result.code == 1
    analysis = result.report()["stages"][0]["analysis"]
    assert analysis["stopped"] == "health" and analysis["polls"] == 1
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1"]


def test_slow_release_fails_on_latency(erpctl, lab):
    lab.apps["app3"] = type(lab.apps["app1"])("app3", "10.0.0.13")
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0-slow", *YES)
    assert result.code == 1
    reasons = result.report()["stages"][0]["analysis"]["decision"]["reasons"]
    assert any("latency p95" in reason for reason in reasons), reasons


def test_insufficient_traffic_policy(erpctl, lab):
    lab.requests_per_poll = 1
    refused = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert refused.code == 1
    assert "insufficient traffic: 7 requests" in refused.err
    assert refused.report()["stages"][0]["analysis"]["decision"]["verdict"] == "insufficient-traffic"
    passed = erpctl("rollout", "--env", "lab", "--version", "1.2.0", *YES, "--on-insufficient-traffic", "pass")
    assert passed.code == 0, passed.err


def test_host_reporting_the_old_version_fails_the_stage(erpctl, lab):
    lab.deploy_reports_wrong_version = True
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 1
    assert "app1 reports 1.0.0" in result.report()["failure"]


def test_a_stage_is_verified_from_what_deploy_yml_hands_back_without_reading_the_hosts_again(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 0, result.err
    assert [call[3] for call in lab.calls if call[0] == "adhoc" and "release.json" in str(call[3])] == \
        [f"src={contract.RELEASE_FILE}"]  # once, for the plan
    assert result.report()["stages"][0]["verify"]["app1"]["version"] == "1.1.0"


def test_a_deploy_that_hands_back_no_release_state_fails_the_stage(erpctl, lab):
    lab.stats_missing = True
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 1
    assert "app1: deploy.yml reported no release state" in result.report()["failure"]
    assert {app.version for app in lab.apps.values()} == {"1.0.0"}


def test_failed_rollback_exits_2(erpctl, lab):
    lab.fail_deploy = {"app1": "boom"}
    lab.fail_rollback = True
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 2
    assert "ROLLBACK FAILED" in result.err
    assert result.report()["outcome"] == "failed"
    assert locks(lab) == {}


def test_rollback_checks_what_the_hosts_report(erpctl, lab):
    lab.fail_deploy = {"app2": "boom"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 1
    assert result.report()["rollback"][-1]["verify"]["app1"]["version"] == "1.0.0"


def test_interrupt_rolls_back_touched_hosts_and_exits_130(erpctl, lab):
    interrupt = Interrupt()
    lab.interrupt_on_stage = (2, interrupt)
    lab.apps["app3"] = type(lab.apps["app1"])("app3", "10.0.0.13")
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--stages", "canary,1", *YES,
                    interrupt=interrupt)
    assert result.code == 130
    assert [d[contract.VAR_ROLLOUT_HOSTS] for d in deploys(lab)] == [["app1"], ["app2"]]
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1", "app2"]
    assert versions(lab) == {"app1": "1.0.0", "app2": "1.0.0", "app3": "1.0.0"}
    assert locks(lab) == {}
    assert result.report()["outcome"] == "interrupted"


def test_interrupt_cancels_at_the_next_task_boundary(erpctl, lab):
    interrupt = Interrupt()
    lab.interrupt_on_stage = (1, interrupt)
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES, interrupt=interrupt)
    assert result.code == 130
    stage = result.report()["stages"][0]
    assert stage["deploy"]["status"] == "canceled"
    assert stage["outcome"] == "interrupted"
    assert len(deploys(lab)) == 1
    # the stage's host counts as touched: it may have been switched before the cancel
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1"]


def test_no_rollback_on_interrupt(erpctl, lab):
    interrupt = Interrupt()
    lab.interrupt_on_stage = (1, interrupt)
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES, "--no-rollback-on-interrupt",
                    interrupt=interrupt)
    assert result.code == 130
    assert rollbacks(lab) == []
    assert locks(lab) == {}
    assert "no rollback" in result.err and "app1 may run 1.1.0" in result.err


def test_dry_run_changes_nothing(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--dry-run")
    assert result.code == 0
    assert deploys(lab) == [] and locks(lab) == {}
    assert "stage 2 50%: app2 (1.0.0 -> 1.1.0)" in result.out
    assert result.report()["outcome"] == "dry-run"


def test_json_prints_the_report(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES, "--json")
    assert result.code == 0
    report = json.loads(result.out)
    assert report["outcome"] == "succeeded"
    assert report["plan"]["stages"][0]["hosts"] == ["app1"]
    assert "stage 1/2 canary" in result.err  # progress went to stderr


def test_lock_held_is_refused(erpctl, lab):
    # deploy.yml's own lock document, on the environment's first LB
    held = json.dumps({"run": "20261127T090000Z-1", "by": "bob@ctl", "time": "2026-11-27T09:00:00Z",
                       "version": "1.0.1", "message": "hotfix"})
    lab.lb.lock = held
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 3
    assert "Deploy lock held by bob@ctl since 2026-11-27T09:00:00Z (version 1.0.1: hotfix) on lb1" in result.err
    assert "'erpctl lock release' breaks a stale lock" in result.err
    assert deploys(lab) == []
    assert locks(lab) == {"lb1": held}  # bob's lock stays
    assert result.report()["outcome"] == "refused"
    assert result.report()["lock_check"]["holder"]["by"] == "bob@ctl"
    # the dry run says so too, before anyone relies on it
    assert erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--dry-run").code == 3


def test_the_lock_goes_through_lock_yml_as_this_rollouts_run(erpctl, lab):
    seen = []
    original = lab.lb

    class Spy(type(original)):
        def __setattr__(self, name, value):
            if name == "lock" and value is not None:
                seen.append(json.loads(value))
            super().__setattr__(name, value)

    lab.lb = Spy("lb1", "10.0.0.2")
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--message", "monthly", *YES)
    assert result.code == 0
    run = result.report()["lock"]["run"]
    lock_runs = [call[3] for call in lab.calls if call[0] == "playbook" and call[1] == contract.LOCK_PLAYBOOK]
    assert [extra[contract.VAR_LOCK_ACTION] for extra in lock_runs] == ["check", "acquire", "release"]
    acquire, release = lock_runs[1], lock_runs[2]
    assert acquire[contract.VAR_LOCK_RUN] == run == release[contract.VAR_LOCK_RUN]
    assert acquire[contract.VAR_VERSION] == "1.1.0" and acquire[contract.VAR_DEPLOY_MESSAGE] == "monthly"
    assert acquire[contract.VAR_LOCK_PID] == os.getpid()  # deploy.yml breaks it once erpctl is gone
    assert seen[0]["run"] == run
    assert all(call[1] != "ansible.builtin.command" for call in lab.calls if call[0] == "adhoc")
    assert lab.lb.lock is None


def test_confirmation(erpctl, lab):
    no_tty = erpctl("rollout", "--env", "lab", "--version", "1.1.0")
    assert no_tty.code == 3
    assert "stdin is not a terminal; pass --yes" in no_tty.err
    declined = erpctl("rollout", "--env", "lab", "--version", "1.1.0", stdin=TtyInput("n\n"))
    assert declined.code == 3 and "declined" in declined.err
    assert deploys(lab) == []
    accepted = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--bake", "0", stdin=TtyInput("y\n"))
    assert accepted.code == 0
    assert accepted.report()["stages"][0]["analysis"]["decision"]["verdict"] == "skipped"


def test_interrupt_before_the_first_stage_changes_nothing(erpctl, lab):
    interrupt = Interrupt()
    interrupt.press()
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES, interrupt=interrupt)
    assert result.code == 130
    assert deploys(lab) == [] and rollbacks(lab) == []
    assert locks(lab) == {}
    assert "nothing changed" in result.err


def test_restarting_canary_fails_even_when_health_passes(erpctl, lab):
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0-crashloop", *YES)
    assert result.code == 1
    reasons = result.report()["stages"][0]["analysis"]["decision"]["reasons"]
    assert any("restarted during the bake window" in reason for reason in reasons), reasons
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1"]


def test_hosts_on_different_releases_go_back_to_their_own(erpctl, lab):
    lab.apps["app2"].version = "1.0.1"
    lab.apps["app3"] = type(lab.apps["app1"])("app3", "10.0.0.13", release_file=False)  # never deployed
    lab.fail_deploy = {"app3": "boom"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", "--stages", "canary,1", *YES)
    assert result.code == 1
    assert "app3 (unknown -> 1.1.0)" in result.out
    assert rollbacks(lab) == [
        {contract.VAR_ROLLBACK_HOSTS: ["app1"], contract.VAR_VERSION: "1.0.0"},
        {contract.VAR_ROLLBACK_HOSTS: ["app2"], contract.VAR_VERSION: "1.0.1"},
        # no known release to return to: rollback.yml takes it from the host's history
        {contract.VAR_ROLLBACK_HOSTS: ["app3"]},
    ]
    assert versions(lab) == {"app1": "1.0.0", "app2": "1.0.1", "app3": "1.0.0"}


def test_unreachable_host_refuses_the_rollout(erpctl, lab):
    lab.unreachable = {"app2"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 3
    assert "unreachable before the rollout, nothing changed: app2" in result.err
    assert deploys(lab) == []


def test_missing_address_refuses_before_any_change(erpctl, lab):
    lab.apps["app2"].address = None
    lab.extra_hostvars = {"app2": {"erp_internal_address": None}}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 3
    assert "app2 has no erp_internal_address" in result.err
    assert deploys(lab) == []


def test_an_error_after_hosts_changed_still_rolls_back(erpctl, lab):
    lab.fetch_explodes = True
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 1
    assert "internal error: RuntimeError: bug in the probe" in result.err
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1"]
    assert "Traceback" not in result.err


def test_ctrl_c_during_the_rollback_abandons_it_and_exits_2(erpctl, lab):
    interrupt = Interrupt()
    lab.fail_deploy = {"app1": "boom"}
    lab.interrupt_on_rollback = interrupt
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES, interrupt=interrupt)
    assert result.code == 2
    assert "ROLLBACK FAILED" in result.err and "rollback abandoned (Ctrl-C)" in result.err
    assert result.report()["rollback"][0]["status"] == "canceled"
    assert locks(lab) == {}


def test_release_missing_from_the_registry_is_refused(erpctl, lab):
    lab.registry = {"1.0.0", "1.1.0"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.9.9", *YES)
    assert result.code == 3
    assert "registry:5000/erp-app:1.9.9 is not in the registry (http://registry:5000, asked from app1)" in result.err
    assert deploys(lab) == [] and locks(lab) == {}
    check = next(call for call in lab.calls if call[0] == "playbook" and call[1] == contract.LOCK_PLAYBOOK)
    assert check[2] == "lab" and check[3][contract.VAR_LOCK_ACTION] == "check"
    assert check[3][contract.VAR_VERSION] == "1.9.9"
    assert erpctl("rollout", "--env", "lab", "--version", "1.9.9", "--dry-run").code == 3


def test_unreachable_registry_is_refused_with_its_answer(erpctl, lab):
    lab.registry_down = True
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 3
    assert "the registry did not answer (Status code was -1" in result.err and "Connection refused>)" in result.err
    assert deploys(lab) == [] and locks(lab) == {}


def test_unreachable_lock_host_is_refused_before_anything_changed(erpctl, lab):
    lab.unreachable = {"lb1"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 3
    assert "refused before anything changed: lb1: unreachable" in result.err
    assert deploys(lab) == []


def test_canary_must_serve_the_new_release_not_just_record_it(erpctl, lab):
    # release.json says 1.1.0, but the slot erpctl probes answers as 1.0.0
    lab.serves_instead = {"app1": "1.0.0"}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 1
    assert "version 1.0.0 instead of 1.1.0" in result.report()["failure"]
    assert rollbacks(lab)[0][contract.VAR_ROLLBACK_HOSTS] == ["app1"]


def test_without_stages_the_rollout_follows_the_environments_batches(erpctl, lab):
    # Both hosts at once: the inventory's erp_rollout_batches, as deploy.yml would batch them.
    lab.extra_hostvars = {"app1": {contract.VAR_ROLLOUT_BATCHES: ["100%"]},
                          "app2": {contract.VAR_ROLLOUT_BATCHES: ["100%"]}}
    result = erpctl("rollout", "--env", "lab", "--version", "1.1.0", *YES)
    assert result.code == 0, result.err
    assert [d[contract.VAR_ROLLOUT_HOSTS] for d in deploys(lab)] == [["app1", "app2"]]
    assert versions(lab) == {"app1": "1.1.0", "app2": "1.1.0"}
