"""The bake window: poll health of every app host and the load balancer, scrape metrics at
its start and end, and hand the figures to ``analysis.decide``.

All I/O is injected (``fetch`` as in the collection's ``_health``, ``clock``, ``sleep``,
``should_stop``), so tests drive it with canned answers and a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from erpctl import analysis, contract
from erpctl._shared import health, prometheus


@dataclass(frozen=True)
class Target:
    host: str
    base_url: str
    group: str  # "new", "old" or "lb"
    # the release /health must report ("version"): the new release on switched hosts
    expected_version: str | None = None


@dataclass
class Observation:
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    scrape_errors: dict = field(default_factory=dict)
    health_failures: dict = field(default_factory=dict)
    lb_failures: list = field(default_factory=list)
    polls: int = 0
    elapsed: float = 0.0
    stopped: str | None = None


def scrape(target: Target, fetch, timeout: float):
    """Samples of ``<base>/health/metrics``; raises ValueError/fetch errors with a short text."""
    url = target.base_url + contract.METRICS_PATH
    try:
        response = fetch(url, timeout)
    except health.FETCH_ERRORS as exc:
        raise ValueError(f"{url}: {health.describe_fetch_error(exc, timeout)}") from None
    if response.status != 200:
        raise ValueError(f"{url}: HTTP {response.status}")
    try:
        return prometheus.parse_samples(response.body)
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{url}: {exc}") from None


class _Scraper:
    """Scrapes every app host once per poll: the first good scrape of a host is its
    ``before``, the latest its ``after``; a changed process start time is a restart."""

    def __init__(self, apps, fetch, timeout, observation):
        self.apps, self.fetch, self.timeout, self.observation = apps, fetch, timeout, observation
        self.started = {}

    def round(self):
        errors = {}
        for target in self.apps:
            try:
                samples = scrape(target, self.fetch, self.timeout)
            except ValueError as exc:
                errors[target.host] = str(exc)
                continue
            self.observation.before.setdefault(target.host, samples)
            self.observation.after[target.host] = samples
            started = prometheus.sum_samples(samples, contract.START_TIME_METRIC) or None
            previous = self.started.get(target.host)
            if started is not None and previous is not None and started != previous:
                self.observation.health_failures.setdefault(target.host, []).append(
                    f"{target.base_url}: the process restarted during the bake window")
            if started is not None:
                self.started[target.host] = started
        # Only the latest round's failures count: the figures end with the latest good scrape.
        self.observation.scrape_errors = errors


def _poll(target: Target, fetch, timeout, clock):
    endpoint = {"name": target.host, "url": target.base_url + contract.HEALTH_PATH}
    return health.probe_endpoint(endpoint, fetch, timeout=timeout, clock=clock,
                                 expected_version=target.expected_version)


def observe(targets: list[Target], duration: float, interval: float, fetch, thresholds: analysis.Thresholds,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
            should_stop: Callable[[], bool] = lambda: False, timeout: float = 5.0,
            on_poll: Callable[[int, float, Observation], None] | None = None) -> Observation:
    """Watch ``targets`` for ``duration`` seconds, polling health and metrics every ``interval``.

    Stops early when the new release has more unhealthy polls than allowed (no reason to
    keep users on it) or when ``should_stop()`` (Ctrl-C) says so.
    """
    observation = Observation()
    apps = [target for target in targets if target.group in ("new", "old")]
    scraper = _Scraper(apps, fetch, timeout, observation)
    scraper.round()
    start = clock()
    while True:
        observation.polls += 1
        for target in targets:
            result = _poll(target, fetch, timeout, clock)
            if result["healthy"]:
                continue
            if target.group == "lb":
                observation.lb_failures.append(result["reason"])
            else:
                observation.health_failures.setdefault(target.host, []).append(result["reason"])
        scraper.round()
        observation.elapsed = clock() - start
        if on_poll is not None:
            on_poll(observation.polls, observation.elapsed, observation)
        new_failures = sum(len(reasons) for host, reasons in observation.health_failures.items()
                           if any(t.host == host and t.group == "new" for t in targets))
        limit = thresholds.max_health_failures
        if new_failures > limit or len(observation.lb_failures) > limit:
            observation.stopped = "health"
            break
        if should_stop():
            observation.stopped = "interrupted"
            break
        remaining = duration - observation.elapsed
        if remaining <= 0:
            break
        sleep(min(interval, remaining))
        if should_stop():
            observation.stopped = "interrupted"
            break
    observation.elapsed = clock() - start
    return observation


def analyse(targets: list[Target], observation: Observation, thresholds: analysis.Thresholds,
            fallback_old: analysis.GroupFigures | None = None):
    """Figures of the new and old groups and the decision; ``fallback_old`` stands in for the
    old release once every host is on the new one (the last stage)."""
    def figures(group):
        hosts = [target.host for target in targets if target.group == group]
        if not hosts:
            return None
        return analysis.group_figures(hosts, observation.before, observation.after,
                                      {h: r for h, r in observation.health_failures.items() if h in hosts},
                                      {h: r for h, r in observation.scrape_errors.items() if h in hosts})

    new = figures("new")
    old = figures("old")
    baseline = old if old is not None and old.requests >= thresholds.min_requests else (fallback_old or old)
    decision = analysis.decide(new, baseline, thresholds, observation.lb_failures)
    return new, old, decision
