"""Backups and restores on the lab, through the playbooks ops run.

With a release deployed, backup.yml installs the erp_backup role on the db host (cron jobs, WAL
receiver, a first base backup) and takes a backup. Data written through the ERP API via the
load balancer comes back identical after restore.yml (per-table checksums computed in
PostgreSQL, not only counts); during the restore users get HAProxy's 503, never a connection
error, and the ERP is served again afterwards; restore.yml says what it restored from and how
long it took. A point-in-time restore returns the data as it was at that time.
backup_verify.yml proves the newest backup restores and writes its metrics. A restore that cannot
reach the load balancer's runtime API restores nothing and leaves users served.
The refusal on prod without restore_confirm needs no lab: tests/unit/playbooks/test_backup_guard.py.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest
from conftest import LB_PORT, ensure_release, playbook, secrets_in

METRICS = "/var/lib/prometheus/node-exporter"


def api(method: str, path: str, body: dict | None = None) -> tuple[int, object]:
    request = urllib.request.Request(f"http://127.0.0.1:{LB_PORT}{path}", method=method,
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (the lab LB's http URL above)
        return response.status, json.load(response)


def write_records(tag: str, customers: int = 3) -> list[int]:
    ids = []
    for n in range(customers):
        status, customer = api("POST", "/api/customers", {"name": f"{tag} customer {n}"})
        assert status == 201
        ids.append(customer["id"])
        status, _ = api("POST", "/api/invoices", {"customer_id": customer["id"], "lines": [
            {"description": f"{tag} line {line}", "quantity": "1.5", "unit_price": f"{10 + line}.25"}
            for line in range(1, 3)]})
        assert status == 201
    return ids


def customer_names() -> set[str]:
    status, customers = api("GET", "/api/customers?limit=1000")
    assert status == 200
    return {c["name"] for c in customers}


def psql(db, sql: str) -> str:
    command = "sudo docker exec erp-db psql -X -q -A -t -v ON_ERROR_STOP=1 -U postgres -d erp -c " + shlex.quote(sql)
    return db.ssh(command).stdout.strip()


def table_checksums(db) -> dict[str, str]:
    """count and md5 of every row of every ERP table, in a stable order, computed by PostgreSQL."""
    tables = psql(db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").split()
    assert {"customers", "invoices", "invoice_lines", "schema_migrations"} <= set(tables)
    # Table names come from pg_tables of the ERP database itself.
    query = " UNION ALL ".join(
        f"SELECT '{t}', count(*) || ':' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')"  # noqa: S608
        f" FROM public.{t} r" for t in tables)
    return dict(line.split("|", 1) for line in psql(db, query).splitlines())


def said(proc) -> str:
    """The playbook's output with YAML's line wrapping undone."""
    return " ".join(proc.stdout.split())


def metrics(db, name: str) -> dict[str, float]:
    values = {}
    for line in db.ssh(f"cat {METRICS}/{name}.prom").stdout.splitlines():
        if line and not line.startswith("#"):
            key, value = line.split(" ")
            values[key] = float(value)
    return values


class Probe:
    """A user reading the ERP through the LB every 0.1 s: status codes, or the connection error."""

    def __init__(self, max_seconds: float = 900) -> None:
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self.bodies_503: list[str] = []
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline and len(self.statuses) < 20_000:
            try:
                url = f"http://127.0.0.1:{LB_PORT}/api/customers?limit=1"
                with urllib.request.urlopen(url, timeout=10) as response:
                    response.read()
                    self.statuses.append(response.status)
            except urllib.error.HTTPError as exc:
                self.statuses.append(exc.code)
                if exc.code == 503:
                    self.bodies_503.append(exc.read().decode(errors="replace"))
            except OSError as exc:
                self.errors.append(str(exc))
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def db(lab_hosts):
    """The lab serving a release (whichever the modules before left) with the backup jobs
    installed by backup.yml (which also takes a backup)."""
    ensure_release(lab_hosts, or_any=True)
    host = next(h for h in lab_hosts.values() if h.group == "erp_db")
    proc = playbook("backup.yml", "-l", "lab")
    assert proc.returncode == 0, proc.output[-4000:]
    assert "Apply the erp_backup role" in proc.stdout
    return host


def test_backup_playbook_installs_the_jobs_and_takes_a_backup(db):
    cron = db.ssh("cat /etc/cron.d/erp-backup").stdout
    for job in ("erp-backup", "erp-backup-verify", "erp-backup-base", "erp-backup-wal"):
        assert f"/usr/local/sbin/{job} " in cron
    assert db.ssh("sudo docker inspect -f '{{.State.Running}}' erp-db-wal").stdout.strip() == "true"
    # PITR works from the start: a first base backup was taken with the role.
    assert db.ssh("sudo ls /var/backups/erp/base").stdout.split()
    values = metrics(db, "erp_backup")
    assert values["erp_backup_last_success"] == 1
    assert values["erp_backup_dump_bytes"] > 1024


def test_backup_verify_playbook_proves_the_backup_and_writes_its_metrics(db):
    started = time.time()
    proc = playbook("backup_verify.yml", "-l", "lab")
    assert proc.returncode == 0, proc.output[-4000:]
    assert "row counts match the manifest, amcheck passed" in said(proc)
    values = metrics(db, "erp_backup_verify")
    assert values["erp_backup_verify_last_success"] == 1
    assert values["erp_backup_verify_last_success_timestamp_seconds"] >= started - 1
    assert values["erp_backup_verify_restore_duration_seconds"] > 0
    assert db.ssh("sudo docker ps -aq --filter label=erp.backup.verify").stdout.strip() == ""


def test_restore_brings_back_identical_data_behind_a_503_and_serves_the_erp_again(db):
    kept = write_records("kept")
    before = table_checksums(db)
    # Whatever release earlier lab tests left behind: 1.1.0's migration stays after a rollback.
    schema = psql(db, "SELECT max(id) FROM schema_migrations")
    backup = playbook("backup.yml", "-l", "lab", "-e", "backup_converge=false")
    assert backup.returncode == 0, backup.output[-4000:]
    [backup_dir] = re.findall(r"backup (/var/backups/erp/dumps/\d{8}T\d{6}Z)\b", said(backup))

    # The bad change: new records, an update and a delete after the backup.
    lost = write_records("lost", customers=2)
    psql(db, f"UPDATE customers SET name = 'renamed' WHERE id = {kept[0]}; "  # noqa: S608 (integer ids)
             f"DELETE FROM invoice_lines WHERE invoice_id IN (SELECT id FROM invoices WHERE customer_id = {kept[1]})")
    assert table_checksums(db) != before

    with Probe() as probe:
        time.sleep(1)
        restore = playbook("restore.yml", "-l", "lab")
        time.sleep(1)
    assert restore.returncode == 0, restore.output[-4000:]
    assert table_checksums(db) == before

    # What was restored and how long it took, in the playbook's report.
    report = said(restore)
    restored = rf"restored erp from {backup_dir} \(created \d{{8}}T\d{{6}}Z, schema {schema}\) in \d+s"
    assert re.search(restored, report), report[-3000:]
    assert re.search(r"in maintenance \(HAProxy answering 503\) for [\d.]+ s", report)
    # Users saw the ERP, then a 503 while it was in maintenance, then the ERP: never a refused
    # or reset connection.
    assert probe.errors == []
    assert set(probe.statuses) == {200, 503}, sorted(set(probe.statuses))
    assert probe.statuses[-1] == 200
    assert "503" in probe.bodies_503[0]
    # Served again, with the data of the backup, and writable.
    names = customer_names()
    assert {f"kept customer {n}" for n in range(3)} <= names
    assert not any(name.startswith("lost customer") for name in names)
    assert "renamed" not in names
    assert api("POST", "/api/customers", {"name": "after the restore"})[0] == 201
    assert lost  # written, then gone with the restore


def test_point_in_time_restore_returns_the_data_as_it_was_at_that_time(db):
    write_records("pitr-a", customers=1)
    time.sleep(1.5)
    # Whole seconds: the target is after A's commit and at least a second before B's.
    target = datetime.fromtimestamp(int(time.time()), UTC).strftime("%Y-%m-%d %H:%M:%S+00")
    time.sleep(1.5)
    write_records("pitr-b", customers=1)
    assert {"pitr-a customer 0", "pitr-b customer 0"} <= customer_names()

    proc = playbook("restore.yml", "-l", "lab", "-e", f"restore_target_time='{target}'")
    assert proc.returncode == 0, proc.output[-4000:]
    report = said(proc)
    assert f"restored from: point in time {target}" in report
    assert re.search(r"restored erp from /var/backups/erp/dumps/\d{8}T\d{6}Z-pitr-\S+ .* in \d+s", report), \
        report[-3000:]
    names = customer_names()
    assert "pitr-a customer 0" in names
    assert "pitr-b customer 0" not in names


def test_a_restore_is_refused_while_a_deploy_holds_the_lock_and_takes_it_itself(db, lab_hosts):
    """No database swap under a deploy's migrations: restore.yml refuses while another run holds
    the deploy lock, before its preflight; a restore holds the lock while it runs and
    releases it at the end."""
    lb = next(h for h in lab_hosts.values() if h.group == "erp_lb")
    dumps = db.ssh("sudo ls /var/backups/erp/dumps").stdout.split()
    held = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=acquire", "-e", "erp_deploy_message='release'")
    assert held.returncode == 0, held.output[-3000:]
    try:
        refused = playbook("restore.yml", "-l", "lab")
    finally:
        released = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=release")
    assert refused.returncode != 0
    said_refused = " ".join(refused.output.split())
    assert "Deploy lock of lab held by" in said_refused and "is none: it is held until released" in said_refused, \
        said_refused[-3000:]
    assert "Traceback" not in refused.output
    # Refused before the preflight: a point-in-time recovery is never spent on a run that cannot go on.
    assert "PLAY [Preflight" not in refused.output
    assert db.ssh("sudo ls /var/backups/erp/dumps").stdout.split() == dumps
    assert released.returncode == 0
    # While a restore runs the lock is its own, released at the end. A backup dated in the
    # future (a host with a wrong clock wrote it) is named and never taken for the newest.
    newest = db.ssh("sudo /usr/bin/python3 /usr/local/lib/erp-backup/erp_backup_tool.py latest "
                    "--dir /var/backups/erp/dumps").stdout.strip()
    future = "/var/backups/erp/dumps/20991231T000000Z"
    db.ssh(f"sudo cp -a {newest} {future}")
    # At -vvv: not one secret in the output, whatever the verbosity.
    runner = threading.Thread(target=lambda: setattr(runner, "result", playbook("restore.yml", "-l", "lab",
                                                                                   "-vvv")))
    runner.start()
    seen = set()
    while runner.is_alive():
        found = lb.ssh("sudo cat /var/lib/erp/deploy.lock 2>/dev/null", check=False).stdout.strip()
        if found:
            seen.add(json.loads(found)["operation"])
        time.sleep(0.5)
    runner.join()
    db.ssh(f"sudo rm -rf {future}")
    assert runner.result.returncode == 0, runner.result.output[-4000:]
    assert secrets_in(runner.result.output) == []
    assert seen == {"restore"}
    report = said(runner.result)
    assert f"{future}: dated in the future, ignored" in report, report[-3000:]
    assert re.search(rf"{newest}: intact \(\d+ files match the manifest\), taken \d{{8}}T\d{{6}}Z, \d+ h \d+ min ago",
                     report), report[-3000:]
    assert f"restored from: {newest}" in report
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


def test_a_restore_that_cannot_reach_the_load_balancer_s_runtime_api_changes_nothing(db, lab_hosts):
    """HAProxy serves but its runtime API socket is gone: the ERP could not be put in
    maintenance, so the restore stops before anything changes (no lock, no safety dump), users
    are served all along, and the run names the load balancer and what it answered."""
    lb = next(h for h in lab_hosts.values() if h.group == "erp_lb")
    before = table_checksums(db)
    socket, hidden = "/run/erp-lb/admin.sock", "/run/erp-lb/admin.sock.away"
    lb.ssh(f"sudo mv {socket} {hidden}")
    try:
        with Probe() as probe:
            restore = playbook("restore.yml", "-l", "lab")
    finally:
        lb.ssh(f"sudo mv {hidden} {socket}")
    report = said(restore)
    assert restore.returncode != 0
    assert "lb1: HAProxy's runtime API (/run/erp-lb/admin.sock) did not answer the status read: " in report, \
        report[-3000:]
    # Refused before the lock and the safety dump.
    assert "PLAY [Safety dump" not in restore.output
    assert "Traceback" not in restore.output
    assert probe.errors == [] and set(probe.statuses) == {200}, (probe.errors[:3], sorted(set(probe.statuses)))
    assert table_checksums(db) == before
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0
