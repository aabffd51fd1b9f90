# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
from urllib.error import HTTPError, URLError

import pytest
from ansible_collections.erp.ops.plugins.module_utils import _health
from ansible_collections.erp.ops.plugins.module_utils._health import (
    DEFAULT_CHECKS,
    HttpResponse,
    build_endpoints,
    container_watch,
    describe_fetch_error,
    evaluate_expectations,
    normalize_status,
    parse_checks,
    parse_health_response,
    probe_endpoint,
    wait_for_health,
)

HEALTH = "application/health+json"
URL = "http://10.0.0.5:8001/health/ready"


def body(**fields):
    return json.dumps(fields).encode()


DB_DOWN = body(
    status="fail",
    version="1.4.2",
    checks={
        "postgresql:connection": [{"componentId": "db1", "status": "fail", "output": "connection refused"}],
        "disk:utilization": [{"status": "pass", "observedValue": 41, "observedUnit": "percent"}],
    },
)


@pytest.mark.parametrize("raw, expected", [
    ("pass", "pass"),
    ("ok", "pass"),
    ("UP", "pass"),
    (" warn ", "warn"),
    ("fail", "fail"),
    ("error", "fail"),
    ("down", "fail"),
    ("healthy", None),
    ("", None),
    (None, None),
    (1, None),
])
def test_normalize_status(raw, expected):
    assert normalize_status(raw) == expected


@pytest.mark.parametrize("http_status, content_type, raw_body, healthy, status", [
    (200, HEALTH, body(status="pass"), True, "pass"),
    (200, "application/health+json; charset=utf-8", body(status="pass"), True, "pass"),
    (200, HEALTH, body(status="warn"), True, "warn"),
    (204, HEALTH, body(status="ok"), True, "pass"),
    (301, HEALTH, body(status="pass"), True, "pass"),
    (200, HEALTH, body(status="fail"), False, "fail"),
    (503, HEALTH, body(status="fail"), False, "fail"),
    # The HTTP status wins over a body that claims pass, and vice versa.
    (500, HEALTH, body(status="pass"), False, "pass"),
    (404, HEALTH, body(status="pass"), False, "pass"),
    (200, HEALTH, '{"status": "pass"}', True, "pass"),
])
def test_parse_health_response_status_rules(http_status, content_type, raw_body, healthy, status):
    result = parse_health_response(http_status, content_type, raw_body, url=URL)
    assert result["healthy"] is healthy
    assert result["status"] == status
    assert (result["reason"] is None) is healthy


@pytest.mark.parametrize("content_type, raw_body, problem", [
    (HEALTH, b"", "empty body"),
    (HEALTH, None, "empty body"),
    (HEALTH, b"<html>oops</html>", "invalid JSON"),
    (HEALTH, b'{"status": "pass"', "invalid JSON"),
    (HEALTH, b"[1, 2]", "body is an array, not a JSON object"),
    (HEALTH, b'"pass"', "body is a string, not a JSON object"),
    (HEALTH, b"null", "body is null, not a JSON object"),
    (HEALTH, b"42", "body is a number, not a JSON object"),
    (HEALTH, body(version="1"), "body has no status"),
    (HEALTH, body(status="healthy"), "unknown status 'healthy'"),
    (HEALTH, body(status=True), "unknown status True"),
    (HEALTH, b'\xff\xfe{"status": "pass"}', "body is not valid utf-8 text"),
    ("text/html", body(status="pass"), "content type text/html is not application/health+json"),
    (None, body(status="pass"), "content type missing is not application/health+json"),
])
def test_parse_health_response_malformed(content_type, raw_body, problem):
    result = parse_health_response(200, content_type, raw_body, url=URL)
    assert result["healthy"] is False
    assert any(p.startswith(problem) for p in result["problems"]), result["problems"]
    assert result["reason"].startswith(URL + ": HTTP 200")
    assert problem in result["reason"]


def test_plain_json_content_type_is_accepted_with_a_note():
    result = parse_health_response(200, "application/json", body(status="pass"), url=URL)
    assert result["healthy"] is True
    assert result["notes"] == ["content type application/json accepted in place of application/health+json"]


@pytest.mark.parametrize("require, healthy", [(True, False), (False, True)])
def test_require_content_type_switch(require, healthy):
    result = parse_health_response(200, "text/plain", body(status="pass"), url=URL, require_content_type=require)
    assert result["healthy"] is healthy
    if not require:
        assert "text/plain is not application/health+json; parsed anyway" in result["notes"][0]


def test_failed_check_output_lands_in_reason():
    result = parse_health_response(503, HEALTH, DB_DOWN, url=URL)
    assert result["reason"] == URL + ": HTTP 503 status=fail (postgresql:connection: connection refused)"
    assert result["version"] == "1.4.2"
    assert [c["name"] for c in result["failed_checks"]] == ["postgresql:connection"]
    assert result["failed_checks"][0]["component_id"] == "db1"
    assert result["warned_checks"] == []


def test_top_level_output_used_when_no_check_failed():
    result = parse_health_response(503, HEALTH, body(status="fail", output="migrations pending"), url=URL)
    assert result["reason"] == URL + ": HTTP 503 status=fail (migrations pending)"


def test_long_multiline_output_is_one_short_line_in_reason_but_kept_in_full():
    trace = "Traceback (most recent call last):\n" + "  frame\n" * 100 + "boom"
    raw = body(status="fail", checks={"app:startup": [{"status": "fail", "output": trace}]})
    result = parse_health_response(503, HEALTH, raw, url=URL)
    assert "\n" not in result["reason"]
    assert len(result["reason"]) < 300
    assert result["failed_checks"][0]["output"] == trace


def test_warned_checks_are_listed_and_healthy():
    raw = body(status="warn", checks={"disk:utilization": [{"status": "warn", "output": "91% used"}]})
    result = parse_health_response(200, HEALTH, raw, url=URL)
    assert result["healthy"] is True
    assert result["warned_checks"][0]["output"] == "91% used"


def test_warned_checks_explain_an_unaccepted_warn():
    raw = body(status="warn", checks={"disk:utilization": [{"status": "warn", "output": "91% used"}]})
    result = evaluate_expectations(parse_health_response(200, HEALTH, raw, url=URL), expected_status=["pass"])
    assert result["reason"] == URL + ": HTTP 200 status=warn, expected status pass (disk:utilization: 91% used)"


@pytest.mark.parametrize("checks, names, note", [
    (None, [], None),
    ({"db": {"status": "fail"}}, ["db"], None),
    ({"db": [{"componentId": "a", "status": "pass"}, {"componentId": "b", "status": "fail"}]},
     ["db[a]", "db[b]"], None),
    ({"db": ["nonsense"]}, [], "check db has a non-object entry; ignored"),
    ({"db": [{"status": "meh"}]}, ["db"], "check db has unknown status 'meh'"),
    (["db"], [], "checks is an array, not an object; ignored"),
])
def test_parse_checks(checks, names, note):
    notes = []
    assert [c["name"] for c in parse_checks(checks, notes)] == names
    assert notes == ([note] if note else [])


@pytest.mark.parametrize("status, version, latency, kwargs, healthy, problem", [
    ("pass", "1.4.2", 10.0, {}, True, None),
    ("pass", "1.4.2", 10.0, {"expected_version": "1.4.2"}, True, None),
    ("pass", "1.4.1", 10.0, {"expected_version": "1.4.2"}, False, "version 1.4.1 instead of 1.4.2"),
    ("pass", None, 10.0, {"expected_version": "1.4.2"}, False, "no version in body, expected 1.4.2"),
    ("pass", "1.4.2", 812.4, {"max_latency_ms": 500}, False, "latency 812 ms over 500 ms"),
    ("pass", "1.4.2", 500.0, {"max_latency_ms": 500}, True, None),
    ("warn", "1.4.2", 10.0, {}, True, None),
    ("warn", "1.4.2", 10.0, {"expected_status": ["pass"]}, False, "expected status pass"),
    ("pass", "1.4.2", 10.0, {"expected_status": "pass"}, True, None),
])
def test_evaluate_expectations(status, version, latency, kwargs, healthy, problem):
    fields = {"status": status}
    if version is not None:
        fields["version"] = version
    parsed = parse_health_response(200, HEALTH, body(**fields), url=URL)
    parsed["latency_ms"] = latency
    result = evaluate_expectations(parsed, **kwargs)
    assert result["healthy"] is healthy
    if problem:
        assert result["reason"] == f"{URL}: HTTP 200 status={status}, {problem}"
    assert parsed["healthy"] is True, "the input result must not be modified"


@pytest.mark.parametrize("expected_status, error", [
    ([], ValueError),
    (["fail"], ValueError),
    (["pass", "up"], ValueError),
    (3, TypeError),
])
def test_evaluate_expectations_rejects_bad_expected_status(expected_status, error):
    parsed = parse_health_response(200, HEALTH, body(status="pass"), url=URL)
    with pytest.raises(error, match="expected_status"):
        evaluate_expectations(parsed, expected_status=expected_status)


@pytest.mark.parametrize("exc, text", [
    (TimeoutError("timed out"), "timed out after 5 s"),
    (TimeoutError(), "timed out after 5 s"),
    (URLError(TimeoutError("timed out")), "timed out after 5 s"),
    (URLError(ConnectionRefusedError(111, "Connection refused")), "connection refused"),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (ConnectionResetError(104, "reset"), "connection reset by peer"),
    (URLError(socket.gaierror(-2, "Name or service not known")),
     "cannot resolve host ([Errno -2] Name or service not known)"),
    (URLError(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED")), "TLS error (CERTIFICATE_VERIFY_FAILED)"),
    (ValueError("unknown url type: 'htp'"), "request failed (unknown url type: 'htp')"),
])
def test_describe_fetch_error(exc, text):
    assert describe_fetch_error(exc, timeout=5.0) == text


@pytest.mark.parametrize("kwargs, urls", [
    ({"url": "http://h:8001"}, ["http://h:8001" + path for path in DEFAULT_CHECKS]),
    ({"url": "http://h:8001/", "checks": ["health"]}, ["http://h:8001/health"]),
    ({"url": "http://h:8001", "checks": ["/health", "https://lb/health/ready"]},
     ["http://h:8001/health", "https://lb/health/ready"]),
    ({"endpoints": [{"name": "lb", "url": "http://lb/health"}, {"url": "http://h/health"}]},
     ["http://lb/health", "http://h/health"]),
])
def test_build_endpoints(kwargs, urls):
    assert [e["url"] for e in build_endpoints(**kwargs)] == urls


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of url"),
    ({"url": "http://h", "endpoints": [{"url": "http://h"}]}, "exactly one of url"),
    ({"endpoints": [{"url": "http://h"}], "checks": ["/x"]}, "checks can only be used with url"),
    ({"endpoints": []}, "non-empty list"),
    ({"endpoints": [{"name": "x"}]}, "needs a url"),
    ({"url": ""}, "non-empty string"),
    ({"url": "http://h", "checks": []}, "non-empty list of paths"),
    ({"url": "http://h", "checks": "/health"}, "non-empty list of paths"),
    ({"url": "http://h", "checks": ["/ok", ""]}, "is not a path"),
    # what k=v arguments make of checks=["/health"]
    ({"url": "http://h", "checks": ['["/health"]']}, "is not a URL path .* write checks=/health/live,/health/ready"),
    ({"url": "http://h", "checks": ["/health live"]}, "is not a URL path"),
])
def test_build_endpoints_rejects(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_endpoints(**kwargs)


class FakeClock:
    """Monotonic clock that only moves when sleep() is called or a fetch takes time."""

    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class ScriptedFetch:
    """Answers (or raises) from a per-URL script; the last entry repeats."""

    def __init__(self, clock, script, cost=0.01):
        self.clock = clock
        self.script = script
        self.cost = cost
        self.calls = []

    def __call__(self, url, timeout):
        self.calls.append((url, timeout))
        answers = self.script[url]
        count = sum(1 for called, _t in self.calls if called == url)
        answer = answers[min(count, len(answers)) - 1]
        self.clock.now += self.cost
        if isinstance(answer, BaseException):
            if isinstance(answer, socket.timeout):
                self.clock.now += timeout
            raise answer
        return answer


OK = HttpResponse(200, HEALTH, body(status="pass", version="1.4.2"))
NOT_READY = HttpResponse(503, HEALTH, DB_DOWN)
ENDPOINTS = [{"name": "/health/live", "url": "http://h/health/live"},
             {"name": "/health/ready", "url": "http://h/health/ready"}]


def test_wait_retries_until_every_endpoint_passes():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {
        "http://h/health/live": [OK],
        "http://h/health/ready": [ConnectionRefusedError(), NOT_READY, OK],
    })
    result = wait_for_health(ENDPOINTS, fetch, deadline=60, interval=2, timeout=5, clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    assert result["attempts"] == 3
    assert result["reason"] is None
    assert clock.sleeps == [2, 2]
    assert [c["healthy"] for c in result["checks"]] == [True, True]
    assert all(timeout == 5 for _url, timeout in fetch.calls)


def test_wait_gives_up_at_the_deadline_with_the_last_answer():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/live": [OK], "http://h/health/ready": [NOT_READY]})
    result = wait_for_health(ENDPOINTS, fetch, deadline=5, interval=2, clock=clock, sleep=clock.sleep)
    assert result["healthy"] is False
    assert result["reason"] == "http://h/health/ready: HTTP 503 status=fail (postgresql:connection: connection refused)"
    # Each attempt costs 2 x 0.01 s: attempts at 0, 2.02, 4.04 and, after a sleep cut to
    # what is left of the deadline, a last one at 5.
    assert result["attempts"] == 4
    assert clock.sleeps[:2] == [2, 2]
    assert clock.sleeps[2] == pytest.approx(5 - 3 * 0.02 - 4)
    assert result["elapsed"] == pytest.approx(5.02)


def test_wait_with_zero_deadline_probes_once():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/live": [ConnectionRefusedError()], "http://h/health/ready": [OK]})
    result = wait_for_health(ENDPOINTS, fetch, deadline=0, clock=clock, sleep=clock.sleep)
    assert result["attempts"] == 1
    assert clock.sleeps == []
    assert result["reason"] == "http://h/health/live: connection refused"


def test_wait_reports_timeouts_and_every_unhealthy_endpoint():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/live": [TimeoutError("timed out")],
                                  "http://h/health/ready": [HttpResponse(200, "text/html", b"<html/>")]})
    result = wait_for_health(ENDPOINTS, fetch, deadline=0, timeout=3, clock=clock, sleep=clock.sleep)
    assert result["reason"] == (
        "http://h/health/live: timed out after 3 s; "
        "http://h/health/ready: HTTP 200, content type text/html is not application/health+json"
    )
    assert result["checks"][0]["error"] == "timed out after 3 s"
    assert result["checks"][0]["http_status"] is None


def test_wait_applies_expectations_on_every_attempt():
    clock = FakeClock()
    old = HttpResponse(200, HEALTH, body(status="pass", version="1.4.1"))
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [old, old, OK]})
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=60, interval=1, expected_version="1.4.2",
                             clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    assert result["attempts"] == 3


def test_an_any_version_endpoint_is_judged_on_health_alone():
    """A bake also probes the load balancer, which serves old and new releases at once."""
    clock = FakeClock()
    old = HttpResponse(200, HEALTH, body(status="pass", version="1.4.1"))
    lb = build_endpoints(endpoints=[{"name": "lb1", "url": "http://lb/health/ready", "any_version": True},
                                    {"name": "app1", "url": "http://h/health/ready"}])
    assert lb[0] == {"name": "lb1", "url": "http://lb/health/ready", "any_version": True}
    fetch = ScriptedFetch(clock, {"http://lb/health/ready": [old], "http://h/health/ready": [OK]})
    result = wait_for_health(lb, fetch, deadline=0, expected_version="1.4.2", clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    # Still judged on its health: a load balancer with no server up fails the wait.
    fetch = ScriptedFetch(clock, {"http://lb/health/ready": [HttpResponse(503, "text/html", b"<html>503</html>")],
                                  "http://h/health/ready": [OK]})
    result = wait_for_health(lb, fetch, deadline=0, expected_version="1.4.2", clock=clock, sleep=clock.sleep)
    assert result["healthy"] is False
    assert result["reason"].startswith("http://lb/health/ready: HTTP 503")


def test_hold_keeps_probing_until_the_endpoints_stayed_healthy_that_long():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [OK] * 10})
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=0, hold=6, interval=2, clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    assert result["attempts"] == 4
    assert result["held"] == pytest.approx(6.01)
    assert clock.sleeps[:2] == [2, 2]


def test_hold_ends_at_the_first_unhealthy_attempt_with_its_reason():
    clock = FakeClock()
    down = HttpResponse(503, HEALTH, DB_DOWN)
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [OK, OK, down, OK]})
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=60, hold=30, interval=2, clock=clock,
                             sleep=clock.sleep)
    assert result["healthy"] is False
    assert result["attempts"] == 3
    assert result["held"] == pytest.approx(2.01)
    assert result["reason"].startswith("http://h/health/ready: HTTP 503")


def test_hold_starts_once_the_endpoints_became_healthy_within_the_deadline():
    clock = FakeClock()
    old = HttpResponse(200, HEALTH, body(status="pass", version="1.4.1"))
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [old, OK, OK, OK]})
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=10, hold=4, interval=2, expected_version="1.4.2",
                             clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    assert result["attempts"] == 4


def test_a_container_that_crashed_ends_the_wait_before_the_deadline():
    clock = FakeClock()
    refused = URLError(ConnectionRefusedError(111, "Connection refused"))
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [refused]})
    states = iter([("running", 0, 0), ("running", 0, 0), ("exited", 3, 0)])
    abort = container_watch("erp-app-green", lambda: next(states))
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=60, interval=2, abort=abort, clock=clock,
                             sleep=clock.sleep)
    assert result["healthy"] is False
    assert result["attempts"] == 2
    assert result["reason"].startswith("container erp-app-green is exited (exit code 3); http://h/health/ready: ")


@pytest.mark.parametrize(("states", "reason"), [
    ([("running", 0, 2), ("running", 1, 3)], "container c restarted 1 time(s) while starting (last exit code 1)"),
    ([("running", 0, 0), ("restarting", 137, 1)], "container c is restarting (exit code 137)"),
    ([("running", 0, 0), None], "container c is gone"),
    ([None, ("running", 0, 0)], None),
    ([("running", 0, 1), ("running", 0, 1)], None),
])
def test_container_watch_names_what_became_of_the_container(states, reason):
    answers = iter(states)
    assert container_watch("c", lambda: next(answers))() == reason


def test_a_running_container_lets_the_wait_go_on_until_healthy():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [NOT_READY, NOT_READY, OK]})
    looks = []
    result = wait_for_health([ENDPOINTS[1]], fetch, deadline=60, interval=2,
                             abort=lambda: looks.append(clock.now), clock=clock, sleep=clock.sleep)
    assert result["healthy"] is True
    assert len(looks) == 2  # asked after each unhealthy attempt only


def test_probe_measures_latency_with_the_injected_clock():
    clock = FakeClock()
    fetch = ScriptedFetch(clock, {"http://h/health/ready": [OK]}, cost=0.75)
    result = probe_endpoint(ENDPOINTS[1], fetch, clock=clock, max_latency_ms=500)
    assert result["latency_ms"] == 750.0
    assert result["reason"] == "http://h/health/ready: HTTP 200 status=pass, latency 750 ms over 500 ms"


@pytest.mark.parametrize("kwargs, message", [
    ({"deadline": -1}, "deadline"),
    ({"hold": -1}, "hold"),
    ({"interval": 0}, "interval"),
    ({"timeout": 0}, "timeout"),
    ({"expected_status": ["fail"]}, "expected_status"),
])
def test_wait_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wait_for_health(ENDPOINTS, lambda url, timeout: OK, **kwargs)


def test_wait_rejects_no_endpoints():
    with pytest.raises(ValueError, match="no endpoints"):
        wait_for_health([], lambda url, timeout: OK)


# ---------------------------------------------------------------------------------------
# Ansible is needed only by open_url_fetcher


def test_module_imports_where_ansible_is_not_installed(tmp_path):
    """The erp_healthcheck role installs _health.py on hosts without Ansible (-S -I: no site-packages)."""
    shutil.copy(_health.__file__, tmp_path / "_health.py")
    (tmp_path / "probe.py").write_text(
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import _health\n"
        "answer = _health.parse_health_response(200, 'application/health+json', b'{\"status\": \"pass\"}')\n"
        "print(answer['healthy'], 'ansible' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-I", "-S", str(tmp_path / "probe.py"), str(tmp_path)],
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["True", "False"]


def test_open_url_fetcher_raises_ansible_connection_errors_as_fetch_errors(monkeypatch):
    from ansible.module_utils import urls

    class Refusing:
        def open(self, *_args, **_kwargs):
            raise urls.SSLValidationError("certificate verify failed for erp.example")

    monkeypatch.setattr(urls, "Request", Refusing)
    fetch = _health.open_url_fetcher()
    result = _health.probe_endpoint({"name": "ready", "url": "https://erp.example/health/ready"}, fetch, timeout=1)
    assert result["healthy"] is False
    assert result["error"] == "request failed (certificate verify failed for erp.example)"


def test_open_url_fetcher_reads_the_body_of_an_error_status(monkeypatch):
    from ansible.module_utils import urls

    body = b'{"status": "fail", "checks": {"process:readiness": [{"status": "fail", "output": "shutting down"}]}}'

    class Draining:
        def open(self, _method, url, **_kwargs):
            raise HTTPError(url, 503, "Service Unavailable", {"Content-Type": "application/health+json"},
                            io.BytesIO(body))

    monkeypatch.setattr(urls, "Request", Draining)
    answer = _health.open_url_fetcher()("http://127.0.0.1:8001/health/ready", 1)
    assert answer == _health.HttpResponse(503, "application/health+json", body)
