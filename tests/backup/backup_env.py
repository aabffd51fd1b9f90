"""Helpers of tests/backup: run the erp_backup role's scripts, exactly as installed (roles/erp_backup/files), against
real PostgreSQL containers of the machine's Docker engine. Everything made here is named
`bk-<run id>-*` and removed at the end.

Needs: a running Docker engine with the local images postgres:15 and erp-app:1.1.0, root
(the disk-full test mounts a small tmpfs; it skips where mounting is not allowed)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "erp_backup" / "files"
RUN_ID = f"bk-{uuid.uuid4().hex[:6]}"
PG_IMAGE = "postgres:15"
APP_IMAGE = "erp-app:1.1.0"
DB_PASSWORD = "erp-test-password"  # noqa: S105 (a throwaway test container's password)


def docker(*args: str, check: bool = True, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=timeout, **kwargs)


def psql(container: str, sql: str, database: str = "erp") -> str:
    proc = docker("exec", "-i", container, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "postgres",
                  "-d", database, input=sql, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"psql in {container} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def wait_ready(container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # TCP answers only once the real server runs (the image's init server is socket-only).
        if docker("exec", container, "pg_isready", "-q", "-h", "127.0.0.1", check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{container} not ready: {docker('logs', container, check=False).stderr[-2000:]}")


def start_database(name: str, network: str) -> str:
    """A database container like erp-db: superuser postgres, database erp owned by role erp,
    migrated by the ERP app's own `migrate` command."""
    docker("rm", "-f", "-v", name, check=False)
    docker("run", "-d", "--name", name, "--network", network, "-e", f"POSTGRES_PASSWORD={DB_PASSWORD}",
           "-e", "POSTGRES_DB=erp", PG_IMAGE)
    wait_ready(name)
    psql(name, f"CREATE ROLE erp LOGIN PASSWORD '{DB_PASSWORD}'; ALTER DATABASE erp OWNER TO erp;"
               "ALTER SCHEMA public OWNER TO erp;")
    docker("run", "--rm", "--network", network, "-e", f"ERP_DATABASE_URL=postgresql://erp:{DB_PASSWORD}@{name}:5432/erp",
           APP_IMAGE, "migrate")
    return name


def seed(container: str, customers: int = 200, invoices: int = 300) -> None:
    customers, invoices = int(customers), int(invoices)
    psql(container, f"""
        INSERT INTO customers (name, email)
          SELECT 'customer ' || g, 'c' || g || '@example.test' FROM generate_series(1, {customers}) g;
        INSERT INTO invoices (customer_id, issued_on, currency)
          SELECT 1 + (g % {customers}), date '2026-01-01' + g % 300, CASE WHEN g % 3 = 0 THEN 'USD' ELSE 'EUR' END
          FROM generate_series(1, {invoices}) g;
        INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_price)
          SELECT id, p, 'line ' || p || ' of invoice ' || id, 1 + id % 5, (id % 97) + 0.5
          FROM invoices, generate_series(1, 2) p WHERE p = 1 OR id % 2 = 0;
    """)  # noqa: S608 (integers only)


def table_checksums(container: str, database: str = "erp") -> dict[str, str]:
    tables = psql(container, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database)
    sums = {}
    for table in tables.split():
        # Names come from pg_tables of our own test database.
        query = (f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "  # noqa: S608
                 f"FROM public.{table} t")
        sums[table] = psql(container, query, database)
    return sums


@dataclass
class Jobs:
    """The scripts of the role with an environment file of their own."""

    root: Path
    container: str

    @property
    def env_file(self) -> Path:
        return self.root / "backup.env"

    @property
    def dumps(self) -> Path:
        return self.root / "backups" / "dumps"

    @property
    def metrics_dir(self) -> Path:
        return self.root / "metrics"

    @property
    def lock_file(self) -> Path:
        return self.root / "erp-backup.lock"

    def configure(self, **overrides: object) -> None:
        settings = {
            "ERP_BACKUP_DOCKER": shutil.which("docker"),
            "ERP_BACKUP_CONTAINER": self.container,
            "ERP_BACKUP_DATABASE": "erp",
            "ERP_BACKUP_DB_USER": "postgres",
            "ERP_BACKUP_DIR": self.root / "backups",
            "ERP_BACKUP_METRICS_DIR": self.metrics_dir,
            "ERP_BACKUP_LIB_DIR": FILES,
            "ERP_BACKUP_PYTHON": "/usr/bin/python3",
            "ERP_BACKUP_TOOL": FILES / "erp_backup_tool.py",
            "ERP_BACKUP_LOCK_FILE": self.lock_file,
            "ERP_BACKUP_LOCK_WAIT": 30,
            "ERP_BACKUP_MIN_BYTES": 1024,
            "ERP_BACKUP_KEEP_DAILY": 7,
            "ERP_BACKUP_KEEP_WEEKLY": 4,
            "ERP_BACKUP_KEEP_MONTHLY": 6,
            "ERP_BACKUP_KEEP_LABELLED": 5,
            "ERP_BACKUP_VERIFY_CONTAINER_PREFIX": f"{RUN_ID}-verify",
            "ERP_BACKUP_VERIFY_TIMEOUT": 120,
            "ERP_BACKUP_WAL_CONTAINER": f"{self.container}-wal",
            "ERP_BACKUP_WAL_SLOT": "erp_backup_wal",
            "ERP_BACKUP_KEEP_BASE": 2,
            **overrides,
        }
        self.env_file.write_text("".join(f"{key}='{value}'\n" for key, value in settings.items()))

    def command(self, script: str, *args: str) -> list[str]:
        return [str(FILES / script), *args]

    def environ(self) -> dict[str, str]:
        # cron's environment: nothing but what the cron file sets.
        return {"ERP_BACKUP_ENV_FILE": str(self.env_file), "PATH": "/usr/bin:/bin", "HOME": "/root"}

    def run(self, script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(script, *args), capture_output=True, text=True, env=self.environ(),
                              timeout=timeout, check=False)

    def start(self, argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.environ())

    def backups(self) -> list[Path]:
        return sorted(p for p in self.dumps.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if self.dumps.exists() else []

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dumps.iterdir() if p.name.startswith(".")) if self.dumps.exists() else []

    def metrics(self, name: str = "erp_backup") -> dict[str, float]:
        values = {}
        path = self.metrics_dir / f"{name}.prom"
        for line in path.read_text().splitlines():
            if line and not line.startswith("#"):
                key, value = line.split(" ")
                values[key] = float(value)
        return values

    @staticmethod
    def manifest(backup: Path) -> dict:
        return json.loads((backup / "manifest.json").read_text())


@contextlib.contextmanager
def table_locked(container: str, table: str = "customers"):
    """A session holding ACCESS EXCLUSIVE on a table: pg_dump waits for it, so a backup
    lasts exactly as long as a test needs. Ended with pg_terminate_backend on exit."""
    holder = subprocess.Popen(
        ["docker", "exec", "-i", "-e", "PGAPPNAME=bk-lock-holder", container, "psql", "-X", "-q", "-U", "postgres",
         "-d", "erp"],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )
    holder.stdin.write(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300); COMMIT;\n")
    holder.stdin.flush()
    try:
        granted = ("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.granted"
                   " AND a.application_name = 'bk-lock-holder' AND l.mode = 'AccessExclusiveLock'")
        wait_for(lambda: _count(container, granted) >= 1, what="the table lock")
        yield
    finally:
        docker("exec", container, "psql", "-X", "-q", "-U", "postgres", "-c",
               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bk-lock-holder'",
               check=False)
        holder.stdin.close()
        holder.kill()
        holder.wait(timeout=30)


def _count(container: str, sql: str) -> int:
    out = docker("exec", container, "psql", "-X", "-A", "-t", "-U", "postgres", "-c", sql, check=False).stdout.strip()
    return int(out) if out.isdigit() else -1


def wait_for(predicate, timeout: float = 30, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}")


def pg_dump_is_waiting(container: str) -> bool:
    return _count(container, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' "
                             "AND wait_event_type = 'Lock'") == 1
