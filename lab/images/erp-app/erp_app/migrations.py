"""Schema migrations and the rules for which ones a release needs.

Migrations are expand-only: each one keeps the previous release working on the
new schema (new columns are nullable or have defaults, nothing is renamed or
dropped while a release still uses it). That is what makes a rollback safe
without down-migrations: release N runs on the schema of release N+1.

Each migration names the release that introduced it; an image applies and
requires only the migrations introduced at or before its own release.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from erp_app.versions import at_least, release_key

# Table the runner keeps its bookkeeping in; created by the runner itself.
BOOKKEEPING_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    introduced_in text NOT NULL,
    applied_by    text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    id: str  # zero-padded, so text order is apply order
    name: str
    introduced_in: str  # release that first ships (and needs) this migration
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        id="0001",
        name="customers, invoices and invoice lines",
        introduced_in="1.0.0",
        sql="""
CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (length(btrim(name)) > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    issued_on   date NOT NULL DEFAULT current_date,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_customer_id_idx ON invoices (customer_id);
CREATE TABLE invoice_lines (
    invoice_id  bigint NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position    integer NOT NULL CHECK (position > 0),
    description text NOT NULL,
    quantity    numeric(12, 3) NOT NULL CHECK (quantity > 0),
    unit_price  numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    PRIMARY KEY (invoice_id, position)
);
""",
    ),
    Migration(
        id="0002",
        name="customer email and invoice currency",
        introduced_in="1.1.0",
        # Expand step: a nullable column and a column with a constant default are
        # metadata-only changes (no table rewrite), and 1.0.0 never names either
        # column, so its INSERTs keep working and get currency 'EUR'.
        sql="""
ALTER TABLE customers ADD COLUMN email text;
ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
""",
    ),
)


def check_order(migrations: Iterable[Migration] = MIGRATIONS) -> None:
    """Raise ValueError unless ids strictly increase and releases never go back.

    A later migration introduced by an earlier release would let that release
    skip a migration it runs after, so both orders must agree.
    """
    previous: Migration | None = None
    for migration in migrations:
        release_key(migration.introduced_in)  # must parse
        if previous is not None:
            if migration.id <= previous.id:
                raise ValueError(f"migration {migration.id} does not follow {previous.id}")
            if release_key(migration.introduced_in) < release_key(previous.introduced_in):
                raise ValueError(
                    f"migration {migration.id} ({migration.introduced_in}) is older than "
                    f"{previous.id} ({previous.introduced_in})"
                )
        previous = migration


def required_by(release: str, migrations: Iterable[Migration] = MIGRATIONS) -> list[Migration]:
    """Migrations an image of ``release`` applies and needs, in apply order."""
    return sorted(
        (m for m in migrations if at_least(release, m.introduced_in)),
        key=lambda m: m.id,
    )


def pending(release: str, applied: Iterable[str], migrations: Iterable[Migration] = MIGRATIONS) -> list[Migration]:
    """Migrations ``release`` needs that are not applied yet, in apply order."""
    done = set(applied)
    return [m for m in required_by(release, migrations) if m.id not in done]


def schema_version(applied: Iterable[str]) -> str | None:
    """The ERP schema version: the highest applied migration id (None if none)."""
    return max(applied, default=None)


def target_version(release: str, migrations: Iterable[Migration] = MIGRATIONS) -> str | None:
    """Schema version a fully migrated database has for ``release``."""
    needed = required_by(release, migrations)
    return needed[-1].id if needed else None
