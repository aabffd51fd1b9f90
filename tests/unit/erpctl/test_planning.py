# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Stage planning, durations, inventory environments and URLs."""

from __future__ import annotations

import pytest
from erpctl.durations import format_duration, parse_duration
from erpctl.errors import ErpctlError
from erpctl.inventory import Inventory, app_base_url, lb_base_url
from erpctl.stages import parse_stage_spec, plan_stages

HOSTS = [f"app{n}" for n in range(1, 11)]


@pytest.mark.parametrize("text, hosts, expected", [
    ("canary,50%,100%", HOSTS, [["app1"], HOSTS[1:6], HOSTS[6:]]),
    ("canary,50%,100%", HOSTS[:2], [["app1"], ["app2"]]),
    ("canary,50%,100%", HOSTS[:1], [["app1"]]),
    ("canary,100%", HOSTS[:4], [["app1"], HOSTS[1:4]]),
    ("2", HOSTS[:5], [HOSTS[0:2], HOSTS[2:4], HOSTS[4:5]]),
    ("CANARY, 30%", HOSTS[:4], [["app1"], HOSTS[1:3], HOSTS[3:4]]),
    ("100%", HOSTS[:3], [HOSTS[:3]]),
])
def test_plan_stages(text, hosts, expected):
    assert [list(stage.hosts) for stage in plan_stages(hosts, text)] == expected


def test_stage_names_say_what_was_asked():
    stages = plan_stages(HOSTS[:5], "canary,2")
    assert [(s.number, s.name) for s in stages] == [(1, "canary"), (2, "2"), (3, "2 (repeat 2)")]


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("canary,,100%", "''"),
    ("canery,100%", "'canery'"),
    ("0", "positive"),
    ("150%", "(0, 100]"),
    ("abc%", "percentage"),
    ("-1", "'-1'"),
])
def test_malformed_stages(text, fragment):
    with pytest.raises(ErpctlError) as caught:
        parse_stage_spec(text)
    assert caught.value.message.startswith("--stages: ")
    assert fragment in caught.value.message
    assert "\n" not in caught.value.message


def test_canary_is_one_host():
    assert parse_stage_spec("canary,50%,100%") == [1, "50%", "100%"]


@pytest.mark.parametrize("text, seconds", [
    ("60s", 60), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("90", 90), ("0", 0), ("1.5s", 1.5), ("1h2m3s", 3723),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "1s1m", "m", "1m1m", "-5s", "5 s", "1.5.5s"])
def test_bad_duration(text):
    with pytest.raises(ErpctlError) as caught:
        parse_duration(text, "--bake")
    assert caught.value.message.startswith("--bake: ")


@pytest.mark.parametrize("seconds, text", [
    (0.5, "0.5s"), (0.031671, "0s"), (12.345, "12.3s"), (60, "1m"), (90, "1m30s"), (3723, "1h2m3s"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def _inventory():
    return Inventory({
        "_meta": {"hostvars": {"app1": {"erp_internal_address": "10.0.0.11"},
                               "app2": {"erp_internal_address": "10.0.0.12",
                                        "erp_app_slot_ports": {"blue": 9001, "green": 9002}},
                               "lb1": {"erp_internal_address": "10.0.0.2", "erp_lb_internal_port": 8405}}},
        "all": {"children": ["ungrouped", "lab", "prod"]},
        "erp_app": {"hosts": ["app1", "app2"]},
        "erp_lb": {"hosts": ["lb1"]},
        "lab_app": {"hosts": ["app1", "app2"]},
        "lab": {"children": ["erp_lb", "erp_app"]},
        "prod": {"children": ["prod_app"]},
        "prod_app": {"hosts": ["p1"]},
    })


def test_environment_hosts_and_urls():
    inventory = _inventory()
    assert inventory.environments() == ["lab"]
    assert inventory.env_hosts("lab", "erp_app") == ["app1", "app2"]
    assert app_base_url("app1", inventory.hostvars("app1"), "green") == "http://10.0.0.11:8002"
    assert app_base_url("app2", inventory.hostvars("app2"), "blue") == "http://10.0.0.12:9001"
    assert lb_base_url("lb1", inventory.hostvars("lb1")) == "http://10.0.0.2:8405"


def test_unknown_environment():
    with pytest.raises(ErpctlError, match=r"no environment group 'qa' with .* children \(it has: lab\)"):
        _inventory().check_env("qa")


def test_environments_sharing_a_child_group_are_refused():
    # erp_app under both lab and prod makes every app host a member of both: -l lab would reach prod.
    inventory = Inventory({
        "erp_app": {"hosts": ["app1", "papp1"]},
        "lab": {"children": ["erp_app"]},
        "prod": {"children": ["erp_app"]},
    })
    with pytest.raises(ErpctlError, match="in both 'lab' and 'prod'"):
        inventory.check_env("lab")


def test_missing_address_is_one_line():
    with pytest.raises(ErpctlError, match="app9 has no erp_internal_address"):
        app_base_url("app9", {}, "blue")
