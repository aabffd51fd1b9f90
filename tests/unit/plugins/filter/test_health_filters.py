# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.filter.health import FilterModule

FILTERS = FilterModule().filters()


def test_filter_names():
    assert sorted(FILTERS) == ["rollout_batches"]


def test_rollout_batches():
    hosts = ["app1", "app2", "app3", "app4", "app5"]
    assert FILTERS["rollout_batches"](hosts, [1, "50%", "100%"]) == [["app1"], ["app2", "app3", "app4"], ["app5"]]


@pytest.mark.parametrize("name, args, message", [
    ("rollout_batches", ([], [1]), "rollout_batches: hosts must not be empty"),
    ("rollout_batches", (["a", "a"], [1]), "rollout_batches: host 'a' appears more than once"),
    ("rollout_batches", (["a"], [1, "0%"]), "rollout_batches: batch spec item '0%' (position 2)"),
    ("rollout_batches", (["a"], [1.5]), "rollout_batches: batch spec item 1.5 (position 1)"),
    ("rollout_batches", (["a"], []), "rollout_batches: batch spec must not be empty"),
])
def test_bad_input_raises_ansible_filter_error(name, args, message):
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](*args)
    assert str(caught.value).startswith(message)
