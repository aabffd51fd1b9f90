"""The backup alert rules read metrics the erp_backup jobs really write.

The names are taken from the job scripts themselves (their ERP_METRICS_PREFIX and the gauges
of their `erp_metrics` calls) and rendered by the jobs' own tool, so renaming a gauge in a
script without the rules (or the reverse) fails here, not silently in production.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
FILES = REPO / "roles" / "erp_backup" / "files"
RULES = sorted((REPO / "monitoring" / "rules").glob("*.yml"))
_spec = importlib.util.spec_from_file_location("erp_backup_tool_names", FILES / "erp_backup_tool.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)


def written_metrics() -> dict[str, set[str]]:
    """Metric names each job script writes, rendered by erp_backup_tool as the job renders them."""
    written = {}
    for script in sorted(FILES.glob("erp-backup*")):
        text = script.read_text()
        prefix = re.search(r"^ERP_METRICS_PREFIX=(\w+)$", text, re.M)
        if prefix is None:
            continue
        calls = re.findall(r"erp_metrics (?:success|failure) (?:[^\n]*\\\n)*[^\n]*", text)
        gauges, current = {}, {}
        for call in calls:
            # Gauges before --current describe the last good run, those after it the attempt.
            kind = gauges
            for flag, name in re.findall(r'(--current)|"(\w+)=', call):
                if flag:
                    kind = current
                else:
                    kind[name] = 1.0
        text_file = tool.render_metrics(prefix.group(1), script.name, {}, 1.0, True, 1.0, gauges, current)
        written[script.name] = {line.split()[0] for line in text_file.splitlines() if not line.startswith("#")}
    return written


def test_every_job_that_writes_metrics_is_found():
    assert set(written_metrics()) == {"erp-backup", "erp-backup-verify", "erp-backup-base", "erp-backup-wal"}


def test_the_scripts_write_the_gauges_the_rules_and_readme_rely_on():
    written = written_metrics()
    assert {"erp_backup_wal_receiver_up", "erp_backup_wal_behind_bytes",
            "erp_backup_wal_newest_segment_timestamp_seconds"} <= written["erp-backup-wal"]
    assert {"erp_backup_size_bytes", "erp_backup_dump_bytes"} <= written["erp-backup"]
    assert "erp_backup_verify_restore_duration_seconds" in written["erp-backup-verify"]


def test_every_backup_metric_an_alert_rule_reads_is_written_by_a_job():
    names = set().union(*written_metrics().values())
    used = set()
    for rules in RULES:
        for group in yaml.safe_load(rules.read_text())["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"\berp_backup\w*", rule["expr"]))
    assert used, "no rule reads an erp_backup metric"
    assert sorted(used - names) == []


def test_the_pitr_alerts_exist():
    text = (REPO / "monitoring" / "rules" / "backup.rules.yml").read_text()
    for alert in ("ErpBackupWalReceiverDown", "ErpBackupWalStale", "ErpBackupWalCheckNotRunning",
                  "ErpBackupBaseStale", "ErpBackupBaseFailed"):
        assert f"alert: {alert}\n" in text
