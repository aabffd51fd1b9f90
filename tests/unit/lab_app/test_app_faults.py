import pytest
from erp_app.faults import MODES, FaultPlan


def plan(**env):
    return FaultPlan.from_env({key.upper(): value for key, value in env.items()})


def test_no_fault_by_default():
    fault = plan()
    assert fault.mode == "none"
    assert fault.crash_reason() is None
    assert fault.readiness_blocker(0) is None
    assert fault.broken(1e9) is None
    assert fault.database_failure() is None
    assert not fault.fails_request(0.0)
    assert not fault.migration_hangs()


def test_unknown_mode_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="ERP_FAULT must be one of none, crash"):
        plan(erp_fault="explode")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"erp_fault_delay_seconds": "soon"}, "ERP_FAULT_DELAY_SECONDS must be a number"),
        ({"erp_fault_delay_seconds": "-1"}, "ERP_FAULT_DELAY_SECONDS must be >= 0"),
        ({"erp_fault_error_rate": "1.5"}, "ERP_FAULT_ERROR_RATE must be between 0 and 1"),
    ],
)
def test_bad_numbers_name_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        plan(erp_fault="slow-ready", **env)


def test_defaults_per_mode():
    assert plan(erp_fault="slow-ready").delay_seconds == 120
    assert plan(erp_fault="fails-after-ready").delay_seconds == 20
    assert plan(erp_fault="errors-500").error_rate == 0.3


def test_crash():
    assert "crash" in plan(erp_fault="crash").crash_reason()


def test_never_ready_blocks_readiness_forever():
    fault = plan(erp_fault="never-ready")
    assert fault.readiness_blocker(0)
    assert fault.readiness_blocker(1e9)
    assert fault.broken(1e9) is None


def test_slow_ready_blocks_until_the_delay():
    fault = plan(erp_fault="slow-ready", erp_fault_delay_seconds="30")
    assert fault.readiness_blocker(0) == "fault 'slow-ready': ready in 30 s"
    assert fault.readiness_blocker(29.9)
    assert fault.readiness_blocker(30) is None


def test_fails_after_ready_counts_from_first_ready():
    fault = plan(erp_fault="fails-after-ready", erp_fault_delay_seconds="5")
    assert fault.broken(None) is None  # never ready yet
    assert fault.broken(4.9) is None
    assert "fails-after-ready" in fault.broken(5)
    assert fault.readiness_blocker(1e9) is None


def test_database_fails_only_breaks_the_database_check():
    fault = plan(erp_fault="database-fails")
    assert fault.database_failure()
    assert fault.readiness_blocker(0) is None
    assert fault.broken(1e9) is None


def test_errors_500_fails_the_given_share_of_draws():
    fault = plan(erp_fault="errors-500", erp_fault_error_rate="0.25")
    draws = [i / 100 for i in range(100)]
    assert sum(fault.fails_request(d) for d in draws) == 25


def test_error_rate_only_matters_for_errors_500():
    assert not plan(erp_fault="never-ready", erp_fault_error_rate="1").fails_request(0.0)


def test_only_migration_hangs_hangs_migrate_and_it_serves_normally():
    fault = plan(erp_fault="migration-hangs")
    assert fault.migration_hangs()
    assert fault.crash_reason() is None and fault.readiness_blocker(0) is None and fault.broken(1e9) is None
    assert [mode for mode in MODES if plan(erp_fault=mode).migration_hangs()] == ["migration-hangs"]


def test_every_mode_parses():
    assert [plan(erp_fault=mode).mode for mode in MODES] == list(MODES)
