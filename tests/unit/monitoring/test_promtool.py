"""monitoring/ is what a real Prometheus accepts: promtool checks the rules, the example
configuration, the rule unit tests, and the metrics the host health check writes.

promtool comes from Debian's `prometheus` package (`make setup`). Without it these tests
fail with that message: skipping would let broken rules through unnoticed.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))
SCRIPT = REPO / "roles" / "erp_healthcheck" / "files" / "erp_healthcheck.py"


def promtool(*args, stdin=None):
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install Debian's 'prometheus' package (make setup does)")
    return subprocess.run([path, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False)


def test_there_are_rule_files_and_rule_tests():
    assert RULE_FILES, "monitoring/rules/*.yml is empty"
    assert RULE_TESTS, "monitoring/tests/*.yml is empty"


@pytest.mark.parametrize("rules", RULE_FILES, ids=lambda p: p.name)
def test_rules_pass_promtool_check_rules(rules):
    completed = promtool("check", "rules", str(rules))
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_example_configuration_passes_promtool_check_config():
    completed = promtool("check", "config", str(MONITORING / "prometheus.yml"))
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.parametrize("tests", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(tests):
    completed = promtool("test", "rules", str(tests))
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_rule_tests_cover_the_required_alerts():
    text = "\n".join(path.read_text() for path in RULE_TESTS)
    for alert in ("ErpDown", "ErpBackupStale", "ErpBackupFailed", "ErpRestoreVerificationFailing",
                  "ErpCanaryFailing"):
        assert f"alertname: {alert}\n" in text, alert


def test_every_documented_alert_exists():
    text = "\n".join(path.read_text() for path in RULE_FILES)
    for alert in ("ErpDown", "ErpCanaryFailing", "ErpBackupStale", "ErpBackupFailed",
                  "ErpRestoreVerificationFailing", "ErpDiskFillingUp", "ErpCertificateExpiringSoon"):
        assert f"alert: {alert}\n" in text, alert


def _renderer():
    sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
    try:
        spec = importlib.util.spec_from_file_location("erp_healthcheck_for_promtool", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO / "plugins" / "module_utils"))
    return module


def test_health_check_metrics_pass_promtool_check_metrics():
    hc = _renderer()
    results = [
        hc.result("app_blue_ready", "ok", "ready", 0.012),
        hc.result("app_green_container", "idle", "container erp-app-green does not exist"),
        hc.result("app_serving", "ok", "serving from slot blue"),
        hc.result("db_writable", "fail", "database is read-only"),
        hc.result("lb_backend_erp_app", "ok", "2/2 servers up", labels={"backend": "erp_app"}),
        hc.result("disk:/", "ok", "/: 42% free", labels={"path": "/", "free_ratio": 0.42}),
        hc.result("memory", "ok", "50% available", labels={"available_ratio": 0.5}),
        hc.result("certificate:/etc/erp/tls/erp.pem", "ok", "expires in 80 days",
                  labels={"path": "/etc/erp/tls/erp.pem", "not_after": 1.9e9}),
    ]
    text = hc.render_metrics(results, 1_800_000_000.0, 0.31)
    completed = promtool("check", "metrics", stdin=text)
    assert completed.returncode == 0, completed.stdout + completed.stderr + text
    # the names the alert rules use are the names the script writes
    rules = "\n".join(path.read_text() for path in RULE_FILES)
    for name in ("erp_healthcheck_check_ok", "erp_healthcheck_last_run_timestamp_seconds",
                 "erp_healthcheck_disk_free_ratio", "erp_healthcheck_memory_available_ratio",
                 "erp_healthcheck_certificate_expiry_timestamp_seconds"):
        assert f"\n{name}" in text, name
        assert name in rules, name
