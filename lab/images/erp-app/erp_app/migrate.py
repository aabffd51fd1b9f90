"""The ``migrate`` command: apply this release's pending migrations, safely twice."""

from erp_app.db import connect
from erp_app.migrations import (
    BOOKKEEPING_DDL,
    Migration,
    check_order,
    pending,
    schema_version,
)

# One advisory lock for every erp-app release ("erp_mig" in ASCII): a second
# `migrate` started meanwhile waits, then finds nothing left to do.
LOCK_KEY = 0x6572705F6D6967
# How long a run waits for that lock (or a table lock) before giving up.
LOCK_TIMEOUT = "60s"


def migrate(database_url: str, release: str, hang=None) -> tuple[list[Migration], str | None]:
    """Apply what ``release`` needs in one transaction; return (applied, schema version).

    All pending migrations commit together or not at all (PostgreSQL DDL is
    transactional), so a failed run leaves the schema as it was. ``hang`` (lab fault
    injection) is called once the lock is held and never returns: a hung migration, whose
    transaction PostgreSQL rolls back when the process is stopped.
    """
    check_order()
    conn = connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if hang is not None:
                hang()
            cur.execute(BOOKKEEPING_DDL)
            cur.execute("SELECT id FROM schema_migrations")
            applied = {row[0] for row in cur.fetchall()}
            todo = pending(release, applied)
            for migration in todo:
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO schema_migrations (id, name, introduced_in, applied_by) VALUES (%s, %s, %s, %s)",
                    (migration.id, migration.name, migration.introduced_in, release),
                )
        return todo, schema_version(applied | {m.id for m in todo})
    finally:
        conn.close()
