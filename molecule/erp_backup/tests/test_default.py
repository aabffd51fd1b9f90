"""What a database host ends up with: scheduled jobs under flock, and backups that work."""

import json

ENV = "ERP_BACKUP_ENV_FILE=/etc/erp/backup.env"
METRICS = "/var/lib/prometheus/node-exporter"


def metrics(host, name):
    values = {}
    for line in host.file(f"{METRICS}/{name}.prom").content_string.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(" ")
            values[key] = float(value)
    return values


def test_cron_runs_every_job_under_flock_with_an_explicit_environment(host):
    cron = host.file("/etc/cron.d/erp-backup")
    assert cron.exists and cron.user == "root" and cron.mode == 0o644
    jobs = [line for line in cron.content_string.splitlines() if line and line[0] in "0123456789*"]
    assert len(jobs) == 4
    assert all(" root /usr/bin/flock " in line for line in jobs)
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in cron.content_string
    assert "ERP_BACKUP_ENV_FILE=/etc/erp/backup.env" in cron.content_string
    assert host.service("cron").is_running


def test_a_backup_run_produces_a_verified_dump_manifest_and_metrics(host):
    run = host.run(f"{ENV} /usr/local/sbin/erp-backup")
    assert run.rc == 0, run.stderr
    backup = run.stdout.strip()
    manifest = json.loads(host.file(f"{backup}/manifest.json").content_string)
    assert manifest["row_counts"]["public.customers"] == 500
    assert manifest["schema_version"] == "0001"
    assert host.run(f"cd {backup} && sha256sum --quiet -c SHA256SUMS").rc == 0
    values = metrics(host, "erp_backup")
    assert values["erp_backup_last_success"] == 1
    assert values["erp_backup_dump_bytes"] > 1024

    verify = host.run(f"{ENV} /usr/local/sbin/erp-backup-verify")
    assert verify.rc == 0, verify.stderr
    assert metrics(host, "erp_backup_verify")["erp_backup_verify_restore_duration_seconds"] > 0
    assert host.run("docker ps -aq --filter label=erp.backup.verify").stdout.strip() == ""


def test_wal_streams_to_the_host_and_a_base_backup_works(host):
    assert host.docker("erp-db-wal").is_running
    base = host.run(f"{ENV} /usr/local/sbin/erp-backup-base")
    assert base.rc == 0, base.stderr
    assert host.file(f"{base.stdout.strip()}/base.tar.gz").size > 1024
    assert metrics(host, "erp_backup_wal")["erp_backup_wal_receiver_up"] == 1


def test_a_stopped_database_makes_the_backup_fail_loudly(host):
    host.run("docker stop erp-db")
    try:
        run = host.run(f"{ENV} /usr/local/sbin/erp-backup")
    finally:
        host.run("docker start erp-db")
    assert run.rc == 1
    assert "is not running" in run.stderr
    assert metrics(host, "erp_backup")["erp_backup_last_success"] == 0
    assert host.run("journalctl -t erp-backup --no-pager -q | grep -c 'backup FAILED'").stdout.strip() != "0"
