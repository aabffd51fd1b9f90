"""Lab-only fault injection: deliberately broken builds of a release.

The lab builds one tag per fault (``<version>-fault-<name>``, ``ERP_FAULT=<name>``)
so deploy, canary and rollback logic can be tested against every way a release
can go wrong. Everything here is pure: callers pass in the clock readings and
random draws, which keeps the behaviour easy to test.
"""

from collections.abc import Mapping
from dataclasses import dataclass

NONE = "none"
CRASH = "crash"
NEVER_READY = "never-ready"
DATABASE_FAILS = "database-fails"
SLOW_READY = "slow-ready"
FAILS_AFTER_READY = "fails-after-ready"
ERRORS_500 = "errors-500"
MIGRATION_HANGS = "migration-hangs"

MODES = (
    NONE,
    CRASH,
    NEVER_READY,
    DATABASE_FAILS,
    SLOW_READY,
    FAILS_AFTER_READY,
    ERRORS_500,
    MIGRATION_HANGS,
)

# ERP_FAULT_DELAY_SECONDS defaults per mode (only these two modes use a delay).
DEFAULT_DELAYS = {SLOW_READY: 120.0, FAILS_AFTER_READY: 20.0}
DEFAULT_ERROR_RATE = 0.3


@dataclass(frozen=True)
class FaultPlan:
    mode: str = NONE
    delay_seconds: float = 0.0
    error_rate: float = 0.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "FaultPlan":
        """Read ERP_FAULT, ERP_FAULT_DELAY_SECONDS and ERP_FAULT_ERROR_RATE.

        Raises ValueError with a message naming the bad variable.
        """
        mode = env.get("ERP_FAULT", "").strip() or NONE
        if mode not in MODES:
            raise ValueError(f"ERP_FAULT must be one of {', '.join(MODES)}; got {mode!r}")
        delay = _number(env, "ERP_FAULT_DELAY_SECONDS", DEFAULT_DELAYS.get(mode, 0.0))
        if delay < 0:
            raise ValueError(f"ERP_FAULT_DELAY_SECONDS must be >= 0; got {delay}")
        rate = _number(
            env,
            "ERP_FAULT_ERROR_RATE",
            DEFAULT_ERROR_RATE if mode == ERRORS_500 else 0.0,
        )
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"ERP_FAULT_ERROR_RATE must be between 0 and 1; got {rate}")
        return cls(mode=mode, delay_seconds=delay, error_rate=rate)

    def crash_reason(self) -> str | None:
        """Why ``serve`` must exit at once, or None."""
        if self.mode == CRASH:
            return "fault 'crash': this build exits at start on purpose (lab fault injection)"
        return None

    def readiness_blocker(self, uptime: float) -> str | None:
        """Why readiness must fail ``uptime`` seconds after start, or None."""
        if self.mode == NEVER_READY:
            return "fault 'never-ready': this build never reports ready"
        if self.mode == SLOW_READY and uptime < self.delay_seconds:
            return f"fault 'slow-ready': ready in {self.delay_seconds - uptime:.0f} s"
        return None

    def broken(self, ready_for: float | None) -> str | None:
        """Why every health check must fail, given seconds since first ready, or None."""
        if self.mode == FAILS_AFTER_READY and ready_for is not None and ready_for >= self.delay_seconds:
            return f"fault 'fails-after-ready': broken {self.delay_seconds:g} s after becoming ready"
        return None

    def database_failure(self) -> str | None:
        """Why the database health check must fail, or None."""
        if self.mode == DATABASE_FAILS:
            return "fault 'database-fails': database check fails on purpose"
        return None

    def migration_hangs(self) -> bool:
        """Whether ``migrate`` hangs once it holds the migration lock (until it is stopped)."""
        return self.mode == MIGRATION_HANGS

    def fails_request(self, draw: float) -> bool:
        """Whether an API request answers 500, given a uniform draw in [0, 1)."""
        return self.mode == ERRORS_500 and draw < self.error_rate


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number; got {raw!r}") from None
