"""The hardening role's nftables ruleset, rendered by Ansible's own templating from the role's
defaults: who each per-group rule admits, in input and in forward (published ports)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.erp.ops.plugins.module_utils._contract import CONTRACT
from templating import trusted

ROLE = Path(__file__).resolve().parents[3] / "roles" / "hardening"
GROUPS = {"erp_lb": ["lb1"], "erp_app": ["app1", "app2"], "erp_db": ["db1"], "erp_spare": []}
HOSTVARS = {"lb1": {"erp_internal_address": "10.0.0.2"}, "app1": {"erp_internal_address": "10.0.0.5"},
            "app2": {"erp_internal_address": "10.0.0.6"}, "db1": {"erp_internal_address": "10.0.0.3"}}


def ruleset(group_names: list[str], **overrides) -> list[str]:
    # The ports the defaults look up from the collection's contract (this in-process
    # templating has no collection loader), given from it as an inventory would set them.
    contract_ports = {"erp_lb_internal_port": CONTRACT["lb_internal_port"],
                      "erp_app_slot_ports": CONTRACT["slot_ports"]}
    variables = {**trusted(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())),
                 **yaml.safe_load((ROLE / "vars" / "Debian-12.yml").read_text()), **contract_ports,
                 "groups": GROUPS, "hostvars": HOSTVARS, "group_names": group_names, **overrides}
    text = (ROLE / "templates" / "firewall.nft.j2").read_text()
    rendered = Templar(loader=DataLoader(), variables=variables).template(trusted(text))
    return [line.strip() for line in rendered.splitlines()]


def rules_for(lines: list[str], port: str) -> list[str]:
    return [line for line in lines if f"dport {port} accept" in line or f"proto-dst {port} accept" in line]


def test_the_database_admits_the_app_hosts_only_on_the_host_and_on_published_ports():
    rules = rules_for(ruleset(["erp_db"]), "5432")
    assert rules == [
        'ip saddr { 10.0.0.5, 10.0.0.6 } tcp dport 5432 accept comment "postgresql"',
        'ct status dnat ip saddr { 10.0.0.5, 10.0.0.6 } meta l4proto tcp ct original proto-dst 5432 accept '
        'comment "postgresql"',
    ]


def test_a_rule_without_sources_admits_everyone_and_applies_only_on_its_groups():
    assert rules_for(ruleset(["erp_lb"]), "80") == [
        'tcp dport 80 accept comment "erp-lb-public"',
        'ct status dnat meta l4proto tcp ct original proto-dst 80 accept comment "erp-lb-public"',
    ]
    assert rules_for(ruleset(["erp_app"]), "80") == []


@pytest.mark.parametrize("rule", [
    {"name": "spare", "port": 9999, "on_groups": ["erp_db"], "from_groups": ["erp_spare"]},
    {"name": "spare", "port": 9999, "on_groups": ["erp_db"], "from_groups": ["erp_spare"], "from_networks": []},
], ids=["from-group-without-hosts", "empty-networks-too"])
def test_a_rule_whose_sources_have_no_hosts_yet_admits_nobody(rule):
    lines = ruleset(["erp_db"], hardening_firewall_rules=[rule])
    assert rules_for(lines, "9999") == []
    assert "# spare: nobody (its from_groups have no hosts yet)" in lines
    assert 'ct status dnat drop comment "published ports without a rule"' in lines


def test_the_admin_networks_reach_ssh_the_app_slots_and_the_lb_internal_port_per_family():
    admin = {"hardening_firewall_admin_networks": ["192.0.2.1/32", "2001:db8::/64"]}
    lines = ruleset(["erp_app"], **admin)
    assert 'ip saddr { 192.0.2.1/32 } tcp dport 22 accept comment "ssh from admin networks"' in lines
    assert 'ip6 saddr { 2001:db8::/64 } tcp dport 22 accept comment "ssh from admin networks"' in lines
    assert rules_for(lines, "8001-8002")[:2] == [
        'ip saddr { 10.0.0.2, 10.0.0.5, 10.0.0.6, 192.0.2.1/32 } tcp dport 8001-8002 accept comment "erp-app-slots"',
        'ip6 saddr { 2001:db8::/64 } tcp dport 8001-8002 accept comment "erp-app-slots"',
    ]
    assert rules_for(ruleset(["erp_lb"], **admin), "8404")[0] == (
        'ip saddr { 10.0.0.2, 10.0.0.5, 10.0.0.6, 10.0.0.3, 192.0.2.1/32 } tcp dport 8404 accept '
        'comment "erp-lb-internal"')
