# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Drive erp_health's main() with patched module args, a fake urls.Request and a fake clock."""

from __future__ import annotations

from urllib.error import URLError

import pytest
from ansible.module_utils import basic, urls
from ansible.module_utils.testing import patch_module_args
from ansible_collections.erp.ops.plugins.module_utils import _health
from ansible_collections.erp.ops.plugins.modules import erp_health
from module_fakes import (
    DB_DOWN,
    HEALTH,
    FakeResponse,
    ModuleExit,
    answer,
    catch_exits,
    install_fake_time,
    run_module,
)


@pytest.fixture
def fake_time(monkeypatch):
    return install_fake_time(monkeypatch)


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: seen.append(text))
    return seen


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    catch_exits(monkeypatch)


def run(monkeypatch, args, script):
    return run_module(monkeypatch, erp_health.main, args, script)


BASE = "http://10.0.0.5:8001"
ALL_PASS = {BASE + path: [answer(200, status="pass", version="1.4.2")] for path in _health.DEFAULT_CHECKS}


def test_healthy_default_checks(monkeypatch, fake_time):
    outcome, fake_requests = run(monkeypatch, {"url": BASE}, ALL_PASS)
    assert outcome.failed is False
    assert outcome.result["healthy"] is True
    assert outcome.result["changed"] is False
    assert outcome.result["attempts"] == 1
    assert outcome.result["reason"] is None
    assert [c["url"] for c in outcome.result["checks"]] == [BASE + p for p in _health.DEFAULT_CHECKS]
    assert [c["version"] for c in outcome.result["checks"]] == ["1.4.2"] * 3
    assert fake_time.sleeps == []
    _url, kwargs = fake_requests.calls[0]
    assert kwargs["timeout"] == 5
    assert kwargs["follow_redirects"] == "none"
    assert kwargs["validate_certs"] is True
    assert kwargs["headers"]["Accept"].startswith(HEALTH)
    # one TLS context for every request instead of one per request
    assert kwargs["context"] is not None
    assert {id(call_kwargs["context"]) for _url, call_kwargs in fake_requests.calls} == {id(kwargs["context"])}


def test_unhealthy_fails_with_the_check_output_in_msg(monkeypatch, fake_time):
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health/ready"], "deadline": 4, "interval": 2},
                         {BASE + "/health/ready": [DB_DOWN]})
    assert outcome.failed is True
    assert outcome.result["msg"] == (
        "http://10.0.0.5:8001/health/ready: HTTP 503 status=fail (postgresql:connection: connection refused)"
    )
    assert outcome.result["healthy"] is False
    assert outcome.result["changed"] is False
    assert outcome.result["attempts"] == 3
    assert fake_time.sleeps == [2, 2]
    (check,) = outcome.result["checks"]
    assert check["http_status"] == 503
    assert check["failed_checks"][0]["output"] == "connection refused"


def test_fail_on_unhealthy_false_returns_the_result(monkeypatch, fake_time):
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health/ready"], "deadline": 0,
                                       "fail_on_unhealthy": False},
                         {BASE + "/health/ready": [DB_DOWN]})
    assert outcome.failed is False
    assert outcome.result["healthy"] is False
    assert "connection refused" in outcome.result["reason"]


def test_retries_until_ready(monkeypatch, fake_time):
    script = {BASE + "/health/ready": [URLError(ConnectionRefusedError(111, "refused")), DB_DOWN,
                                       answer(200, status="pass")]}
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health/ready"], "interval": 1.5}, script)
    assert outcome.failed is False
    assert outcome.result["attempts"] == 3
    assert fake_time.sleeps == [1.5, 1.5]


@pytest.mark.parametrize("error, reason", [
    (URLError(ConnectionRefusedError(111, "Connection refused")), "connection refused"),
    (TimeoutError("timed out"), "timed out after 2 s"),
    (URLError(TimeoutError("timed out")), "timed out after 2 s"),
    (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
])
def test_transport_errors(monkeypatch, fake_time, error, reason):
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health"], "deadline": 0, "timeout": 2},
                         {BASE + "/health": [error]})
    assert outcome.failed is True
    assert outcome.result["msg"] == f"{BASE}/health: {reason}"
    assert outcome.result["checks"][0]["http_status"] is None


@pytest.mark.parametrize("args, response, healthy, in_reason", [
    ({"expected_version": "1.4.3"}, answer(200, status="pass", version="1.4.2"), False,
     "version 1.4.2 instead of 1.4.3"),
    ({"expected_version": "1.4.2"}, answer(200, status="pass", version="1.4.2"), True, None),
    ({}, answer(200, content_type="text/html", status="pass"), False,
     "content type text/html is not application/health+json"),
    ({"require_content_type": False}, answer(200, content_type="text/html", status="pass"), True, None),
    ({}, answer(200, content_type="application/json", status="pass"), True, None),
    ({}, FakeResponse(200, HEALTH, b"{not json"), False, "invalid JSON"),
    ({}, answer(200, status="warn"), True, None),
    ({"expected_status": ["pass"]}, answer(200, status="warn"), False, "expected status pass"),
    ({}, answer(500, status="pass"), False, "HTTP 500 status=pass"),
    ({}, answer(301, status="pass"), True, None),
])
def test_expectations(monkeypatch, fake_time, args, response, healthy, in_reason):
    outcome, _fake = run(monkeypatch, dict({"url": BASE, "checks": ["/health"], "deadline": 0}, **args),
                         {BASE + "/health": [response]})
    assert outcome.result["healthy"] is healthy
    assert outcome.failed is not healthy
    if in_reason:
        assert in_reason in outcome.result["msg"]


def test_latency_over_threshold(monkeypatch, fake_time):
    class SlowRequest:
        def open(self, method, url, **kwargs):
            fake_time.now += 0.8
            return answer(200, status="pass")

    monkeypatch.setattr(urls, "Request", SlowRequest)
    with patch_module_args({"url": BASE, "checks": ["/health"], "deadline": 0, "max_latency_ms": 500}), \
            pytest.raises(ModuleExit) as caught:
        erp_health.main()
    assert caught.value.failed is True
    assert caught.value.result["msg"] == f"{BASE}/health: HTTP 200 status=pass, latency 800 ms over 500 ms"
    assert caught.value.result["checks"][0]["latency_ms"] == 800.0


def test_endpoints_option_and_request_options(monkeypatch, fake_time):
    args = {
        "endpoints": [{"name": "lb", "url": "https://lb.example/health/ready"}],
        "headers": {"Authorization": "Bearer t"},
        "validate_certs": False,
        "use_proxy": False,
        "deadline": 0,
    }
    outcome, fake_requests = run(monkeypatch, args, {"https://lb.example/health/ready": [answer(200, status="pass")]})
    assert outcome.result["healthy"] is True
    assert outcome.result["checks"][0]["name"] == "lb"
    _url, kwargs = fake_requests.calls[0]
    assert kwargs["headers"]["Authorization"] == "Bearer t"
    assert kwargs["validate_certs"] is False
    assert kwargs["use_proxy"] is False


def test_check_mode_still_probes(monkeypatch, fake_time):
    outcome, fake_requests = run(monkeypatch, {"url": BASE, "_ansible_check_mode": True}, ALL_PASS)
    assert outcome.result["healthy"] is True
    assert outcome.result["changed"] is False
    assert len(fake_requests.calls) == 3


def test_warned_checks_become_warnings(monkeypatch, fake_time, warnings):
    response = answer(200, status="warn", checks={"disk:utilization": [{"status": "warn", "output": "91% used"}]})
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health"], "deadline": 0},
                         {BASE + "/health": [response]})
    assert outcome.result["healthy"] is True
    assert warnings == [f"{BASE}/health: disk:utilization: 91% used"]


@pytest.mark.parametrize("args, message", [
    ({}, "one of the following is required: url, endpoints"),
    ({"url": BASE, "endpoints": [{"url": BASE}]}, "mutually exclusive: url|endpoints"),
    ({"endpoints": [{"url": BASE}], "checks": ["/x"]}, "mutually exclusive: checks|endpoints"),
    ({"url": BASE, "deadline": -1}, "deadline must be >= 0"),
    ({"url": BASE, "interval": 0}, "interval must be > 0"),
    ({"url": BASE, "checks": []}, "checks must be a non-empty list"),
    ({"url": BASE, "expected_status": ["fail"]}, "value of expected_status must be one or more of"),
])
def test_bad_arguments(monkeypatch, fake_time, args, message):
    outcome, fake_requests = run(monkeypatch, args, {})
    assert outcome.failed is True
    assert message in outcome.result["msg"]
    assert fake_requests.calls == []


def test_a_container_that_exited_ends_the_wait_with_its_state_in_the_reason(monkeypatch, fake_time):
    states = iter(["running 0 0\n", "exited 3 0\n"])
    commands = []

    def run_command(self, argv, **_kwargs):
        commands.append(argv)
        return 0, next(states), ""

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, **_kw: f"/usr/bin/{name}")
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    refused = {BASE + "/health/ready": [URLError(ConnectionRefusedError(111, "Connection refused"))]}
    outcome, _fake = run(monkeypatch, {"url": BASE, "checks": ["/health/ready"], "deadline": 90,
                                       "container": "erp-app-green"}, refused)
    assert outcome.failed is True
    assert outcome.result["msg"].startswith("container erp-app-green is exited (exit code 3); ")
    assert outcome.result["attempts"] == 1
    assert commands[0][:4] == ["/usr/bin/docker", "inspect", "--type", "container"]
    assert commands[0][-1] == "erp-app-green"


def test_docker_inspect_failing_for_another_reason_fails_the_task(monkeypatch, fake_time):
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, **_kw: f"/usr/bin/{name}")
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **_kw: (1, "", "permission denied while trying to connect\n"))
    outcome, _fake = run(monkeypatch, {"url": BASE, "container": "erp-app-green"}, ALL_PASS)
    assert outcome.failed is True
    assert outcome.result["msg"] == "docker inspect erp-app-green failed: permission denied while trying to connect"
