# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The example environments dev, staging and prod: their access matrix and firewall settings,
loaded as Ansible loads them (ansible-inventory, which needs no vault password: nothing here
reads a vaulted value), pass the roles' own checks, and provision.yml's input checks pass on
them. No test contacts their hosts (documentation addresses)."""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from ansible_collections.erp.ops.plugins.filter.access import FilterModule
from ansible_collections.erp.ops.plugins.module_utils._contract import CONTRACT
from templating import trusted

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
ENVIRONMENTS = ["dev", "staging", "prod"]
# RFC 5737 and RFC 3849: the only addresses an example may use.
DOCUMENTATION = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                                   "2001:db8::/32")]
ACCESS_DEFAULTS = yaml.safe_load((REPO / "roles/access/defaults/main.yml").read_text())
HARDENING_DEFAULTS = yaml.safe_load((REPO / "roles/hardening/defaults/main.yml").read_text())
F = FilterModule().filters()


def ansible_env() -> dict:
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_PYTHON_INTERPRETER=sys.executable)


@functools.cache
def inventory(environment: str) -> dict:
    proc = subprocess.run([str(BIN / "ansible-inventory"), "-i", f"inventories/{environment}", "--list"],
                          cwd=REPO, capture_output=True, text=True, env=ansible_env(), timeout=120, check=True)
    return json.loads(proc.stdout)


def environment_vars(environment: str) -> dict:
    """The variables every host of the environment gets from its group_vars."""
    hostvars = inventory(environment)["_meta"]["hostvars"]
    assert hostvars, f"inventories/{environment} has no hosts"
    return hostvars[sorted(hostvars)[0]]


def templated(environment: str, name: str):
    """A variable as a task sees it: its templates (e.g. the admin networks in a rule) evaluated."""
    variables = environment_vars(environment)
    return Templar(loader=DataLoader(), variables=variables).template(trusted(variables[name]))


def validate(people: list[dict]) -> list[dict]:
    return F["access_validate"](people, ACCESS_DEFAULTS["access_roles"],
                                admin_role=ACCESS_DEFAULTS["access_admin_role"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_matrix_passes_the_access_role_check(environment):
    variables = environment_vars(environment)
    assert "access_roles" not in variables, "the examples use the access role's own roles"
    people = variables["access_people"]
    matrix = validate(people)
    assert [p["name"] for p in matrix] == [p["name"] for p in people]
    active = [p for p in matrix if p["state"] == "active"]
    admins = [p["name"] for p in active if "admin" in p["roles"]]
    assert len(admins) >= (2 if environment == "prod" else 1), admins
    assert all(p["fingerprints"] for p in active), "every active person logs in with a key"
    assert all(key.startswith("ssh-ed25519 ") for p in active for key in p["keys"])
    assert [p for p in active if p["expires"]], "a contractor's account has an end date"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_automation_account_is_expected_and_is_no_person(environment):
    variables = environment_vars(environment)
    assert variables["access_known_accounts"] == [variables["ansible_user"]]
    assert variables["ansible_user"] not in [p["name"] for p in variables["access_people"]]


def test_developers_deploy_in_dev_but_not_in_prod():
    def deployers(environment):
        return {p["name"] for p in environment_vars(environment)["access_people"] if "deployer" in p["roles"]}

    # each step towards prod has fewer deployers, and only people who also deploy before it
    assert deployers("prod") < deployers("staging") < deployers("dev")


def test_prod_survives_one_admin_leaving_but_refuses_to_lose_every_admin():
    people = environment_vars("prod")["access_people"]
    admins = [i for i, p in enumerate(people) if "admin" in p["roles"] and p.get("state", "active") == "active"]

    def without_admin(indexes):
        return [{**p, "roles": [r for r in p["roles"] if r != "admin"] or ["auditor"]} if i in indexes else p
                for i, p in enumerate(people)]

    for index in admins:
        validate(without_admin({index}))
    with pytest.raises(AnsibleFilterError, match="refusing a matrix that would leave no admin"):
        validate(without_admin(set(admins)))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_firewall_keeps_the_rules_the_erp_needs(environment):
    """An environment's list replaces the role's: each default rule must still be there, on the
    same hosts, still admitting the ERP's own hosts it admits by default."""
    rules = {rule["name"]: rule for rule in templated(environment, "hardening_firewall_rules")}
    # The defaults' ports come from the collection's contract (this in-process templating has
    # no collection loader: given from it, as an inventory would set them).
    variables = {**HARDENING_DEFAULTS, "erp_lb_internal_port": CONTRACT["lb_internal_port"],
                 "erp_app_slot_ports": CONTRACT["slot_ports"], **environment_vars(environment)}
    defaults = Templar(loader=DataLoader(), variables=variables).template(
        trusted(HARDENING_DEFAULTS["hardening_firewall_rules"]))
    for default in defaults:
        rule = rules.get(default["name"])
        assert rule, f"{environment}: the rule {default['name']} is missing"
        assert (str(rule["port"]), rule.get("protocol", "tcp"), rule["on_groups"]) == (
            str(default["port"]), default.get("protocol", "tcp"), default["on_groups"]), default["name"]
        assert set(default.get("from_groups", [])) <= set(rule.get("from_groups", [])), default["name"]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_examples_use_documentation_addresses_only(environment):
    variables = environment_vars(environment)
    addresses = list(variables["hardening_firewall_admin_networks"])
    for rule in templated(environment, "hardening_firewall_rules"):
        addresses += rule.get("from_networks", [])
    for host in inventory(environment)["_meta"]["hostvars"].values():
        addresses += [host["ansible_host"], host["erp_internal_address"]]
    assert variables["hardening_firewall_admin_networks"]
    for address in addresses:
        network = ipaddress.ip_network(address)
        assert any(network.subnet_of(d) for d in DOCUMENTATION if d.version == network.version), address


# What fact gathering would report on the environment's Debian 12 hosts; set_fact with cacheable
# puts it in the fact cache, where ansible_facts comes from.
DEBIAN_FACTS_PLAY = {
    "name": "Facts of a Debian 12 host, instead of gathering them from hosts no test may contact",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [{"name": "Set the facts the input checks read", "ansible.builtin.set_fact": {
        "os_family": "Debian", "distribution": "Debian", "distribution_major_version": "12", "cacheable": True}}],
}


def run_provision_checks(tmp_path: Path, environment: str, *extra: str) -> subprocess.CompletedProcess:
    """provision.yml's guard and input-check plays, as written there, on the environment's
    inventory, with the facts of a Debian 12 host: every check is an assert on the controller,
    so no host is contacted."""
    plays = [play for play in yaml.safe_load((REPO / "playbooks/provision.yml").read_text()) if "tasks" in play]
    assert [play["name"] for play in plays] == ["Check the run is limited to one environment",
                                                "Check the inputs of every role"]
    guard, checks = plays
    checks["gather_facts"] = False
    (tmp_path / "checks.yml").write_text(yaml.safe_dump([guard, DEBIAN_FACTS_PLAY, checks], sort_keys=False))
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", f"inventories/{environment}", str(tmp_path / "checks.yml"),
         "-l", environment, *extra],
        # a check that came to need a connection fails fast on the unreachable example address
        cwd=REPO, capture_output=True, text=True, env=dict(ansible_env(), ANSIBLE_TIMEOUT="5"), timeout=300,
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_provision_input_checks_pass(tmp_path, environment):
    proc = run_provision_checks(tmp_path, environment)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    for task in ("access : Check the access matrix", "hardening : Check the admin networks are CIDRs",
                 "hardening : Check each firewall rule"):
        assert f"TASK [{task}]" in proc.stdout
    recap = {line.split()[0]: line for line in proc.stdout.splitlines() if " : ok=" in line}
    assert sorted(recap) == sorted(inventory(environment)["_meta"]["hostvars"])
    assert all("unreachable=0" in line and "failed=0" in line for line in recap.values()), recap


@pytest.mark.parametrize(("override", "says"), [
    # what the example inventories had before they had a matrix
    ({"access_people": []}, "access_people: no active, unexpired person holds the role"),
    ({"hardening_firewall_admin_networks": ["bastion.example"]}, "bastion.example' is not an address or a CIDR"),
    ({"hardening_firewall_admin_networks": ["0.0.0.0/0", "::/0"]},
     "0.0.0.0/0, ::/0 in hardening_firewall_admin_networks or hardening_firewall_monitoring_networks would open SSH"),
    ({"hardening_firewall_admin_networks": []}, "hardening_firewall_admin_networks must allow SSH from somewhere"),
], ids=["no-matrix", "bad-admin-network", "world-open-admin-network", "no-admin-network"])
def test_the_checks_really_run_and_refuse_on_prod(tmp_path, override, says):
    proc = run_provision_checks(tmp_path, "prod", "-e", json.dumps(override))
    assert proc.returncode != 0
    assert says in " ".join(proc.stdout.split())  # the callback wraps long messages
    assert "UNREACHABLE" not in proc.stdout
