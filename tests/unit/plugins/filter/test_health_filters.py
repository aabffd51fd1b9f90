# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import math

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.filter.health import FilterModule
from ansible_collections.erp.ops.plugins.module_utils._health import parse_health_response

FILTERS = FilterModule().filters()
HEALTH = "application/health+json"
DB_DOWN = (b'{"status": "fail", "checks": {"postgresql:connection": '
           b'[{"status": "fail", "output": "connection refused"}]}}')


def _module_result(url, http_status, raw):
    endpoint = parse_health_response(http_status, HEALTH, raw, url=url)
    return {"changed": False, "healthy": endpoint["healthy"], "reason": endpoint["reason"], "checks": [endpoint],
            "attempts": 1, "elapsed": 0.01}


def test_filter_names():
    assert sorted(FILTERS) == ["failed_checks", "health_summary", "prometheus_samples", "rollout_batches"]


def test_health_summary():
    results = {
        "app1": _module_result("http://app1:8001/health/ready", 200, b'{"status": "pass"}'),
        "app2": _module_result("http://app2:8001/health/ready", 503, DB_DOWN),
    }
    summary = FILTERS["health_summary"](results)
    assert summary["healthy"] is False
    assert summary["healthy_hosts"] == ["app1"]
    assert summary["unhealthy_hosts"] == ["app2"]
    assert summary["reasons"] == {
        "app2": "http://app2:8001/health/ready: HTTP 503 status=fail (postgresql:connection: connection refused)",
    }


def test_failed_checks():
    result = _module_result("http://app2:8001/health/ready", 503, DB_DOWN)
    lines = FILTERS["failed_checks"](result)
    assert lines == ["http://app2:8001/health/ready: postgresql:connection: connection refused"]


def test_prometheus_samples():
    samples = FILTERS["prometheus_samples"]('# TYPE up gauge\nup{job="erp",path="C:\\\\x"} 1 1700000000000\nlat NaN\n')
    assert samples[0] == {"name": "up", "labels": {"job": "erp", "path": "C:\\x"}, "value": 1.0,
                          "timestamp": 1700000000000}
    assert math.isnan(samples[1]["value"])


def test_rollout_batches():
    hosts = ["app1", "app2", "app3", "app4", "app5"]
    assert FILTERS["rollout_batches"](hosts, [1, "50%", "100%"]) == [["app1"], ["app2", "app3", "app4"], ["app5"]]


@pytest.mark.parametrize("name, args, message", [
    ("health_summary", ([],), "health_summary: no health results to summarize"),
    ("health_summary", ("app1",), "health_summary: expected a list of erp_health results"),
    ("failed_checks", ([],), "failed_checks: expected an erp_health result"),
    ("failed_checks", ({"changed": False},), "failed_checks: expected an erp_health result with a 'checks' list"),
    ("prometheus_samples", ("up 1\nup{a=1} 2",), "prometheus_samples: line 2: expected \" to open a label value"),
    ("prometheus_samples", (None,), "prometheus_samples: exposition text must be a string"),
    ("rollout_batches", ([], [1]), "rollout_batches: hosts must not be empty"),
    ("rollout_batches", (["a", "a"], [1]), "rollout_batches: host 'a' appears more than once"),
    ("rollout_batches", (["a"], [1, "0%"]), "rollout_batches: batch spec item '0%' (position 2)"),
    ("rollout_batches", (["a"], [1.5]), "rollout_batches: batch spec item 1.5 (position 1)"),
    ("rollout_batches", (["a"], []), "rollout_batches: batch spec must not be empty"),
])
def test_bad_input_raises_ansible_filter_error(name, args, message):
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](*args)
    assert str(caught.value).startswith(message)
