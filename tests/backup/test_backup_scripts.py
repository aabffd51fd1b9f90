"""The installed backup scripts against real PostgreSQL containers: what ops would see."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest
from backup_env import (
    RUN_ID,
    Jobs,
    docker,
    pg_dump_is_waiting,
    psql,
    start_database,
    table_checksums,
    table_locked,
    wait_for,
)


def counts_in(container: str) -> dict[str, int]:
    rows = psql(container, "SELECT 'public.' || relname, n_live_tup FROM pg_stat_user_tables")
    names = [line.split("|")[0] for line in rows.splitlines()]
    return {name: int(psql(container, f"SELECT count(*) FROM {name}")) for name in names}  # noqa: S608 (catalog names)


def test_backup_writes_a_checked_dump_with_manifest_and_metrics(jobs: Jobs, database):
    before = time.time()
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    [backup] = jobs.backups()
    assert result.stdout.strip() == str(backup)
    assert sorted(p.name for p in backup.iterdir()) == ["SHA256SUMS", "erp.dump", "globals.sql", "manifest.json"]
    manifest = jobs.manifest(backup)
    assert manifest["database"] == "erp"
    assert manifest["schema_version"] == "0002"
    assert manifest["postgres_version"].startswith("15.")
    assert manifest["row_counts"] == counts_in(database)
    assert manifest["row_counts"]["public.invoice_lines"] == 450
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=backup, check=False).returncode == 0
    assert "CREATE ROLE erp;" in (backup / "globals.sql").read_text()
    metrics = jobs.metrics()
    assert metrics["erp_backup_last_success"] == 1
    assert metrics["erp_backup_last_success_timestamp_seconds"] >= before
    assert metrics["erp_backup_size_bytes"] > metrics["erp_backup_dump_bytes"] > 1024
    assert jobs.leftovers() == []
    assert oct(backup.stat().st_mode & 0o777) == "0o700"


def test_verify_restores_into_a_throwaway_container_and_records_the_restore_time(jobs: Jobs):
    assert jobs.run("erp-backup").returncode == 0
    result = jobs.run("erp-backup-verify")
    assert result.returncode == 0, result.stderr
    assert "amcheck passed" in result.stderr
    metrics = jobs.metrics("erp_backup_verify")
    assert metrics["erp_backup_verify_last_success"] == 1
    assert metrics["erp_backup_verify_restore_duration_seconds"] > 0
    assert docker("ps", "-aq", "--filter", f"name={RUN_ID}-verify").stdout.strip() == ""


def test_counts_taken_while_rows_are_written_describe_exactly_the_dumped_data(tmp_path, victim):
    """The manifest's counts come from the dump's own snapshot: with inserts committing all
    through the backup, the restored dump still has exactly the counted rows."""
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    writer = subprocess.Popen(
        ["docker", "exec", "-i", victim, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "erp",
         "-c", "DO $$ BEGIN FOR i IN 1..4000 LOOP INSERT INTO customers (name) VALUES ('concurrent ' || i);"
               " COMMIT; PERFORM pg_sleep(0.005); END LOOP; END $$"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: psql(victim, "SELECT count(*) FROM customers WHERE name LIKE 'concurrent %'") != "0",
                 what="the writer to start")
        result = jobs.run("erp-backup")
        still_writing = writer.poll() is None
    finally:
        writer.kill()
        writer.wait(timeout=30)
    assert result.returncode == 0, result.stderr
    assert still_writing, "the writer ended before the backup: the test proves nothing"
    [backup] = jobs.backups()
    counted = jobs.manifest(backup)["row_counts"]["public.customers"]
    assert 50 < counted < 50 + 4000
    verify = jobs.run("erp-backup-verify")
    assert verify.returncode == 0, verify.stderr


def test_a_corrupted_dump_fails_verification_and_names_the_file(jobs: Jobs):
    assert jobs.run("erp-backup").returncode == 0
    [backup] = jobs.backups()
    dump = backup / "erp.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = jobs.run("erp-backup-verify")
    assert result.returncode == 1
    assert str(dump) in result.stderr
    assert "corrupted" in result.stderr
    assert jobs.metrics("erp_backup_verify")["erp_backup_verify_last_success"] == 0


def test_row_counts_that_differ_from_the_manifest_fail_and_the_throwaway_container_goes(jobs: Jobs):
    assert jobs.run("erp-backup").returncode == 0
    [backup] = jobs.backups()
    manifest = jobs.manifest(backup)
    manifest["row_counts"]["public.customers"] += 1
    (backup / "manifest.json").write_text(json.dumps(manifest))
    result = jobs.run("erp-backup-verify")
    assert result.returncode == 1
    assert "public.customers: manifest says 201 rows, restored database has 200" in result.stderr
    assert docker("ps", "-aq", "--filter", f"name={RUN_ID}-verify").stdout.strip() == ""


def test_database_stopped_mid_backup_fails_loudly_and_keeps_the_last_success(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    assert jobs.run("erp-backup").returncode == 0
    first = jobs.backups()
    last_success = jobs.metrics()["erp_backup_last_success_timestamp_seconds"]
    with table_locked(victim):
        running = jobs.start(jobs.command("erp-backup"))
        wait_for(lambda: pg_dump_is_waiting(victim), what="pg_dump blocked on the table lock")
        docker("stop", "-t", "5", victim)
        _, stderr = running.communicate(timeout=120)
    assert running.returncode == 1, stderr
    assert "backup FAILED" in stderr
    assert jobs.backups() == first  # nothing new under a final name
    assert jobs.leftovers() == []  # and no partial file either
    metrics = jobs.metrics()
    assert metrics["erp_backup_last_success"] == 0
    assert metrics["erp_backup_last_success_timestamp_seconds"] == last_success
    assert metrics["erp_backup_last_attempt_timestamp_seconds"] > last_success


def test_a_stopped_database_container_is_a_failure_not_an_empty_backup(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    docker("stop", "-t", "5", victim)
    result = jobs.run("erp-backup")
    assert result.returncode == 1
    assert f"database container {victim} is not running" in result.stderr
    assert jobs.backups() == []
    assert jobs.metrics()["erp_backup_last_success_timestamp_seconds"] == 0


def test_a_dump_below_the_size_floor_is_a_failure(jobs: Jobs):
    jobs.configure(ERP_BACKUP_MIN_BYTES=50_000_000)
    result = jobs.run("erp-backup")
    assert result.returncode == 1
    assert "below the floor of 50000000" in result.stderr
    assert jobs.backups() == []


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "backups"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("mounting a tmpfs is not allowed here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_clear_failure_and_older_backups_stay_intact(tmp_path, small_disk, database):
    jobs = Jobs(tmp_path, database)
    jobs.configure()
    assert jobs.run("erp-backup").returncode == 0
    [older] = jobs.backups()
    sums_before = (older / "SHA256SUMS").read_text()
    # Fill the disk to just below what one more backup needs.
    used = sum(p.stat().st_size for p in older.iterdir())
    free = int(subprocess.run(["df", "--output=avail", "-B1", str(small_disk)], capture_output=True, text=True,
                              check=True).stdout.split()[-1])
    (small_disk / "filler").write_bytes(b"\0" * max(0, free - used // 2))
    result = jobs.run("erp-backup")
    assert result.returncode == 1
    assert "no space left on device" in result.stderr.lower(), result.stderr
    assert f"the backup file system of {small_disk} is full" in result.stderr
    assert jobs.backups() == [older]
    assert jobs.leftovers() == []
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=older, check=False).returncode == 0
    assert (older / "SHA256SUMS").read_text() == sums_before
    assert jobs.metrics()["erp_backup_last_success"] == 0


def cron_command(jobs: Jobs, wait: int) -> list[str]:
    """The command line the role's cron entry runs."""
    return ["/usr/bin/flock", "-E", "75", "-w", str(wait), str(jobs.lock_file), *jobs.command("erp-backup")]


def test_a_second_run_waits_for_the_first_and_then_makes_its_own_backup(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure(ERP_BACKUP_LOCK_WAIT=120)
    with table_locked(victim):
        first = jobs.start(cron_command(jobs, 120))
        wait_for(lambda: pg_dump_is_waiting(victim), what="the first backup to start dumping")
        # By hand (takes the same lock itself), labelled so retention keeps both of today's backups.
        second = jobs.start(jobs.command("erp-backup", "--label", "manual"))
        time.sleep(2)
        assert second.poll() is None  # waiting for the lock
        partials_during = jobs.leftovers()
        assert len([p for p in partials_during if p.startswith(".partial-")]) == 1
    _, err_first = first.communicate(timeout=120)
    _, err_second = second.communicate(timeout=120)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert len(jobs.backups()) == 2
    assert jobs.backups()[-1].name.endswith("-manual")
    for backup in jobs.backups():
        assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=backup, check=False).returncode == 0


def test_a_second_run_that_cannot_wait_exits_75_without_touching_anything(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure(ERP_BACKUP_LOCK_WAIT=1)
    with table_locked(victim):
        first = jobs.start(cron_command(jobs, 60))
        wait_for(lambda: pg_dump_is_waiting(victim), what="the first backup to start dumping")
        partial = jobs.leftovers()
        second = subprocess.run(cron_command(jobs, 1), capture_output=True, text=True, env=jobs.environ(),
                                timeout=60, check=False)
        third = jobs.run("erp-backup")
        assert jobs.leftovers() == partial
    assert second.returncode == 75
    assert third.returncode == 75
    assert "held" in third.stderr
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert len(jobs.backups()) == 1
    assert jobs.metrics()["erp_backup_last_success"] == 1  # the skipped runs are not failures


def test_retention_after_a_real_backup_keeps_exactly_the_gfs_set(jobs: Jobs):
    jobs.configure(ERP_BACKUP_KEEP_DAILY=3, ERP_BACKUP_KEEP_WEEKLY=2, ERP_BACKUP_KEEP_MONTHLY=3,
                   ERP_BACKUP_KEEP_LABELLED=2)
    jobs.dumps.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    faked = {}
    deploys = []
    for days_ago in range(1, 100):  # one backup a day for 99 days before today
        stamp = (now - dt.timedelta(days=days_ago)).replace(hour=2, minute=15, second=0, microsecond=0)
        path = jobs.dumps / stamp.strftime("%Y%m%dT%H%M%SZ")
        path.mkdir()
        (path / "manifest.json").write_text("{}")
        faked[stamp] = path.name
        if days_ago <= 4:  # and a deploy's pre-deploy dump on each of the last four days
            labelled = jobs.dumps / ((stamp + dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ") + "-pre-deploy")
            labelled.mkdir()
            (labelled / "manifest.json").write_text("{}")
            deploys.append(labelled.name)
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    new = result.stdout.strip().rsplit("/", 1)[1]
    stamps = sorted(faked, reverse=True)  # newest first
    # daily 3: today (the new backup) and the two days before
    expected = {new, faked[stamps[0]], faked[stamps[1]]}
    # weekly 2: this ISO week (the new backup) and the newest of the week before
    this_week = now.isocalendar()[:2]
    expected.add(faked[next(s for s in stamps if s.isocalendar()[:2] != this_week)])
    # monthly 3: this month (the new backup) and the newest of each of the two months before
    months = []
    for s in stamps:
        month = (s.year, s.month)
        if month != (now.year, now.month) and month not in [m for m, _ in months]:
            months.append((month, faked[s]))
    expected |= {name for _, name in months[:2]}
    # labelled: the two newest pre-deploy dumps, outside the GFS set
    expected |= set(sorted(deploys)[-2:])
    assert sorted(p.name for p in jobs.backups()) == sorted(expected)


def test_restore_round_trip_gives_identical_tables(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    psql(victim, "UPDATE customers SET email = NULL WHERE id % 7 = 0;"
                 "DELETE FROM invoice_lines WHERE invoice_id % 11 = 0;")
    before = table_checksums(victim)
    assert jobs.run("erp-backup").returncode == 0
    psql(victim, "DELETE FROM invoice_lines; UPDATE customers SET name = 'changed after the backup';")
    assert table_checksums(victim) != before
    result = jobs.run("erp-backup-restore", "latest")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("restored erp from ")
    assert table_checksums(victim) == before
    # The database that was replaced is kept beside it, with the later changes.
    previous = psql(victim, "SELECT datname FROM pg_database WHERE datname LIKE 'erp_pre_restore_%'", "postgres")
    assert psql(victim, "SELECT count(*) FROM invoice_lines", previous) == "0"
    assert psql(victim, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'erp'", "postgres") == "erp"


def test_a_failed_restore_leaves_the_live_database_untouched(tmp_path, victim):
    jobs = Jobs(tmp_path, victim)
    jobs.configure()
    assert jobs.run("erp-backup").returncode == 0
    [backup] = jobs.backups()
    (backup / "erp.dump").write_bytes(b"PGDMP" + b"\0" * 2000)
    before = table_checksums(victim)
    result = jobs.run("erp-backup-restore", str(backup))
    assert result.returncode == 1
    assert str(backup / "erp.dump") in result.stderr
    assert table_checksums(victim) == before


def test_database_container_fixture_is_reusable(network):
    # start_database replaces a leftover of the same name (a killed earlier run).
    name = f"{RUN_ID}-again"
    start_database(name, network)
    start_database(name, network)
    docker("rm", "-f", "-v", name)
