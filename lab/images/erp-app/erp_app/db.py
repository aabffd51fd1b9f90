"""PostgreSQL access: a small bounded connection pool and the health probe."""

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import psycopg2

from erp_app.health import DatabaseProbe

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 2
PROBE_TIMEOUT_MS = 2000
QUERY_TIMEOUT_MS = 5000


class DatabaseUnavailable(Exception):
    """The database cannot be reached (or no connection became free in time)."""


def connect(url: str, **options):
    """One connection with the app's timeouts; the URL's password is never logged."""
    return psycopg2.connect(
        url,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        application_name="erp-app",
        **options,
    )


def first_line(exc: BaseException) -> str:
    """libpq errors span lines; health output and CLI errors want one."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Database:
    """A small thread-safe pool; ``run`` executes one unit of work in one transaction.

    Hand-rolled because psycopg2's pools close every connection above
    ``minconn`` when it is returned, and a non-zero ``minconn`` connects in the
    constructor, which would fail while the database is still starting.
    """

    def __init__(self, url: str, max_connections: int = 10) -> None:
        self._url = url
        self._idle: list = []  # LIFO: the warmest connection goes out first
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)

    def run(self, work: Callable[..., T], *, timeout_ms: int = QUERY_TIMEOUT_MS) -> T:
        """Call ``work(cursor)`` in a transaction and commit.

        A pooled connection that broke while idle (database restarted) is
        discarded and the work retried once on a fresh one; errors of the work
        itself (bad data, timeouts) are not retried.
        """
        if not self._slots.acquire(timeout=CONNECT_TIMEOUT_SECONDS):
            raise DatabaseUnavailable("no database connection free")
        try:
            while True:
                conn, reused = self._checkout()
                try:
                    with conn, conn.cursor() as cur:  # commits, or rolls back on error
                        cur.execute("SET LOCAL statement_timeout = %s", (timeout_ms,))
                        result = work(cur)
                except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                    self._checkin(conn)
                    if not conn.closed:
                        raise  # the work failed, the connection is fine
                    if not reused:
                        raise DatabaseUnavailable(first_line(exc)) from exc
                    continue  # stale pooled connection: once more on a fresh one
                except BaseException:
                    self._checkin(conn)
                    raise
                self._checkin(conn)
                return result
        finally:
            self._slots.release()

    def _checkout(self):
        """(connection, reused): an idle pooled one, else a new one."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return connect(self._url), False
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable(first_line(exc)) from exc

    def _checkin(self, conn) -> None:
        if conn.closed:
            return
        with self._lock:
            self._idle.append(conn)

    def probe(self) -> DatabaseProbe:
        """SELECT 1 round trip, read-only state and applied migrations, within 2 s."""
        now = datetime.now(UTC).isoformat(timespec="seconds")

        def work(cur):
            started = time.perf_counter()
            cur.execute("SELECT 1")
            cur.fetchone()
            latency_ms = (time.perf_counter() - started) * 1000
            cur.execute("SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::bool")
            read_only = cur.fetchone()[0]
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            applied: tuple[str, ...] = ()
            if cur.fetchone()[0]:
                cur.execute("SELECT id FROM schema_migrations ORDER BY id")
                applied = tuple(row[0] for row in cur.fetchall())
            return latency_ms, read_only, applied

        try:
            latency_ms, read_only, applied = self.run(work, timeout_ms=PROBE_TIMEOUT_MS)
        except (DatabaseUnavailable, psycopg2.Error) as exc:
            return DatabaseProbe(time=now, reachable=False, error=first_line(exc))
        return DatabaseProbe(
            time=now,
            reachable=True,
            latency_ms=latency_ms,
            read_only=read_only,
            applied=applied,
        )

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
