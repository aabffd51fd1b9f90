import re

import pytest
from erp_app.migrations import (
    MIGRATIONS,
    Migration,
    check_order,
    pending,
    required_by,
    schema_version,
    target_version,
)


def ids(migrations):
    return [m.id for m in migrations]


def test_shipped_migrations_are_in_order():
    check_order(MIGRATIONS)


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        ("0.9.0", []),
        ("1.0.0", ["0001"]),
        ("1.0.7", ["0001"]),
        ("1.1.0", ["0001", "0002"]),
        ("1.1.0-fault-crash", ["0001", "0002"]),
        ("2.0.0", ["0001", "0002"]),
    ],
)
def test_a_release_needs_migrations_introduced_up_to_it(release, expected):
    assert ids(required_by(release)) == expected


def test_required_by_sorts_by_id_whatever_the_declaration_order():
    shuffled = [MIGRATIONS[1], MIGRATIONS[0]]
    assert ids(required_by("1.1.0", shuffled)) == ["0001", "0002"]


def test_pending_skips_applied_and_ignores_newer_schema():
    assert ids(pending("1.1.0", [])) == ["0001", "0002"]
    assert ids(pending("1.1.0", ["0001"])) == ["0002"]
    assert ids(pending("1.1.0", ["0001", "0002"])) == []
    # Rollback: 1.0.0 on the 1.1.0 schema has nothing to do.
    assert ids(pending("1.0.0", ["0001", "0002"])) == []


def test_schema_and_target_versions():
    assert schema_version([]) is None
    assert schema_version(["0001", "0002"]) == "0002"
    assert schema_version(["0002", "0001", "0003"]) == "0003"
    assert target_version("1.0.0") == "0001"
    assert target_version("1.1.0") == "0002"
    assert target_version("0.1.0") is None


def test_check_order_rejects_non_increasing_ids():
    a = Migration("0002", "a", "1.0.0", "")
    b = Migration("0002", "b", "1.1.0", "")
    with pytest.raises(ValueError, match="does not follow"):
        check_order([a, b])


def test_check_order_rejects_a_later_migration_from_an_earlier_release():
    a = Migration("0001", "a", "1.1.0", "")
    b = Migration("0002", "b", "1.0.0", "")
    with pytest.raises(ValueError, match="older than"):
        check_order([a, b])


def test_check_order_rejects_unparsable_release():
    with pytest.raises(ValueError, match="not a release version"):
        check_order([Migration("0001", "a", "one", "")])


@pytest.mark.parametrize("migration", MIGRATIONS[1:], ids=lambda m: m.id)
def test_later_migrations_only_expand(migration):
    """Contract: the previous release must keep working on the new schema."""
    sql = migration.sql.upper()
    assert not re.search(r"\b(DROP|RENAME|TRUNCATE)\b", sql)
    assert not re.search(r"ALTER\s+COLUMN", sql)  # no type changes, no SET NOT NULL
    for column in re.findall(r"ADD COLUMN[^;]*", sql):
        assert "NOT NULL" not in column or "DEFAULT" in column, column
