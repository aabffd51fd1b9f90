import pytest
from erp_app import health
from erp_app.faults import FaultPlan

NOW = "2026-11-27T12:00:00+00:00"
UP = health.DatabaseProbe(time=NOW, reachable=True, latency_ms=1.234, read_only=False, applied=("0001", "0002"))
DOWN = health.DatabaseProbe(time=NOW, reachable=False, error="connection refused")


def ctx(version="1.1.0", fault="none", **kwargs):
    fields = {"uptime": 12.34, "schema": "0002", **kwargs}
    return health.Context(version=version, fault=FaultPlan.from_env({"ERP_FAULT": fault}), time=NOW, **fields)


def statuses(checks):
    return {name: entries[0]["status"] for name, entries in checks.items()}


def test_live_document_follows_the_draft():
    c = ctx()
    code, body = health.document(c, health.live(c), "liveness")
    assert code == 200
    assert body == {
        "status": "pass",
        "version": "1.1.0",
        "releaseId": "0002",
        "serviceId": "erp-app",
        "description": "liveness",
        "checks": {
            "process:uptime": [
                {"componentType": "system", "observedValue": 12.3, "observedUnit": "s", "time": NOW, "status": "pass"}
            ]
        },
    }


def test_ready_and_database_pass_on_a_healthy_database():
    c = ctx()
    assert statuses(health.ready(c, UP)) == {
        "process:readiness": "pass",
        "postgresql:connection": "pass",
        "postgresql:schema": "pass",
    }
    connection = health.database(c, UP)["postgresql:connection"][0]
    assert connection["observedValue"] == 1.23
    assert connection["observedUnit"] == "ms"
    assert connection["componentType"] == "datastore"
    assert "output" not in connection


def test_unreachable_database_fails_ready_with_the_reason():
    c = ctx()
    code, body = health.document(c, health.ready(c, DOWN), "ready")
    assert code == 503
    assert body["status"] == "fail"
    assert body["checks"]["postgresql:connection"][0]["output"] == "connection refused"


def test_missing_migrations_fail_ready():
    c = ctx(schema="0001")
    probe = health.DatabaseProbe(time=NOW, reachable=True, latency_ms=1, read_only=False, applied=("0001",))
    check = health.ready(c, probe)["postgresql:schema"][0]
    assert check["status"] == "fail"
    assert check["observedValue"] == "0001"
    assert "missing migrations 0002" in check["output"]


def test_unmigrated_database_reports_no_schema():
    probe = health.DatabaseProbe(time=NOW, reachable=True, latency_ms=1, read_only=False, applied=())
    check = health.ready(ctx(schema=None), probe)["postgresql:schema"][0]
    assert (check["status"], check["observedValue"]) == ("fail", "none")


def test_older_release_on_newer_schema_warns_but_stays_ready():
    c = ctx(version="1.0.0")
    code, body = health.document(c, health.ready(c, UP), "ready")
    assert code == 200
    assert body["status"] == "warn"
    assert "newer than this release's 0001" in body["checks"]["postgresql:schema"][0]["output"]


def test_draining_fails_ready_but_not_live():
    c = ctx(draining=True)
    assert health.document(c, health.ready(c, UP), "")[0] == 503
    assert health.document(c, health.live(c), "")[0] == 200
    assert health.ready(c, UP)["process:readiness"][0]["output"] == "shutting down"


def test_read_only_database_fails_the_database_check():
    probe = health.DatabaseProbe(time=NOW, reachable=True, latency_ms=1, read_only=True, applied=("0001", "0002"))
    checks = health.database(ctx(), probe)
    assert checks["postgresql:writable"][0]["status"] == "fail"
    assert checks["postgresql:writable"][0]["observedValue"] is False


def test_release_id_omitted_while_schema_unknown():
    c = ctx(schema=None)
    _, body = health.document(c, health.live(c), "")
    assert "releaseId" not in body


def test_never_ready():
    c = ctx(fault="never-ready")
    assert health.document(c, health.live(c), "")[0] == 200
    assert health.document(c, health.ready(c, UP), "")[0] == 503


def test_database_fails_breaks_database_and_overall_only():
    c = ctx(fault="database-fails")
    assert health.document(c, health.live(c), "")[0] == 200
    assert health.document(c, health.ready(c, UP), "")[0] == 200
    assert health.document(c, health.database(c, UP), "")[0] == 503
    overall = health.overall(c, UP)
    assert statuses(overall)["postgresql:connection"] == "fail"
    assert health.document(c, overall, "")[0] == 503


@pytest.mark.parametrize(("uptime", "code"), [(5, 503), (30, 200)])
def test_slow_ready(uptime, code):
    c = health.Context(
        version="1.1.0",
        fault=FaultPlan.from_env({"ERP_FAULT": "slow-ready", "ERP_FAULT_DELAY_SECONDS": "30"}),
        time=NOW,
        uptime=uptime,
    )
    assert health.document(c, health.ready(c, UP), "")[0] == code


def test_fails_after_ready_breaks_live_ready_and_overall():
    fault = FaultPlan.from_env({"ERP_FAULT": "fails-after-ready", "ERP_FAULT_DELAY_SECONDS": "20"})
    healthy = health.Context(version="1.1.0", fault=fault, time=NOW, uptime=30, ready_for=19)
    broken = health.Context(version="1.1.0", fault=fault, time=NOW, uptime=30, ready_for=20)
    for checks in (health.live, lambda c: health.ready(c, UP), lambda c: health.overall(c, UP)):
        assert health.document(healthy, checks(healthy), "")[0] == 200
        assert health.document(broken, checks(broken), "")[0] == 503
    assert "fails-after-ready" in health.live(broken)["process:uptime"][0]["output"]


def test_overall_contains_every_check():
    assert set(health.overall(ctx(), UP)) == {
        "process:uptime",
        "process:readiness",
        "postgresql:connection",
        "postgresql:schema",
        "postgresql:writable",
    }


def test_worst():
    assert health.worst([]) == "pass"
    assert health.worst(["pass", "warn"]) == "warn"
    assert health.worst(["warn", "fail", "pass"]) == "fail"
