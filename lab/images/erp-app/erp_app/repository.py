"""Business data access: customers and invoices.

Every statement names its columns, so a release never depends on columns a
newer schema added (that is what lets 1.0.0 run on the 1.1.0 schema) and only
touches the columns its own migrations created.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from psycopg2.sql import SQL, Composed, Identifier

from erp_app.versions import at_least

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Features:
    """What the running release knows about the schema."""

    customer_email: bool
    invoice_currency: bool

    @classmethod
    def for_release(cls, version: str) -> "Features":
        # Both arrive with migration 0002, introduced in 1.1.0.
        newer = at_least(version, "1.1.0")
        return cls(customer_email=newer, invoice_currency=newer)


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal


class UnknownCustomer(Exception):
    """An invoice names a customer that does not exist."""


def list_customers(cur, features: Features, limit: int, offset: int) -> list[dict]:
    query = SQL("SELECT {} FROM customers ORDER BY id LIMIT %s OFFSET %s")
    cur.execute(query.format(_customer_columns(features)), (limit, offset))
    return [_customer(row, features) for row in cur.fetchall()]


def get_customer(cur, features: Features, customer_id: int) -> dict | None:
    query = SQL("SELECT {} FROM customers WHERE id = %s")
    cur.execute(query.format(_customer_columns(features)), (customer_id,))
    row = cur.fetchone()
    return _customer(row, features) if row else None


def create_customer(cur, features: Features, name: str, email: str | None = None) -> dict:
    if features.customer_email:
        query = SQL("INSERT INTO customers (name, email) VALUES (%s, %s) RETURNING {}")
        cur.execute(query.format(_customer_columns(features)), (name, email))
    else:
        query = SQL("INSERT INTO customers (name) VALUES (%s) RETURNING {}")
        cur.execute(query.format(_customer_columns(features)), (name,))
    return _customer(cur.fetchone(), features)


def list_invoices(cur, features: Features, limit: int, offset: int, customer_id: int | None = None) -> list[dict]:
    query = SQL(
        "SELECT {} FROM invoices WHERE %(customer)s::bigint IS NULL OR customer_id = %(customer)s"
        " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s"
    )
    cur.execute(query.format(_invoice_columns(features)), {"customer": customer_id, "limit": limit, "offset": offset})
    return _with_lines(cur, features, cur.fetchall())


def get_invoice(cur, features: Features, invoice_id: int) -> dict | None:
    query = SQL("SELECT {} FROM invoices WHERE id = %s")
    cur.execute(query.format(_invoice_columns(features)), (invoice_id,))
    rows = cur.fetchall()
    return _with_lines(cur, features, rows)[0] if rows else None


def create_invoice(
    cur,
    features: Features,
    customer_id: int,
    lines: Sequence[Line],
    currency: str | None = None,
) -> dict:
    # Lock the customer row so it cannot vanish between this check and the insert.
    cur.execute("SELECT 1 FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
    if cur.fetchone() is None:
        raise UnknownCustomer(customer_id)
    if features.invoice_currency and currency:
        cur.execute(
            "INSERT INTO invoices (customer_id, currency) VALUES (%s, %s) RETURNING id",
            (customer_id, currency),
        )
    else:
        cur.execute(
            "INSERT INTO invoices (customer_id) VALUES (%s) RETURNING id",
            (customer_id,),
        )
    invoice_id = cur.fetchone()[0]
    cur.executemany(
        "INSERT INTO invoice_lines (invoice_id, position, description, quantity, unit_price)"
        " VALUES (%s, %s, %s, %s, %s)",
        [
            (invoice_id, position, line.description, line.quantity, line.unit_price)
            for position, line in enumerate(lines, 1)
        ],
    )
    invoice = get_invoice(cur, features, invoice_id)
    assert invoice is not None  # inserted in this same transaction
    return invoice


def _customer_columns(features: Features) -> Composed:
    return _columns("id", "name", "created_at", *(["email"] if features.customer_email else []))


def _customer(row: tuple, features: Features) -> dict:
    customer = {"id": row[0], "name": row[1], "created_at": row[2].isoformat()}
    if features.customer_email:
        customer["email"] = row[3]
    return customer


def _invoice_columns(features: Features) -> Composed:
    names = ["id", "customer_id", "issued_on", "created_at"]
    return _columns(*names, *(["currency"] if features.invoice_currency else []))


def _columns(*names: str) -> Composed:
    return SQL(", ").join(Identifier(name) for name in names)


def _with_lines(cur, features: Features, rows: list[tuple]) -> list[dict]:
    """Attach lines and totals to invoice rows with one extra query."""
    if not rows:
        return []
    cur.execute(
        "SELECT invoice_id, description, quantity, unit_price FROM invoice_lines"
        " WHERE invoice_id = ANY(%s) ORDER BY invoice_id, position",
        ([row[0] for row in rows],),
    )
    lines: dict[int, list[dict]] = {}
    for invoice_id, description, quantity, unit_price in cur.fetchall():
        amount = (quantity * unit_price).quantize(CENT)
        lines.setdefault(invoice_id, []).append(
            {
                "description": description,
                "quantity": _plain(quantity),
                "unit_price": str(unit_price),
                "amount": str(amount),
            }
        )
    invoices = []
    for row in rows:
        invoice_lines = lines.get(row[0], [])
        invoice = {
            "id": row[0],
            "customer_id": row[1],
            "issued_on": row[2].isoformat(),
            "created_at": row[3].isoformat(),
            "lines": invoice_lines,
            "total": str(sum((Decimal(line["amount"]) for line in invoice_lines), Decimal("0.00"))),
        }
        if features.invoice_currency:
            invoice["currency"] = row[4]
        invoices.append(invoice)
    return invoices


def _plain(value: Decimal) -> str:
    """Decimal without trailing zeros or exponent: 2.000 -> '2', 1.500 -> '1.5'."""
    return format(value.normalize(), "f")
