"""The host health check script (roles/erp_healthcheck/files/erp_healthcheck.py).

Its probes take their I/O as parameters, so these tests drive them with tables of
container states, health answers and HAProxy listings; the run as a whole is driven
through ``main`` with a real HTTP receiver on 127.0.0.1 standing in for the webhook.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from ansible_collections.erp.ops.plugins.module_utils import _prometheus

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "roles" / "erp_healthcheck" / "files" / "erp_healthcheck.py"
MODULE_UTILS = REPO / "plugins" / "module_utils"


def _load_script():
    # The script imports `_health` from its own directory on the host; here that is the
    # collection's module_utils directory.
    sys.path.insert(0, str(MODULE_UTILS))
    try:
        spec = importlib.util.spec_from_file_location("erp_healthcheck_script", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(MODULE_UTILS))
    return module


hc = _load_script()
NOW = 1_800_000_000.0
HOUR = 3600.0


def check(name, status, detail="", duration=None, **labels):
    return hc.result(name, status, detail or f"{name} is {status}", duration, labels)


# ---------------------------------------------------------------------------------------
# State change detection and the repeat interval


@pytest.mark.parametrize(
    ("previous", "status", "now", "changes", "repeats"),
    [
        pytest.param({}, "ok", NOW, [], [], id="new check ok: nothing to announce"),
        pytest.param({}, "fail", NOW, ["fail"], [], id="new check failing: announced"),
        pytest.param({}, "idle", NOW, [], [], id="new idle check: counts as ok"),
        pytest.param({"status": "ok", "since": 0, "notified_status": "ok", "notified_at": None}, "fail", NOW,
                     ["fail"], [], id="ok to fail: announced"),
        pytest.param({"status": "fail", "since": NOW - 60, "notified_status": "fail", "notified_at": NOW - 60},
                     "fail", NOW, [], [], id="still failing within the interval: quiet"),
        pytest.param({"status": "fail", "since": NOW - 2 * HOUR, "notified_status": "fail",
                      "notified_at": NOW - HOUR}, "fail", NOW, [], ["fail"], id="still failing after the interval"),
        pytest.param({"status": "fail", "since": 0, "notified_status": "fail", "notified_at": NOW - 60}, "ok", NOW,
                     ["ok"], [], id="recovery: announced"),
        pytest.param({"status": "fail", "since": 0, "notified_status": "fail", "notified_at": NOW - 60}, "idle", NOW,
                     ["ok"], [], id="failing slot retired: recovery"),
        pytest.param({"status": "idle", "since": 0, "notified_status": "ok", "notified_at": None}, "ok", NOW,
                     [], [], id="idle to ok: quiet"),
        pytest.param({"status": "fail", "since": 0, "notified_status": "ok", "notified_at": None}, "fail", NOW,
                     ["fail"], [], id="failure whose announcement was never delivered: retried"),
    ],
)
def test_plan_notifications(previous, status, now, changes, repeats):
    state, planned_changes, planned_repeats = hc.plan_notifications(
        {"c": previous} if previous else {}, [check("c", status)], now, HOUR)
    assert [item["status"] for item in planned_changes] == changes
    assert [item["status"] for item in planned_repeats] == repeats
    if changes or repeats:
        assert state["c"]["notified_at"] == now
    assert state["c"]["status"] == status


def test_a_failure_is_announced_once_then_again_each_interval_then_recovers():
    state, announced = {}, []
    timeline = [(0, "ok"), (60, "fail"), (120, "fail"), (HOUR, "fail"), (HOUR + 60, "fail"), (HOUR + 90, "fail"),
                (2 * HOUR + 120, "fail"), (2 * HOUR + 180, "ok"), (2 * HOUR + 240, "ok")]
    for offset, status in timeline:
        state, changes, repeats = hc.plan_notifications(state, [check("app_serving", status)], NOW + offset, HOUR)
        announced.extend((offset, "change" if item in changes else "repeat", item["status"])
                         for item in changes + repeats)
    assert announced == [(60, "change", "fail"), (HOUR + 60, "repeat", "fail"),
                         (2 * HOUR + 120, "repeat", "fail"), (2 * HOUR + 180, "change", "ok")]


def test_since_keeps_the_start_of_a_state_and_checks_gone_from_the_config_are_dropped():
    state, _, _ = hc.plan_notifications({}, [check("a", "fail"), check("b", "ok")], NOW, HOUR)
    state, _, _ = hc.plan_notifications(state, [check("a", "fail")], NOW + 600, HOUR)
    assert state["a"]["since"] == NOW
    assert "b" not in state


def test_state_changes_lists_every_status_change_for_the_journal():
    previous = {"a": {"status": "ok"}, "b": {"status": "fail"}, "c": {"status": "idle"}}
    changes = hc.state_changes(previous, [check("a", "fail"), check("b", "fail"), check("c", "ok"), check("d", "ok")])
    assert [(name, before, after) for name, before, after, _ in changes] == [
        ("a", "ok", "fail"), ("c", "idle", "ok"), ("d", "new", "ok")]


# ---------------------------------------------------------------------------------------
# Payload


def test_payload_is_slack_and_teams_compatible_and_structured():
    results = [check("app_serving", "fail", "no app slot is ready"), check("memory", "ok")]
    changes = [{"check": "app_serving", "status": "fail", "previous": "ok", "since": NOW, "detail": "no app slot"}]
    payload = hc.build_payload("app1", "prod", changes, [], results, NOW)
    decoded = json.loads(json.dumps(payload))
    # Slack incoming webhooks and Teams connectors both render a top-level "text".
    assert isinstance(decoded["text"], str)
    assert decoded["text"].splitlines() == ["[prod] app1: 1 health check(s) failing",
                                            "FAILING app_serving: no app slot"]
    # Teams connector cards need summary; themeColor colours them.
    assert decoded["summary"] == "[prod] app1: 1 health check(s) failing"
    assert decoded["themeColor"] == "D70000"
    assert decoded["host"] == "app1"
    assert decoded["status"] == "fail"
    assert decoded["time"] == "2027-01-15T08:00:00+00:00"
    assert decoded["failing"] == [{"check": "app_serving", "detail": "no app slot is ready"}]


def test_payload_of_a_recovery_and_of_a_repeat():
    recovered = hc.build_payload("db1", "", [{"check": "db_writable", "status": "ok", "previous": "fail",
                                              "since": NOW, "detail": "read-write"}], [], [check("db_writable", "ok")],
                                 NOW)
    assert recovered["text"] == "db1: all health checks ok\nRECOVERED db_writable: read-write"
    assert recovered["status"] == "ok"
    assert recovered["themeColor"] == "2EB886"
    repeat = hc.build_payload("db1", "", [], [{"check": "db_writable", "status": "fail", "previous": "fail",
                                               "since": NOW - 5400, "detail": "read-only"}],
                              [check("db_writable", "fail")], NOW)
    assert "STILL FAILING (90 min) db_writable: read-only" in repeat["text"]


# ---------------------------------------------------------------------------------------
# Metrics and the atomic write


def test_metrics_have_one_status_series_per_check_and_parse_as_prometheus_text():
    results = [
        check("app_blue_ready", "ok", duration=0.012),
        check("app_green_container", "idle"),
        check("db_writable", "fail"),
        check("disk:/", "ok", path="/", free_ratio=0.42),
        check("memory", "ok", available_ratio=0.5),
        check('certificate:/etc/ssl/a "b".pem', "ok", path='/etc/ssl/a "b".pem', not_after=1.9e9),
    ]
    text = hc.render_metrics(results, NOW, 0.25)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in _prometheus.parse_samples(text)}
    assert samples[("erp_healthcheck_check_ok", (("check", "app_blue_ready"),))] == 1
    assert samples[("erp_healthcheck_check_ok", (("check", "db_writable"),))] == 0
    assert ("erp_healthcheck_check_ok", (("check", "app_green_container"),)) not in samples
    assert samples[("erp_healthcheck_check_idle", (("check", "app_green_container"),))] == 1
    assert samples[("erp_healthcheck_check_duration_seconds", (("check", "app_blue_ready"),))] == 0.012
    assert samples[("erp_healthcheck_disk_free_ratio", (("path", "/"),))] == 0.42
    assert samples[("erp_healthcheck_certificate_expiry_timestamp_seconds", (("path", '/etc/ssl/a "b".pem'),))] == 1.9e9
    assert samples[("erp_healthcheck_checks_failed", ())] == 1
    assert samples[("erp_healthcheck_last_run_timestamp_seconds", ())] == NOW
    families = _prometheus.parse_exposition(text)
    assert families is not None


def test_write_atomically_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "erp_healthcheck.prom"
    target.write_text("old\n")
    hc.write_atomically(target, "new\n")
    assert target.read_text() == "new\n"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erp_healthcheck.prom"]


def test_write_atomically_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    target = tmp_path / "erp_healthcheck.prom"
    target.write_text("old\n")

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hc.os, "replace", refuse)
    with pytest.raises(OSError):
        hc.write_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erp_healthcheck.prom"]


def test_temporary_file_is_invisible_to_the_textfile_collector(tmp_path, monkeypatch):
    # node_exporter reads only *.prom: the temporary name must not end in .prom.
    seen = []
    real_replace = os.replace

    def spy(source, destination):
        seen.append(Path(source).name)
        real_replace(source, destination)

    monkeypatch.setattr(hc.os, "replace", spy)
    hc.write_atomically(tmp_path / "erp_healthcheck.prom", "x\n")
    assert seen and not seen[0].endswith(".prom")
    assert Path(tmp_path / seen[0]).parent == tmp_path


# ---------------------------------------------------------------------------------------
# Probes


RUNNING = {"Status": "running", "Running": True, "ExitCode": 0}


@pytest.mark.parametrize(
    ("state", "idle_ok", "status", "words"),
    [
        (RUNNING, True, "ok", "is running"),
        ({**RUNNING, "Health": {"Status": "unhealthy"}}, True, "fail", "unhealthy"),
        ({**RUNNING, "Health": {"Status": "healthy"}}, True, "ok", "is running"),
        ({"Status": "restarting", "Restarting": True, "Running": True, "ExitCode": 1}, True, "fail", "restarting"),
        ({"Status": "exited", "Running": False, "ExitCode": 0}, True, "idle", "stopped"),
        ({"Status": "exited", "Running": False, "ExitCode": 0}, False, "fail", "exited (exit code 0)"),
        ({"Status": "exited", "Running": False, "ExitCode": 137}, True, "fail", "exit code 137"),
        ({"Status": "exited", "Running": False, "ExitCode": 137, "OOMKilled": True}, True, "fail", "memory"),
        ({"Status": "dead", "Running": False, "ExitCode": 0}, True, "fail", "dead"),
        (None, True, "idle", "does not exist"),
        (None, False, "fail", "does not exist"),
    ],
)
def test_container_result(state, idle_ok, status, words):
    judged = hc.container_result("c", "erp-app-blue", state, stopped_is_idle=idle_ok)
    assert judged["status"] == status
    assert words in judged["detail"]


def _fetch_from(table):
    def fetch(url, _timeout):
        answer = table[url]
        if isinstance(answer, Exception):
            raise answer
        status, body = answer
        return hc._health.HttpResponse(status, "application/health+json", json.dumps(body).encode())
    return fetch


ENDPOINTS = ["/health/live", "/health/ready", "/health/database"]


def test_a_running_slot_is_probed_on_each_endpoint_through_the_shared_parser():
    base = "http://10.0.0.5:8001"
    fetch = _fetch_from({
        f"{base}/health/live": (200, {"status": "pass"}),
        f"{base}/health/ready": (503, {"status": "fail", "checks": {"postgresql:connection": [
            {"status": "fail", "output": "connection refused"}]}}),
        f"{base}/health/database": ConnectionRefusedError(),
    })
    results = hc.app_slot_results({"name": "blue", "container": "erp-app-blue", "port": 8001}, "10.0.0.5",
                                  ENDPOINTS, lambda _c: RUNNING, fetch, 3)
    by_name = {r["name"]: r for r in results}
    assert [r["name"] for r in results] == ["app_blue_container", "app_blue_live", "app_blue_ready",
                                            "app_blue_database"]
    assert by_name["app_blue_live"]["status"] == "ok"
    assert by_name["app_blue_ready"]["status"] == "fail"
    assert "postgresql:connection: connection refused" in by_name["app_blue_ready"]["detail"]
    assert by_name["app_blue_database"]["detail"].endswith("connection refused")
    assert hc.app_serving_result(results, ENDPOINTS)["status"] == "fail"


@pytest.mark.parametrize(
    ("started", "status"),
    [
        ("2027-01-15T07:59:30.123456789Z", "idle"),  # 30 s ago, inside the 120 s grace: booting
        ("2027-01-15T07:57:00.000000000Z", "fail"),  # 180 s ago: really failing
        ("0001-01-01T00:00:00Z", "fail"),  # Docker's "never started"
        ("", "fail"),
    ],
)
def test_a_slot_that_just_started_is_booting_not_failing(started, status):
    fetch = _fetch_from({f"http://127.0.0.1:8001{p}": ConnectionRefusedError() for p in ENDPOINTS})
    results = hc.app_slot_results({"name": "blue", "container": "erp-app-blue", "port": 8001}, "127.0.0.1",
                                  ENDPOINTS, lambda _c: {**RUNNING, "StartedAt": started}, fetch, 3,
                                  now=NOW, start_grace=120)
    assert results[0]["status"] == "ok"
    assert {r["status"] for r in results[1:]} == {status}
    if status == "idle":
        assert results[1]["detail"].startswith("starting (30 s ago): ")
    assert hc.app_serving_result(results, ENDPOINTS)["status"] == "fail"


def test_a_missing_slot_is_idle_and_another_ready_slot_keeps_the_host_serving():
    fetch = _fetch_from({f"http://127.0.0.1:8002{p}": (200, {"status": "pass"}) for p in ENDPOINTS})
    states = {"erp-app-blue": None, "erp-app-green": RUNNING}
    results = []
    for slot in ({"name": "blue", "container": "erp-app-blue", "port": 8001},
                 {"name": "green", "container": "erp-app-green", "port": 8002}):
        results += hc.app_slot_results(slot, "127.0.0.1", ENDPOINTS, states.get, fetch, 3)
    assert {r["name"]: r["status"] for r in results if r["name"].startswith("app_blue")} == dict.fromkeys(
        ["app_blue_container", "app_blue_live", "app_blue_ready", "app_blue_database"], "idle")
    serving = hc.app_serving_result(results, ENDPOINTS)
    assert serving["status"] == "ok"
    assert serving["detail"] == "serving from slot green"


def test_a_crashed_slot_fails_every_endpoint_check_without_probing():
    def no_fetch(*_args):
        raise AssertionError("a stopped container must not be probed")

    crashed = {"Status": "exited", "Running": False, "ExitCode": 1}
    results = hc.app_slot_results({"name": "blue", "container": "erp-app-blue", "port": 8001}, "127.0.0.1",
                                  ENDPOINTS, lambda _c: crashed, no_fetch, 3)
    assert {r["status"] for r in results} == {"fail"}


# ---------------------------------------------------------------------------------------
# Which slot is judged: the live slot of the release state deploy.yml writes


SLOTS = [{"name": "blue", "container": "erp-app-blue", "port": 8001},
         {"name": "green", "container": "erp-app-green", "port": 8002}]
# NOW is 2027-01-15T08:00:00Z; Docker writes times with nanoseconds.
STARTED_LONG_AGO = "2027-01-15T06:00:00.123456789Z"
STARTED_LATER = "2027-01-15T07:59:00Z"  # a slot a deploy started after the live one
PASS = (200, {"status": "pass"})
DRAINING = (503, {"status": "fail", "checks": {"process:readiness": [{"status": "fail",
                                                                        "output": "shutting down"}]}})
DB_DOWN = (503, {"status": "fail", "checks": {"postgresql:connection": [{"status": "fail",
                                                                           "output": "connection refused"}]}})


def running(started=STARTED_LONG_AGO):
    return {**RUNNING, "StartedAt": started, "FinishedAt": "0001-01-01T00:00:00Z"}


def exited(code, finished, oom=False):
    return {"Status": "exited", "Running": False, "ExitCode": code, "OOMKilled": oom,
            "StartedAt": STARTED_LONG_AGO, "FinishedAt": finished}


def release(tmp_path, slot="blue", version="1.0.0", text=None):
    path = tmp_path / "release.json"
    if text is not None:
        path.write_text(text)
    elif slot is not None:
        path.write_text(json.dumps({"current": {"version": version, "slot": slot, "image": "registry/erp-app@sha256:1"},
                                    "previous": None, "history": []}))
    return str(path)


def answers(port, ready=PASS, live=PASS, database=PASS):
    return {f"http://127.0.0.1:{port}/health/live": live, f"http://127.0.0.1:{port}/health/ready": ready,
            f"http://127.0.0.1:{port}/health/database": database}


def judge(tmp_path, states, table, release_file, now=NOW):
    def inspect(container):
        return states.get(container)

    def fetch(url, timeout):
        if url not in table:
            raise ConnectionRefusedError(f"nothing listens on {url}")
        return _fetch_from(table)(url, timeout)

    results = hc.app_results(SLOTS, "127.0.0.1", ENDPOINTS, inspect, fetch, 3, now, start_grace=120,
                             release_state_file=release_file)
    return {r["name"]: r for r in results}


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        (None, "idle", "does not exist: no release was deployed here"),
        ('{"current": null, "previous": null, "history": []}', "idle", "no release is live on this host"),
        ('{"current": {"version": "1.0.0", "slot": "green"}}', "ok", "release 1.0.0 is live on slot green"),
        ('{"current": {"version": "1.0.0", "slot": "red"}}', "fail", "'red' is not one of the configured slots"),
        ('{"current": "blue"}', "fail", "None is not one of the configured slots"),
        ('{"previous": null}', "fail", "has no 'current' entry"),
        ("[]", "fail", "has no 'current' entry"),
        ('{"current": ', "fail", "is not valid JSON"),
    ],
)
def test_release_state_result(tmp_path, text, status, words):
    path = tmp_path / "release.json"
    if text is not None:
        path.write_text(text)
    checked, current = hc.release_state_result(str(path), ["blue", "green"])
    assert checked["name"] == "app_release_state"
    assert checked["status"] == status
    assert words in checked["detail"]
    assert (current is not None) == (status == "ok")


# What a scheduled run reports on app1 whose release state says blue is live, in every
# state a deploy, a rollback or a fault puts the two slots in.
@pytest.mark.parametrize(
    ("blue", "green", "table", "expected", "serving"),
    [
        pytest.param(running(), exited(0, "2027-01-15T07:00:00Z"), answers(8001), "ok", "ok",
                     id="live slot ready, previous release kept stopped"),
        pytest.param(running(), None, answers(8001), "ok", "ok", id="live slot ready, no other slot"),
        pytest.param(running(), running("2027-01-15T07:59:50Z"), {**answers(8001), **answers(8002, ready=DB_DOWN)},
                     "ok", "ok", id="deploy starts the new slot, still booting"),
        pytest.param(running(), exited(137, "2027-01-15T07:59:00Z"), answers(8001), "ok", "ok",
                     id="new slot of a faulty release crashed, deploy rolled back"),
        pytest.param(running(), {"Status": "restarting", "Restarting": True, "Running": True, "ExitCode": 1},
                     answers(8001), "ok", "ok", id="new slot restarting in a loop"),
        pytest.param(running(), running(STARTED_LATER), {**answers(8001, ready=DRAINING), **answers(8002)}, "idle",
                     "idle", id="switch: live slot draining, the new one serves"),
        pytest.param(exited(0, "2027-01-15T07:59:55Z"), running(STARTED_LATER), answers(8002), "fail", "fail",
                     id="live slot stopped 5 s ago, a newer slot serves: never a switch (deploys record first)"),
        pytest.param(exited(0, "2027-01-15T07:59:45Z"), running(STARTED_LATER), {**answers(8002, ready=DB_DOWN)},
                     "fail", "fail", id="live slot stopped, the other one runs but is not ready"),
        pytest.param(exited(0, "2027-01-15T07:59:45Z"), running(), answers(8002), "fail", "fail",
                     id="live slot stopped, an older slot runs: not a switch"),
        pytest.param(exited(0, "2027-01-15T07:59:55Z"), None, {}, "fail", "fail",
                     id="live slot stopped by hand, nothing else serves"),
        pytest.param(running("2027-01-15T07:59:30Z"), None, {}, "booting", "idle",
                     id="live slot restarted 30 s ago, not ready yet"),
        pytest.param(exited(0, "2027-01-15T07:58:00Z"), exited(0, "2027-01-15T07:00:00Z"), {}, "fail", "fail",
                     id="live slot stopped 2 min ago"),
        pytest.param(exited(137, "2027-01-15T07:59:55Z"), None, {}, "fail", "fail", id="live slot crashed"),
        pytest.param(exited(0, "2027-01-15T07:59:55Z", oom=True), None, {}, "fail", "fail",
                     id="live slot killed for lack of memory"),
        pytest.param(None, running(), answers(8002), "fail", "fail", id="live slot's container removed"),
        pytest.param(running(), None, answers(8001, ready=DB_DOWN, database=DB_DOWN), "down", "fail",
                     id="live slot runs but cannot reach the database"),
    ],
)
def test_only_the_live_slot_is_judged(tmp_path, blue, green, table, expected, serving):
    results = judge(tmp_path, {"erp-app-blue": blue, "erp-app-green": green}, table, release(tmp_path, "blue"))
    assert results["app_release_state"]["status"] == "ok"
    green_checks = {name: r["status"] for name, r in results.items() if name.startswith("app_green_")}
    assert green_checks == dict.fromkeys(["app_green_container", "app_green_live", "app_green_ready",
                                          "app_green_database"], "idle")
    assert all("not live (the release state says slot blue is)" in results[name]["detail"] for name in green_checks)
    blue_checks = {name: r["status"] for name, r in results.items() if name.startswith("app_blue_")}
    if expected == "ok":
        assert set(blue_checks.values()) == {"ok"}
    elif expected == "idle":
        assert "fail" not in blue_checks.values()
    elif expected == "booting":
        assert blue_checks["app_blue_container"] == "ok"
        assert blue_checks["app_blue_ready"] == "idle"
    elif expected == "down":
        assert blue_checks["app_blue_container"] == "ok"
        assert blue_checks["app_blue_ready"] == "fail"
    else:
        assert set(blue_checks.values()) == {"fail"}
        assert "the release state says slot blue is live" in results["app_blue_container"]["detail"]
    assert results["app_serving"]["status"] == serving
    if serving == "fail":
        assert results["app_serving"]["detail"].startswith("slot blue (release 1.0.0), live, is not ready: ")


def test_a_draining_live_slot_is_idle_and_a_stopped_one_fails_even_when_the_other_slot_serves(tmp_path):
    results = judge(tmp_path, {"erp-app-blue": running(), "erp-app-green": running(STARTED_LATER)},
                    {**answers(8001, ready=DRAINING), **answers(8002)}, release(tmp_path, "blue"))
    assert results["app_blue_ready"]["detail"].startswith("draining (the app is stopping): ")
    assert results["app_serving"] == hc.result("app_serving", "idle", "slot blue (release 1.0.0) is stopping")
    # Deploys record the new live slot before the old one stops: a live slot stopped is never a switch.
    stopped = judge(tmp_path, {"erp-app-blue": exited(0, "2027-01-15T07:59:55Z"),
                               "erp-app-green": running(STARTED_LATER)}, answers(8002), release(tmp_path, "blue"))
    assert stopped["app_blue_container"]["status"] == "fail"
    assert "the release state says slot blue is live" in stopped["app_blue_container"]["detail"]
    assert stopped["app_green_ready"]["status"] == "idle"
    assert stopped["app_serving"]["status"] == "fail"


@pytest.mark.parametrize("text", [None, '{"current": null, "previous": {"version": "1.0.0", "slot": "blue"}}'])
def test_nothing_deployed_is_idle_whatever_runs(tmp_path, text):
    path = tmp_path / "release.json"
    if text is not None:
        path.write_text(text)
    results = judge(tmp_path, {"erp-app-blue": exited(137, "2027-01-15T07:59:55Z"), "erp-app-green": None}, {},
                    str(path))
    assert {r["status"] for r in results.values()} == {"idle"}
    assert results["app_serving"]["detail"] == "no release is live on this host"


def test_an_unreadable_release_state_fails_and_every_slot_is_judged_by_what_runs(tmp_path):
    results = judge(tmp_path, {"erp-app-blue": exited(0, "2027-01-15T07:00:00Z"), "erp-app-green": running()},
                    answers(8002), release(tmp_path, text="{not json"))
    assert results["app_release_state"]["status"] == "fail"
    assert results["app_blue_container"]["status"] == "idle"
    assert results["app_green_ready"]["status"] == "ok"
    assert results["app_serving"] == hc.result("app_serving", "ok", "serving from slot green")


def test_without_a_release_state_file_every_slot_is_judged_by_what_runs(tmp_path):
    results = judge(tmp_path, {"erp-app-blue": exited(0, "2027-01-15T07:00:00Z"), "erp-app-green": None}, {}, "")
    assert "app_release_state" not in results
    assert results["app_blue_container"]["status"] == "idle"
    assert results["app_serving"]["status"] == "fail"


class StoppingSlot:
    """Blue after its drain: it refuses connections while its container still runs, and
    exits 0 after ``exits_after`` seconds (None: never). ``sleep`` moves its clock."""

    def __init__(self, exits_after):
        self.exits_after = exits_after
        self.elapsed = 0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def gone(self):
        return self.exits_after is not None and self.elapsed >= self.exits_after

    def inspect(self, container):
        if container == "erp-app-green":
            return running(STARTED_LATER)
        return exited(0, "2027-01-15T08:00:03Z") if self.gone() else running()

    def fetch(self, url, timeout):
        if ":8002/" in url:
            return _fetch_from(answers(8002))(url, timeout)
        raise ConnectionRefusedError(url)


@pytest.mark.parametrize(
    ("exits_after", "sleeps", "serving", "words"),
    [
        (3, [1, 1, 1], "fail", "live, is not ready: container erp-app-blue is exited (exit code 0)"),
        (None, [1] * 10, "fail", "live, is not ready"),
    ],
)
def test_a_running_live_slot_that_refuses_is_confirmed_before_it_fails(tmp_path, exits_after, sleeps, serving, words):
    slot = StoppingSlot(exits_after)
    results = hc.app_results(SLOTS, "127.0.0.1", ENDPOINTS, slot.inspect, slot.fetch, 3, NOW, start_grace=120,
                             release_state_file=release(tmp_path, "blue"), confirm=10,
                             sleep=slot.sleep)
    by_name = {r["name"]: r for r in results}
    assert slot.sleeps == sleeps
    assert by_name["app_serving"]["status"] == serving
    assert words in by_name["app_serving"]["detail"]


def test_a_crashed_live_slot_fails_at_once_without_confirming(tmp_path):
    def no_sleep(_seconds):
        raise AssertionError("a stopped container is not probed again")

    results = hc.app_results(SLOTS, "127.0.0.1", ENDPOINTS, {"erp-app-blue": exited(137, STARTED_LONG_AGO)}.get,
                             _fetch_from({}), 3, NOW, release_state_file=release(tmp_path, "blue"), confirm=10,
                             sleep=no_sleep)
    assert {r["name"]: r["status"] for r in results}["app_blue_container"] == "fail"


def test_a_deploy_switching_slots_announces_nothing_and_a_real_stop_is_announced_once(tmp_path):
    """Scheduled runs through a whole blue -> green switch as deploy.yml does it (the
    erp_deploy role's switch entry point: start green, move traffic, record green as live,
    stop blue), then the live slot stopped by hand: only that stop reaches the webhook, at
    the first run after it stopped."""
    started_green = "2027-01-15T08:00:10Z"
    timeline = [
        # (seconds after NOW, live slot in release.json, blue, green, answers)
        (0, "blue", running(), None, answers(8001)),
        (10, "blue", running(), running(started_green), {**answers(8001), **answers(8002, ready=DB_DOWN)}),
        (20, "blue", running(), running(started_green), {**answers(8001), **answers(8002)}),
        # traffic is on green and green is recorded live; blue drains, then stops
        (26, "green", running(), running(started_green), {**answers(8001, ready=DRAINING), **answers(8002)}),
        (31, "green", running(), running(started_green), answers(8002)),
        (60, "green", exited(0, "2027-01-15T08:00:29Z"), running(started_green), answers(8002)),
        (74, "green", exited(0, "2027-01-15T08:00:29Z"), running(started_green), answers(8002)),
        (95, "green", exited(0, "2027-01-15T08:00:29Z"), running(started_green), answers(8002)),
        # someone stops the live slot: it drains, stops, and stays stopped
        (150, "green", exited(0, "2027-01-15T08:00:29Z"), running(started_green),
         answers(8002, ready=DRAINING)),
        (155, "green", exited(0, "2027-01-15T08:00:29Z"), exited(0, "2027-01-15T08:02:33Z"), {}),
        (215, "green", exited(0, "2027-01-15T08:00:29Z"), exited(0, "2027-01-15T08:02:33Z"), {}),
        (275, "green", exited(0, "2027-01-15T08:00:29Z"), exited(0, "2027-01-15T08:02:33Z"), {}),
    ]
    state, announced = {}, []
    for offset, live, blue, green, table in timeline:
        results = list(judge(tmp_path, {"erp-app-blue": blue, "erp-app-green": green}, table,
                             release(tmp_path, live), now=NOW + offset).values())
        state, changes, repeats = hc.plan_notifications(state, results, NOW + offset, HOUR)
        if changes or repeats:
            announced.append((offset, sorted(c["check"] for c in changes + repeats)))
    assert announced == [(155, ["app_green_container", "app_green_database", "app_green_live", "app_green_ready",
                                "app_serving"])]


def _completed(returncode=0, stdout="", stderr=""):
    return SimpleNamespace(returncode=returncode, stdout=stdout, stderr=stderr)


@pytest.mark.parametrize(
    ("isready", "query", "expected"),
    [
        (_completed(0), _completed(0, "f\n"), {"db_accepting": "ok", "db_writable": "ok"}),
        (_completed(0), _completed(0, "t\n"), {"db_accepting": "ok", "db_writable": "fail"}),
        (_completed(2), _completed(2, "", "could not connect"), {"db_accepting": "fail", "db_writable": "fail"}),
    ],
)
def test_database_checks(isready, query, expected):
    def run(argv, **_kwargs):
        return isready if "pg_isready" in argv else query

    results = hc.db_results("erp-db", "postgres", lambda _c: RUNNING, run)
    assert {r["name"]: r["status"] for r in results} == {"db_container": "ok", **expected}


def test_a_stopped_database_fails_every_database_check():
    results = hc.db_results("erp-db", "postgres", lambda _c: {"Status": "exited", "ExitCode": 0}, None)
    assert {r["name"]: r["status"] for r in results} == {
        "db_container": "fail", "db_accepting": "fail", "db_writable": "fail"}


SHOW_STAT = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status
erp_front,FRONTEND,,,0,1,2000,5,0,0,0,0,0,,,,,OPEN
erp_app,app1,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP
erp_app,app2,0,0,0,1,,2,0,0,,0,,0,0,0,0,DOWN 1/3
erp_app,BACKEND,0,0,0,1,200,5,0,0,0,0,,0,0,0,0,UP
erp_admin,local,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT
erp_admin,BACKEND,0,0,0,0,200,0,0,0,0,0,,0,0,0,0,DOWN
"""


def test_haproxy_backends_need_one_server_up():
    results = {r["name"]: r for r in hc.lb_results(SHOW_STAT)}
    assert results["lb_backend_erp_app"]["status"] == "ok"
    assert results["lb_backend_erp_app"]["detail"] == "1/2 servers up (app1 UP, app2 DOWN)"
    assert results["lb_backend_erp_admin"]["status"] == "fail"
    assert hc.lb_results("# pxname,svname,status\n")[0]["status"] == "fail"


def test_disk_and_memory_headroom():
    statvfs = {"/": SimpleNamespace(f_bavail=5, f_blocks=100), "/data": SimpleNamespace(f_bavail=50, f_blocks=100)}
    assert hc.disk_result("/", 10, statvfs.get)["status"] == "fail"
    assert hc.disk_result("/data", 10, statvfs.get)["labels"]["free_ratio"] == 0.5
    meminfo = "MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:     40 kB\n"
    assert hc.memory_result(5, meminfo)["status"] == "fail"
    assert hc.memory_result(4, meminfo)["status"] == "ok"
    assert hc.memory_result(5, "MemTotal: 1 kB\n")["status"] == "fail"


def test_certificate_expiry():
    def run(_argv, **_kwargs):
        return _completed(0, "notAfter=Jan 25 08:00:00 2027 GMT\n")

    soon = hc.certificate_result("/etc/ssl/erp.pem", 14, NOW, run)
    assert soon["status"] == "fail"
    assert "expires in 10.0 days" in soon["detail"]
    assert hc.certificate_result("/etc/ssl/erp.pem", 7, NOW, run)["status"] == "ok"
    unreadable = hc.certificate_result("/nope", 7, NOW, lambda *_a, **_k: _completed(1, "", "No such file"))
    assert unreadable["status"] == "fail"


# ---------------------------------------------------------------------------------------
# Whole runs through main(), with a webhook receiver on 127.0.0.1


class _Receiver:
    def __init__(self, status=200):
        self.calls = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *_args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()


def _config(tmp_path, min_free, webhook_url=None, name="healthcheck.json"):
    (tmp_path / "metrics").mkdir(exist_ok=True)
    (tmp_path / "state").mkdir(exist_ok=True)
    config = {"host": "app1", "environment": "test", "textfile_dir": str(tmp_path / "metrics"),
              "state_dir": str(tmp_path / "state"), "disk_paths": [str(tmp_path)], "disk_min_free_percent": min_free,
              "repeat_minutes": 60}
    if webhook_url:
        (tmp_path / "webhook").write_text(webhook_url + "\n")
        config["webhook_url_file"] = str(tmp_path / "webhook")
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_runs_call_the_webhook_only_on_changes(tmp_path):
    logged = []

    def log(_priority, message):
        logged.append(message)

    with _Receiver() as receiver:
        healthy = _config(tmp_path, 0, receiver.url)
        assert hc.main(["--config", healthy], now=lambda: NOW, log=log) == 0
        assert receiver.calls == []
        # no filesystem has more than 100 % free
        failing = _config(tmp_path, 100.1, receiver.url, name="failing.json")
        assert hc.main(["--config", failing], now=lambda: NOW + 60, log=log) == 1
        assert hc.main(["--config", failing], now=lambda: NOW + 120, log=log) == 1
        assert len(receiver.calls) == 1
        content_type, payload = receiver.calls[0]
        assert content_type == "application/json"
        assert payload["changes"][0]["check"] == f"disk:{tmp_path}"
        assert hc.main(["--config", failing], now=lambda: NOW + 60 + HOUR, log=log) == 1
        assert len(receiver.calls) == 2
        assert receiver.calls[1][1]["repeats"][0]["check"] == f"disk:{tmp_path}"
        assert hc.main(["--config", healthy], now=lambda: NOW + 2 * HOUR, log=log) == 0
        assert len(receiver.calls) == 3
        assert receiver.calls[2][1]["status"] == "ok"
    assert any(message.startswith(f"disk:{tmp_path}: ok -> fail") for message in logged)
    metrics = (tmp_path / "metrics" / "erp_healthcheck.prom").read_text()
    assert f'erp_healthcheck_check_ok{{check="disk:{tmp_path}"}} 1' in metrics
    assert oct((tmp_path / "state" / "state.json").stat().st_mode & 0o777) == "0o600"


def test_an_undelivered_alert_is_sent_again_on_the_next_run(tmp_path):
    with _Receiver(status=500) as receiver:
        failing = _config(tmp_path, 100.1, receiver.url)
        assert hc.main(["--config", failing], now=lambda: NOW, log=lambda *_a: None) == 1
        assert len(receiver.calls) == 1
        receiver.status = 200
        assert hc.main(["--config", failing], now=lambda: NOW + 60, log=lambda *_a: None) == 1
        assert len(receiver.calls) == 2
        assert receiver.calls[1][1]["changes"][0]["status"] == "fail"
        assert hc.main(["--config", failing], now=lambda: NOW + 120, log=lambda *_a: None) == 1
        assert len(receiver.calls) == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "cannot read"), ("{", "not valid JSON"), ('{"host": "x"}', "lacks textfile_dir, state_dir"),
     ('{"host": "x", "textfile_dir": "/t", "state_dir": "/s", "app_slots": [{"name": "blue"}]}', "needs name")],
)
def test_a_bad_configuration_exits_2_with_one_line(tmp_path, capsys, content, words):
    path = tmp_path / "healthcheck.json"
    if content is not None:
        path.write_text(content)
    assert hc.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert err.count("\n") == 1


def test_metrics_directory_not_writable_exits_3(tmp_path):
    config = json.loads(Path(_config(tmp_path, 0)).read_text())
    config["textfile_dir"] = str(tmp_path / "missing")
    (tmp_path / "healthcheck.json").write_text(json.dumps(config))
    assert hc.main(["--config", str(tmp_path / "healthcheck.json")], log=lambda *_a: None) == 3


def test_the_installed_layout_runs_without_ansible(tmp_path):
    """As on a host: the script and the module_utils the role installs side by side, no
    Ansible importable (-S -I)."""
    install = tmp_path / "install"
    install.mkdir()
    shutil.copy(SCRIPT, install / "erp_healthcheck.py")
    role_vars = yaml.safe_load((REPO / "roles" / "erp_healthcheck" / "vars" / "main.yml").read_text())
    for name in role_vars["_erp_healthcheck_module_utils"]:
        shutil.copy(MODULE_UTILS / name, install / name)
    config = _config(tmp_path, 0)
    completed = subprocess.run([sys.executable, "-I", "-S", str(install / "erp_healthcheck.py"), "--config", config,
                                "--dry-run"], capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout)
    assert report["healthy"] is True
    assert report["checks"][0]["name"] == f"disk:{tmp_path}"
    assert not (tmp_path / "metrics" / "erp_healthcheck.prom").exists()
