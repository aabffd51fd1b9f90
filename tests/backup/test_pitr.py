"""Point-in-time recovery: WAL streamed by erp-backup-wal, base backups by erp-backup-base,
recovery by erp-backup-pitr, against a real PostgreSQL container."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from backup_env import Jobs, docker, psql


@pytest.fixture
def wal_jobs(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    yield jobs
    docker("rm", "-f", f"{victim}-wal", check=False)


def names(container: str) -> list[str]:
    return psql(container, "SELECT name FROM customers WHERE name LIKE 'pitr %' ORDER BY name").split("\n")


def test_write_a_note_the_time_write_b_restore_to_that_time_a_is_there_b_is_not(wal_jobs: Jobs, victim):
    first = wal_jobs.run("erp-backup-wal")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("changed:")
    assert wal_jobs.run("erp-backup-wal").stdout.startswith("ok:")  # idempotent
    base = wal_jobs.run("erp-backup-base")
    assert base.returncode == 0, base.stderr

    psql(victim, "INSERT INTO customers (name) VALUES ('pitr A')")
    time.sleep(1.5)
    target = psql(victim, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.5)
    psql(victim, "INSERT INTO customers (name) VALUES ('pitr B')")
    psql(victim, "SELECT pg_switch_wal()")  # B's commit leaves the segment being written
    assert names(victim) == ["pitr A", "pitr B"]

    result = wal_jobs.run("erp-backup-pitr", target, timeout=600)
    assert result.returncode == 0, result.stderr
    assert names(victim) == ["pitr A"]
    assert "previous database kept as" in result.stdout
    # The recovered dump stays as a labelled backup, outside retention.
    assert any(p.name.endswith(dt.datetime.fromisoformat(target).strftime("pitr-%Y%m%dt%H%M%Sz"))
               for p in wal_jobs.backups())
    assert docker("volume", "ls", "-q", "--filter", f"label=erp.backup.pitr={victim}").stdout.strip() == ""


def test_a_target_before_every_base_backup_is_refused(wal_jobs: Jobs):
    assert wal_jobs.run("erp-backup-wal").returncode == 0
    assert wal_jobs.run("erp-backup-base").returncode == 0
    result = wal_jobs.run("erp-backup-pitr", "2020-01-01 00:00:00+00")
    assert result.returncode == 1
    assert "no base backup" in result.stderr


def test_base_backup_without_a_wal_receiver_fails_loudly(wal_jobs: Jobs):
    result = wal_jobs.run("erp-backup-base")
    assert result.returncode == 1
    assert "a base backup without WAL is useless" in result.stderr
    assert wal_jobs.metrics("erp_backup_base")["erp_backup_base_last_success"] == 0


def test_the_receiver_metrics_say_it_is_down_when_it_is(wal_jobs: Jobs, victim):
    assert wal_jobs.run("erp-backup-wal").returncode == 0
    up = wal_jobs.metrics("erp_backup_wal")
    assert up["erp_backup_wal_receiver_up"] == 1
    assert 0 <= up["erp_backup_wal_behind_bytes"] < 16 * 1024 * 1024
    docker("stop", "-t", "5", victim)
    result = wal_jobs.run("erp-backup-wal")
    assert result.returncode == 1
    assert "WAL receiver is NOT running" in result.stderr
    down = wal_jobs.metrics("erp_backup_wal")
    # What the alert rules read (monitoring/rules/backup.rules.yml): down now, not the last good value.
    assert down["erp_backup_wal_receiver_up"] == 0
    assert down["erp_backup_wal_last_success"] == 0
    assert down["erp_backup_wal_last_success_timestamp_seconds"] == up["erp_backup_wal_last_success_timestamp_seconds"]
    newest = "erp_backup_wal_newest_segment_timestamp_seconds"
    assert down[newest] == up[newest]
