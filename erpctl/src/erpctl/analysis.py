"""Canary analysis: figures from two metric scrapes per host, and a pure pass/fail decision.

Figures come from the collection's Prometheus logic (``error_rate``, ``counter_increase``,
``histogram_quantile``); this module only groups hosts and applies thresholds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from erpctl import contract
from erpctl._shared import prometheus

INSUFFICIENT_POLICIES = ("fail", "pass")
PASS, FAIL, INSUFFICIENT, SKIPPED = "pass", "fail", "insufficient-traffic", "skipped"


@dataclass(frozen=True)
class Thresholds:
    """What the new release must show during the bake window."""

    error_rate_max: float = 0.02
    latency_p95_max_ratio: float = 1.5
    # Below this p95 (seconds) latency is never judged: 2 ms against 1 ms is noise, not a regression.
    latency_p95_floor: float = 0.05
    min_requests: int = 50
    on_insufficient_traffic: str = "fail"
    max_health_failures: int = 0


@dataclass
class GroupFigures:
    """One group of hosts (new release or old) over the bake window."""

    hosts: list[str]
    requests: float = 0.0
    errors: float = 0.0
    error_rate: float | None = None
    latency_p95: float | None = None
    health_failures: int = 0
    health_reasons: list[str] = field(default_factory=list)
    scrape_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decision:
    verdict: str
    proceed: bool
    reasons: list[str]
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _tagged(samples, host):
    """The samples of one host with an ``instance`` label, so hosts' series stay apart when merged."""
    return [prometheus.Sample(sample.name, {**sample.labels, "instance": host}, sample.value, sample.timestamp)
            for sample in prometheus.coerce_samples(samples)]


def group_figures(hosts, before: dict, after: dict, health_failures: dict | None = None,
                  scrape_errors: dict | None = None, selectors=None) -> GroupFigures:
    """Figures of ``hosts`` from per-host scrapes at the start (``before``) and end (``after``).

    :param before: ``{host: samples or exposition text}``; a host missing here counts from
        process start (a freshly switched slot).
    :param after: ``{host: samples or text}``; a host missing here is left out of the figures.
    :param health_failures: ``{host: [reason, ...]}`` of unhealthy polls.
    :param scrape_errors: ``{host: reason}`` of failed scrapes.
    :param selectors: ``(total, errors, latency)`` selectors, defaults from ``contract``.
    """
    total_sel, errors_sel, latency_sel = selectors or (contract.TOTAL_SELECTOR, contract.ERRORS_SELECTOR,
                                                       contract.LATENCY_SELECTOR)
    figures = GroupFigures(hosts=list(hosts))
    merged_before, merged_after = [], []
    for host in hosts:
        if host in after:
            merged_after.extend(_tagged(after[host], host))
            if host in before:
                merged_before.extend(_tagged(before[host], host))
    for host in hosts:
        reasons = (health_failures or {}).get(host) or []
        figures.health_failures += len(reasons)
        figures.health_reasons.extend(f"{host}: {reason}" for reason in reasons[:3])
        if host in (scrape_errors or {}):
            figures.scrape_errors.append(f"{host}: {scrape_errors[host]}")
    if not merged_after:
        return figures
    figures.requests = prometheus.counter_increase(merged_before, merged_after, total_sel)
    figures.errors = prometheus.counter_increase(merged_before, merged_after, errors_sel)
    figures.error_rate = prometheus.error_rate(merged_before, merged_after, errors_sel, total_sel)
    figures.latency_p95 = prometheus.histogram_quantile(0.95, merged_before, merged_after, latency_sel)
    return figures


def _pct(value):
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _ms(value):
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def decide(new: GroupFigures, old: GroupFigures | None, thresholds: Thresholds,
           lb_failures: list[str] = ()) -> Decision:
    """Judge the new release's figures against thresholds and the old release's figures.

    Pure: every rule that fails adds a reason, so the report says everything wrong at once.
    Traffic below ``min_requests`` gives the verdict ``insufficient-traffic``; whether the
    rollout proceeds then is ``on_insufficient_traffic`` (``fail`` or ``pass``).
    """
    reasons, notes = [], []
    if new.health_failures > thresholds.max_health_failures:
        shown = "; ".join(new.health_reasons) or "unhealthy"
        reasons.append(f"new release unhealthy in {new.health_failures} poll(s) "
                       f"(at most {thresholds.max_health_failures} allowed): {shown}")
    if new.scrape_errors:
        reasons.append(f"metrics of the new release unreadable: {'; '.join(new.scrape_errors)}")
    if len(lb_failures) > thresholds.max_health_failures:
        reasons.append(f"load balancer unhealthy in {len(lb_failures)} poll(s): {'; '.join(list(lb_failures)[:3])}")
    if old is not None and old.health_failures:
        notes.append(f"old release unhealthy in {old.health_failures} poll(s): {'; '.join(old.health_reasons)}")

    insufficient = new.requests < thresholds.min_requests
    insufficient_note = (f"insufficient traffic: {new.requests:g} requests on the new release, "
                         f"at least {thresholds.min_requests} needed to judge error rate and latency")
    if insufficient:
        notes.append(insufficient_note)
    else:
        if new.error_rate is not None and new.error_rate > thresholds.error_rate_max:
            reasons.append(f"error rate {_pct(new.error_rate)} ({new.errors:g} of {new.requests:g} requests) "
                           f"over {_pct(thresholds.error_rate_max)}")
        baseline_ok = old is not None and old.latency_p95 is not None and old.requests >= thresholds.min_requests
        if new.latency_p95 is None:
            notes.append("latency not judged: no latency observations")
        elif not baseline_ok:
            notes.append("latency not judged: no baseline with enough traffic on the old release")
        elif new.latency_p95 <= thresholds.latency_p95_floor:
            notes.append(f"latency p95 {_ms(new.latency_p95)} under the floor {_ms(thresholds.latency_p95_floor)}")
        else:
            ratio = new.latency_p95 / old.latency_p95 if old.latency_p95 > 0 else float("inf")
            if ratio > thresholds.latency_p95_max_ratio:
                reasons.append(f"latency p95 {_ms(new.latency_p95)} is {ratio:.2f}x the old release's "
                               f"{_ms(old.latency_p95)} (at most {thresholds.latency_p95_max_ratio:g}x)")

    if reasons:
        return Decision(FAIL, False, reasons, notes)
    if insufficient:
        proceed = thresholds.on_insufficient_traffic == "pass"
        return Decision(INSUFFICIENT, proceed, [] if proceed else [insufficient_note], notes)
    return Decision(PASS, True, [], notes)
