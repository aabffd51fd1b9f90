"""Health documents in the IETF draft-inadarei-api-health-check format.

Pure: the web layer gathers a DatabaseProbe and a Context and renders what these
functions return. Each endpoint is a set of checks; the document status is the
worst check status, and only ``fail`` turns into HTTP 503.
"""

from dataclasses import dataclass

from erp_app import SERVICE_ID
from erp_app.faults import FaultPlan
from erp_app.migrations import required_by, schema_version, target_version

CONTENT_TYPE = "application/health+json"
PASS, WARN, FAIL = "pass", "warn", "fail"
_SEVERITY = {PASS: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class DatabaseProbe:
    """One round trip to PostgreSQL, as seen by the app."""

    time: str  # ISO 8601, when the probe ran
    reachable: bool
    latency_ms: float | None = None  # SELECT 1 round trip
    read_only: bool | None = None  # pg_is_in_recovery() or transaction_read_only
    applied: tuple[str, ...] | None = None  # ids in schema_migrations; () if no table
    error: str | None = None


@dataclass(frozen=True)
class Context:
    """Process facts an evaluation needs, read once per request."""

    version: str
    fault: FaultPlan
    time: str  # ISO 8601 now
    uptime: float
    draining: bool = False
    ready_for: float | None = None
    schema: str | None = None  # last known ERP schema version


def live(ctx: Context) -> dict:
    """Liveness: the process and its event loop answer; no database call."""
    return {"process:uptime": [_uptime(ctx)]}


def ready(ctx: Context, probe: DatabaseProbe) -> dict:
    """Readiness: database reachable, schema complete, not draining, not faulted."""
    return {
        "process:readiness": [_readiness(ctx)],
        "postgresql:connection": [_connection(ctx, probe, faulted=False)],
        "postgresql:schema": [_schema(ctx, probe)],
    }


def database(ctx: Context, probe: DatabaseProbe) -> dict:
    """Database: reachable, answers SELECT 1 in time, accepts writes."""
    return {
        "postgresql:connection": [_connection(ctx, probe, faulted=True)],
        "postgresql:writable": [_writable(ctx, probe)],
    }


def overall(ctx: Context, probe: DatabaseProbe) -> dict:
    """Everything at once, for /health.

    The database endpoint's connection check (the one the database-fails fault
    breaks) replaces readiness's, so /health shows that fault too.
    """
    return {**live(ctx), **ready(ctx, probe), **database(ctx, probe)}


def document(ctx: Context, checks: dict, description: str) -> tuple[int, dict]:
    """The HTTP status and body for a set of checks."""
    status = worst(entry["status"] for entries in checks.values() for entry in entries)
    body = {"status": status, "version": ctx.version}
    if ctx.schema is not None:
        body["releaseId"] = ctx.schema
    body |= {"serviceId": SERVICE_ID, "description": description, "checks": checks}
    return (503 if status == FAIL else 200), body


def worst(statuses) -> str:
    return max(statuses, key=_SEVERITY.__getitem__, default=PASS)


def _check(status: str, output: str | None = None, **fields) -> dict:
    entry = {**fields, "status": status}
    if output is not None and status != PASS:
        entry["output"] = output
    return entry


def _uptime(ctx: Context) -> dict:
    broken = ctx.fault.broken(ctx.ready_for)
    return _check(
        FAIL if broken else PASS,
        broken,
        componentType="system",
        observedValue=round(ctx.uptime, 1),
        observedUnit="s",
        time=ctx.time,
    )


def _readiness(ctx: Context) -> dict:
    if ctx.draining:
        return _check(
            FAIL,
            "shutting down",
            componentType="system",
            observedValue="draining",
            time=ctx.time,
        )
    reason = ctx.fault.broken(ctx.ready_for) or ctx.fault.readiness_blocker(ctx.uptime)
    return _check(
        FAIL if reason else PASS,
        reason,
        componentType="system",
        observedValue="not ready" if reason else "serving",
        time=ctx.time,
    )


def _connection(ctx: Context, probe: DatabaseProbe, *, faulted: bool) -> dict:
    # The database-fails fault only breaks the deep database check, never
    # readiness: it models a warning sign that must not take traffic away.
    reason = probe.error if not probe.reachable else (ctx.fault.database_failure() if faulted else None)
    fields = {"componentType": "datastore", "time": probe.time}
    if probe.latency_ms is not None:
        fields |= {"observedValue": round(probe.latency_ms, 2), "observedUnit": "ms"}
    return _check(FAIL if reason else PASS, reason, **fields)


def _writable(ctx: Context, probe: DatabaseProbe) -> dict:
    if not probe.reachable or probe.read_only is None:
        return _check(FAIL, probe.error or "unknown", componentType="datastore", time=probe.time)
    return _check(
        FAIL if probe.read_only else PASS,
        "database is read-only (in recovery or transaction_read_only on)",
        componentType="datastore",
        observedValue=not probe.read_only,
        time=probe.time,
    )


def _schema(ctx: Context, probe: DatabaseProbe) -> dict:
    if not probe.reachable or probe.applied is None:
        return _check(
            FAIL,
            probe.error or "schema unknown",
            componentType="datastore",
            time=probe.time,
        )
    applied = set(probe.applied)
    current = schema_version(applied)
    fields = {
        "componentType": "datastore",
        "observedValue": current or "none",
        "time": probe.time,
    }
    missing = [m.id for m in required_by(ctx.version) if m.id not in applied]
    if missing:
        return _check(
            FAIL,
            f"missing migrations {', '.join(missing)}: run 'erp-app migrate'",
            **fields,
        )
    target = target_version(ctx.version)
    if current is not None and target is not None and current > target:
        # Expected after a rollback: expand-only migrations keep this release working.
        return _check(WARN, f"schema {current} is newer than this release's {target}", **fields)
    return _check(PASS, **fields)
