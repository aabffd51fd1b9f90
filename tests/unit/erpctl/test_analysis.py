# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The canary decision, as tables, and the figures computed from scrapes."""

from __future__ import annotations

import pytest
from erpctl.analysis import FAIL, INSUFFICIENT, PASS, GroupFigures, Thresholds, decide, group_figures
from erpctl_fakes import metrics

T = Thresholds()


def figures(requests=1000, errors=0, p95=0.1, health_failures=0, scrape_errors=()):
    return GroupFigures(hosts=["h"], requests=requests, errors=errors,
                        error_rate=(errors / requests) if requests else None, latency_p95=p95,
                        health_failures=health_failures,
                        health_reasons=["h: HTTP 503"] * health_failures, scrape_errors=list(scrape_errors))


@pytest.mark.parametrize("new, old, thresholds, lb, verdict, proceed, reason", [
    # healthy and like the old release
    (figures(), figures(), T, [], PASS, True, None),
    # error rate
    (figures(errors=20), figures(), T, [], PASS, True, None),  # exactly 2%: not over
    (figures(errors=21), figures(), T, [], FAIL, False, "error rate 2.10% (21 of 1000 requests) over 2.00%"),
    (figures(errors=300), None, T, [], FAIL, False, "error rate 30.00%"),
    (figures(errors=50), figures(), Thresholds(error_rate_max=0.1), [], PASS, True, None),
    # latency against the old release
    (figures(p95=0.16), figures(p95=0.1), T, [], FAIL, False, "latency p95 160 ms is 1.60x"),
    (figures(p95=0.15), figures(p95=0.1), T, [], PASS, True, None),
    (figures(p95=0.3), figures(p95=0.1), Thresholds(latency_p95_max_ratio=4), [], PASS, True, None),
    (figures(p95=0.04), figures(p95=0.01), T, [], PASS, True, None),  # under the floor: noise
    (figures(p95=0.9), None, T, [], PASS, True, None),  # no baseline: not judged
    (figures(p95=0.9), figures(requests=10, p95=0.1), T, [], PASS, True, None),  # baseline too thin
    # health
    (figures(health_failures=1), figures(), T, [], FAIL, False, "new release unhealthy in 1 poll(s)"),
    (figures(health_failures=1), figures(), Thresholds(max_health_failures=1), [], PASS, True, None),
    (figures(scrape_errors=["h: connection refused"]), figures(), T, [], FAIL, False, "metrics of the new release"),
    (figures(), figures(), T, ["lb1: HTTP 503"], FAIL, False, "load balancer unhealthy"),
    (figures(), figures(health_failures=2), T, [], PASS, True, None),  # the old release's trouble is a note
    # traffic
    (figures(requests=49), figures(), T, [], INSUFFICIENT, False, "insufficient traffic: 49 requests"),
    (figures(requests=49), figures(), Thresholds(on_insufficient_traffic="pass"), [], INSUFFICIENT, True, None),
    (figures(requests=0, p95=None), None, T, [], INSUFFICIENT, False, "at least 50 needed"),
    # unhealthy AND thin traffic is a failure, whatever the traffic policy
    (figures(requests=5, health_failures=3), None, Thresholds(on_insufficient_traffic="pass"), [], FAIL, False,
     "unhealthy"),
    # several problems are all reported
    (figures(errors=100, p95=0.5), figures(p95=0.1), T, [], FAIL, False, "error rate 10.00%"),
])
def test_decide(new, old, thresholds, lb, verdict, proceed, reason):
    decision = decide(new, old, thresholds, lb)
    assert (decision.verdict, decision.proceed) == (verdict, proceed)
    if reason is None:
        assert decision.reasons == []
    else:
        assert any(reason in text for text in decision.reasons), decision.reasons


def test_every_failed_rule_is_a_reason():
    decision = decide(figures(errors=100, p95=0.5, health_failures=1), figures(p95=0.1), T, ["lb1: down"])
    assert len(decision.reasons) == 4


def test_insufficient_traffic_is_said_not_guessed():
    decision = decide(figures(requests=3), figures(), Thresholds(on_insufficient_traffic="pass"))
    assert decision.verdict == INSUFFICIENT
    assert any("insufficient traffic" in note for note in decision.notes)


def test_group_figures_from_scrapes_exclude_health_routes_and_merge_hosts():
    before = {"a": metrics("1.1.0", 1, 100), "b": metrics("1.1.0-fault-errors-500", 1, 100)}
    after = {"a": metrics("1.1.0", 3, 100), "b": metrics("1.1.0-fault-errors-500", 3, 100)}
    result = group_figures(["a", "b"], before, after)
    # 200 user requests per host; the /health/ready counter (1000 per scrape) is not user traffic
    assert result.requests == 400
    assert result.errors == 60
    assert result.error_rate == pytest.approx(0.15)
    assert 0.01 < result.latency_p95 <= 0.025


def test_group_figures_missing_after_scrape_leaves_host_out():
    result = group_figures(["a", "b"], {"a": metrics("1", 1, 10)}, {"a": metrics("1", 2, 10)},
                           scrape_errors={"b": "connection refused"})
    assert result.requests == 10
    assert result.scrape_errors == ["b: connection refused"]


def test_fresh_host_counts_from_process_start():
    result = group_figures(["a"], {}, {"a": metrics("1", 2, 100)})
    assert result.requests == 200
