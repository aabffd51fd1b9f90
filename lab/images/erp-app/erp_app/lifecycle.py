"""Process lifecycle shared by the health endpoints and the shutdown handler."""

import time
from collections.abc import Callable


class Lifecycle:
    """Start time, first-ready time and the draining flag of this process.

    The clock is injectable so tests can move time without sleeping.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.started = clock()
        self.started_wall = time.time()
        self.ready_since: float | None = None
        self.draining = False

    def uptime(self) -> float:
        return self._clock() - self.started

    def mark_ready(self) -> None:
        """Remember the first moment readiness passed (later calls keep it)."""
        if self.ready_since is None:
            self.ready_since = self._clock()

    def ready_for(self) -> float | None:
        """Seconds since readiness first passed, or None if it never did."""
        return None if self.ready_since is None else self._clock() - self.ready_since

    def begin_drain(self) -> None:
        """From now on readiness fails so load balancers stop sending traffic."""
        self.draining = True
