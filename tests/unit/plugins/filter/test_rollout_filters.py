# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.filter.rollout import FilterModule

FILTERS = FilterModule().filters()

SHOW_STAT = """\
# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
erp_public,FRONTEND,,,3,5,4096,10,0,0,0,0,0,,,,,OPEN,
erp_app,lab-app1_blue,0,0,2,4,,9,0,0,,0,,0,0,0,0,UP,1
erp_app,lab-app1_green,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1
erp_app,lab-app2_blue,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1
erp_app,lab-app2_green,0,0,1,1,,1,0,0,,0,,0,0,0,0,DRAIN,0
erp_app,BACKEND,0,0,3,5,,10,0,0,0,0,,0,0,0,0,UP,2
"""


def test_filter_names():
    assert sorted(FILTERS) == ["haproxy_servers", "rollout_batch_error", "rollout_batch_sizes", "rollout_batches",
                               "rollout_host_outcome"]


@pytest.mark.parametrize(("facts", "line"), [
    ({"_erp_deploy_outcome": "reverted to 1.0.0"}, "app1: reverted to 1.0.0"),
    # A folded YAML outcome comes back on one line.
    ({"_erp_deploy_outcome": "NOT reverted (lb1 did not\n  answer): check it"},
     "app1: NOT reverted (lb1 did not answer): check it"),
    ({"_erp_deploy_state": {"current": {"version": "1.0.0"}}}, "app1: unchanged, on 1.0.0"),
    ({"_erp_deploy_state": {"current": None}}, "app1: unchanged"),
    ({}, "app1: not reached by this run"),
])
def test_rollout_host_outcome(facts, line):
    assert FILTERS["rollout_host_outcome"]({"inventory_hostname": "app1", **facts}) == line


def test_rollout_batches_and_their_sizes():
    hosts = ["app1", "app2", "app3", "app4", "app5"]
    assert FILTERS["rollout_batches"](hosts, [1, "50%", "100%"]) == [["app1"], ["app2", "app3", "app4"], ["app5"]]
    assert FILTERS["rollout_batch_sizes"](hosts, [1, "50%", "100%"]) == [1, 3, 1]
    # No spec: one canary, then half, then the rest.
    assert FILTERS["rollout_batch_sizes"](hosts, None) == [1, 3, 1]
    assert FILTERS["rollout_batch_sizes"](hosts[:3]) == [1, 2]


@pytest.mark.parametrize("name, args, message", [
    ("rollout_batches", ([], [1]), "rollout_batches: hosts must not be empty"),
    ("rollout_batches", (["a", "a"], [1]), "rollout_batches: host 'a' appears more than once"),
    ("rollout_batches", (["a"], [1, "0%"]), "rollout_batches: batch spec item '0%' (position 2)"),
    ("rollout_batches", (["a"], [1.5]), "rollout_batches: batch spec item 1.5 (position 1)"),
    ("rollout_batches", (["a"], []), "rollout_batches: batch spec must not be empty"),
    ("rollout_batch_sizes", (["a"], [0]), "erp_rollout_batches: batch spec item 0 (position 1)"),
])
def test_bad_input_raises_ansible_filter_error(name, args, message):
    with pytest.raises(AnsibleFilterError) as caught:
        FILTERS[name](*args)
    assert str(caught.value).startswith(message)


def test_rollout_batch_error_names_the_problem_without_raising():
    assert FILTERS["rollout_batch_error"](["a", "b"], [1, "50%"]) == ""
    assert FILTERS["rollout_batch_error"](["a"], ["x"]).startswith("batch spec item 'x' (position 1)")


def test_haproxy_servers_parses_every_real_server():
    servers = FILTERS["haproxy_servers"](SHOW_STAT)
    assert list(servers) == ["erp_app"]
    assert servers["erp_app"] == {
        "lab-app1_blue": {"status": "UP", "weight": 1, "sessions": 2},
        "lab-app1_green": {"status": "MAINT", "weight": 1, "sessions": 0},
        "lab-app2_blue": {"status": "UP", "weight": 1, "sessions": 0},
        "lab-app2_green": {"status": "DRAIN", "weight": 0, "sessions": 1},
    }
    flat = FILTERS["haproxy_servers"](SHOW_STAT, flat=True)
    assert [(row["backend"], row["server"], row["status"]) for row in flat][1] == ("erp_app", "lab-app1_green", "MAINT")
    assert FILTERS["haproxy_servers"]("") == {}
    with pytest.raises(AnsibleFilterError, match="haproxy_servers: show stat output must be text"):
        FILTERS["haproxy_servers"](None)
