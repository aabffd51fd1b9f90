# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import pytest
from ansible_collections.erp.ops.plugins.module_utils._batches import batch_sizes, plan_batches

HOSTS = [f"app{number}" for number in range(1, 11)]


@pytest.mark.parametrize("total, spec, sizes", [
    (10, [1, "50%", "100%"], [1, 5, 4]),
    (5, [1, "50%", "100%"], [1, 3, 1]),
    (3, [1, "50%", "100%"], [1, 2]),
    (1, [1, "50%", "100%"], [1]),
    (2, [1, "50%", "100%"], [1, 1]),
    # the last entry repeats
    (10, [3], [3, 3, 3, 1]),
    (7, [1, 2], [1, 2, 2, 2]),
    (10, ["30%"], [3, 3, 3, 1]),
    # percentages round up and give at least one host
    (3, ["50%"], [2, 1]),
    (10, ["1%"], [1] * 10),
    (8, ["12.5%"], [1] * 8),
    (9, ["12.5%"], [2] * 4 + [1]),
    (4, ["100%"], [4]),
    # a batch never takes more hosts than remain
    (4, [10], [4]),
    (4, [1, 10, 1], [1, 3]),
    # scalar spec, digit strings and spaces as Jinja may produce them
    (4, 2, [2, 2]),
    (4, "50%", [2, 2]),
    (4, ["1", " 50% "], [1, 2, 1]),
    ((5), (1, "100%"), [1, 4]),
])
def test_batch_sizes(total, spec, sizes):
    assert batch_sizes(total, spec) == sizes


@pytest.mark.parametrize("spec, error, message", [
    ([], ValueError, "batch spec must not be empty"),
    ([0], ValueError, r"batch spec item 0 \(position 1\) must be a positive host count"),
    ([1, -2], ValueError, r"batch spec item -2 \(position 2\) must be a positive host count"),
    (["0"], ValueError, r"batch spec item '0' \(position 1\) must be a positive host count"),
    (["0%"], ValueError, r"item '0%' \(position 1\) must be a percentage in \(0, 100\]"),
    (["-10%"], ValueError, r"item '-10%' \(position 1\) must be a percentage in \(0, 100\]"),
    ([1, "150%"], ValueError, r"item '150%' \(position 2\) must be a percentage in \(0, 100\]"),
    (["abc%"], ValueError, r"item 'abc%' \(position 1\) is not a valid percentage"),
    (["%"], ValueError, r"item '%' \(position 1\) is not a valid percentage"),
    ([1, "half"], ValueError, r"item 'half' \(position 2\) must be a positive integer or a percentage"),
    (["2.5"], ValueError, r"item '2.5' \(position 1\) must be a positive integer or a percentage"),
    (["\u00b2"], ValueError, r"item .\u00b2. \(position 1\) must be a positive integer or a percentage"),
    ([""], ValueError, r"item '' \(position 1\) must be a positive integer or a percentage"),
    # entries after the hosts run out are still checked
    ([100, "nope"], ValueError, r"item 'nope' \(position 2\)"),
    ([True], TypeError, r"item True \(position 1\) .* not a boolean"),
    ([2.5], TypeError, r"item 2.5 \(position 1\) must be a positive integer or a percentage"),
    ([None], TypeError, r"item None \(position 1\)"),
    ({"a": 1}, TypeError, "batch spec must be a list"),
    (None, TypeError, "batch spec must be a list"),
])
def test_bad_specs_name_the_item(spec, error, message):
    with pytest.raises(error, match=message):
        plan_batches(HOSTS, spec)


@pytest.mark.parametrize("total", [0, -1, True, "3"])
def test_batch_sizes_rejects_bad_totals(total):
    with pytest.raises(ValueError, match="number of hosts"):
        batch_sizes(total, [1])


def test_plan_batches_keeps_order_and_covers_every_host_once():
    batches = plan_batches(HOSTS, [1, "50%", "100%"])
    assert batches == [["app1"], ["app2", "app3", "app4", "app5", "app6"], ["app7", "app8", "app9", "app10"]]
    assert [host for batch in batches for host in batch] == HOSTS


def test_plan_batches_single_host():
    assert plan_batches(["app1"], [1, "50%", "100%"]) == [["app1"]]


def test_plan_batches_returns_new_lists():
    hosts = ("a", "b")
    batches = plan_batches(hosts, [1])
    assert batches == [["a"], ["b"]]
    assert all(isinstance(batch, list) for batch in batches)


@pytest.mark.parametrize("hosts, error, message", [
    ([], ValueError, "hosts must not be empty"),
    (["app1", "app2", "app1"], ValueError, "host 'app1' appears more than once"),
    (["app1", ""], ValueError, r"host '' \(position 2\) must be a non-empty string"),
    (["app1", None], ValueError, r"host None \(position 2\) must be a non-empty string"),
    ("app1", TypeError, "hosts must be a list"),
    (None, TypeError, "hosts must be a list"),
])
def test_plan_batches_rejects_bad_hosts(hosts, error, message):
    with pytest.raises(error, match=message):
        plan_batches(hosts, [1])
