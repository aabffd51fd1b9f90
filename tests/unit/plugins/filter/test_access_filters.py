# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The RBAC matrix filters: what they refuse (naming the field), what each host gets, drift."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.filter.access import FilterModule

F = FilterModule().filters()

ALICE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNWThbTfunht326l/l4+EU0YZJsKkCYD/mZWpN0W8OB alice@test"
BOB_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0hLZOfQHt+/4b7XdtEnox5UCDZcga6M7MjN41uG4m bob@test"
CAROL_KEY = ("ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEwnfJhS1DmBHOj7yfvBU8hi6cxJ"
             "8FpK4aTYriL4KvegGkGWN2d53dYVuWuQQQglGhGnQWqa8z2/hkdkX7Q+ltI= carol@test")
# What `ssh-keygen -lf` prints for the keys above.
ALICE_FP = "SHA256:1Ptj8TTuTvaKvpaTx+JM8kMgNXtFWUMNCBONgceBh9E"
BOB_FP = "SHA256:LMmTA4oNrcHSsCNQEV+zJiid1dlHIZ+HfpWyYpon4bA"
CAROL_FP = "SHA256:iAL1eu7O53g+uI8h8HPfprbTPOezZA55Jva+pBdpq1o"

ROLES = {
    "admin": {"groups": ["erp-admin"], "sudo": ["ALL"], "hosts": ["all"]},
    "deployer": {"groups": ["erp-deploy"], "sudo": ["/usr/bin/docker"], "hosts": ["erp_app", "erp_lb"]},
    "dba": {"groups": ["erp-dba"], "sudo": [], "hosts": ["erp_db"]},
    "auditor": {"groups": ["erp-audit", "adm"], "sudo": [], "hosts": ["all"]},
}
PEOPLE = [
    {"name": "alice", "full_name": "Alice Admin", "roles": ["admin"], "keys": [ALICE_KEY]},
    {"name": "bob", "roles": ["deployer"], "keys": [BOB_KEY], "expires": "2026-12-31"},
    {"name": "carol", "roles": ["dba", "auditor"], "keys": [CAROL_KEY]},
]
TODAY = "2026-11-27"


def people(**changes):
    """PEOPLE with changes: {"1.roles": [...]} sets field roles of person 1."""
    result = copy.deepcopy(PEOPLE)
    for path, value in changes.items():
        index, field = path.split("__")
        result[int(index)][field] = value
    return result


@pytest.mark.parametrize(("key", "fingerprint"), [(ALICE_KEY, ALICE_FP), (BOB_KEY, BOB_FP), (CAROL_KEY, CAROL_FP),
                                                  ('from="10.0.0.0/8" ' + ALICE_KEY, ALICE_FP)])
def test_fingerprints_match_ssh_keygen(key, fingerprint):
    assert F["ssh_key_fingerprint"](key) == fingerprint


def test_a_valid_matrix_is_normalized():
    result = F["access_validate"](PEOPLE, ROLES, today=TODAY)
    assert [p["name"] for p in result] == ["alice", "bob", "carol"]
    assert result[0]["full_name"] == "Alice Admin"
    assert result[1]["full_name"] == "bob"
    assert result[1]["expires"] == "2026-12-31"
    assert all(p["active"] for p in result)
    assert result[2]["fingerprints"] == [CAROL_FP]


@pytest.mark.parametrize(("bad_people", "roles", "message"), [
    (people(**{"1__roles": ["deployr"]}), ROLES,
     "access_people[1].roles[0]: unknown role 'deployr' (known: admin, auditor, dba, deployer)"),
    (people(**{"2__keys": ["ssh-ed25519 not-base64!"]}), ROLES,
     "access_people[2].keys[0]: not an OpenSSH public key: the key data is not valid base64"),
    (people(**{"2__keys": ["ssh-rsa " + ALICE_KEY.split()[1]]}), ROLES,
     "access_people[2].keys[0]: not an OpenSSH public key: the data is a 'ssh-ed25519' key labelled 'ssh-rsa'"),
    (people(**{"2__keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNW"]}), ROLES,
     "access_people[2].keys[0]: not an OpenSSH public key: the key data is not valid base64 key material (cut"),
    (people(**{"2__keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5"]}), ROLES,
     "access_people[2].keys[0]: not an OpenSSH public key: the key data is incomplete"),
    (people(**{"2__keys": ["AAAAC3NzaC1lZDI1NTE5AAAAIHNW"]}), ROLES,
     "access_people[2].keys[0]: not an OpenSSH public key: the key type must be one of"),
    (people(**{"2__name": "alice"}), ROLES, "access_people[2].name: 'alice' is listed twice (also access_people[0])"),
    (people(**{"1__keys": [ALICE_KEY]}), ROLES, "access_people[1].keys[0]: the same key is already given to alice"),
    (people(**{"0__roles": ["auditor"]}), ROLES,
     "access_people: no active, unexpired person holds the role 'admin': refusing a matrix that would leave no admin"),
    (people(**{"0__state": "inactive"}), ROLES, "access_people: no active, unexpired person holds the role 'admin'"),
    (people(**{"0__expires": "2026-11-26"}), ROLES, "access_people: no active, unexpired person holds the role"),
    (people(**{"1__expires": "31/12/2026"}), ROLES, "access_people[1].expires: '31/12/2026' is not a date"),
    (people(**{"1__state": "retired"}), ROLES, "access_people[1].state: 'retired' is not one of active, inactive"),
    (people(**{"1__role": "dba"}), ROLES, "access_people[1].role: unknown field"),
    (people(**{"1__name": "Bob Smith"}), ROLES, "access_people[1].name: 'Bob Smith' is not a valid unix name"),
    (people(**{"1__roles": []}), ROLES, "access_people[1].roles: an active person needs at least one role"),
    ("alice", ROLES, "access_people: must be a list"),
    (PEOPLE, {k: v for k, v in ROLES.items() if k != "admin"}, "access_roles: the role 'admin'"),
    (PEOPLE, {**ROLES, "admin": {"groups": ["erp-admin"], "hosts": ["erp_app"]}},
     "access_roles.admin.hosts: the admin role must reach all hosts"),
    (PEOPLE, {**ROLES, "dba": {"groups": ["Bad Group"]}}, "access_roles.dba.groups[0]: 'Bad Group' is not a valid"),
    (PEOPLE, {**ROLES, "dba": {"group": ["erp-dba"]}}, "access_roles.dba.group: unknown field"),
])
def test_bad_input_is_refused_naming_the_field(bad_people, roles, message):
    with pytest.raises(AnsibleFilterError) as error:
        F["access_validate"](bad_people, roles, today=TODAY)
    assert str(error.value).startswith(message)


def test_expiry_and_inactive_people_are_not_active():
    result = F["access_validate"](people(**{"1__expires": "2026-11-26", "2__state": "inactive"}), ROLES, today=TODAY)
    assert [(p["name"], p["active"], p["expired"]) for p in result] == [
        ("alice", True, False), ("bob", False, True), ("carol", False, False)]


def test_yaml_dates_are_accepted():
    result = F["access_validate"](people(**{"1__expires": dt.date(2027, 3, 31)}), ROLES, today=TODAY)
    assert result[1]["expires"] == "2027-03-31"


def plan(host_groups, existing=(), the_people=None, today=TODAY):
    entries = F["access_host_plan"](the_people or PEOPLE, ROLES, host_groups, existing, ssh_group="erp-ssh",
                                    today=today)
    return {e["name"]: e for e in entries}


def test_each_host_gets_the_people_whose_roles_reach_it():
    app = plan(["lab", "erp_app"])
    assert sorted(app) == ["alice", "bob", "carol"]
    assert app["alice"]["groups"] == ["erp-admin", "erp-ssh"]
    assert app["bob"]["groups"] == ["erp-deploy", "erp-ssh"]
    # carol's auditor role reaches every host; dba only the database hosts
    assert app["carol"]["groups"] == ["adm", "erp-audit", "erp-ssh"]
    assert plan(["lab", "erp_db"])["carol"]["groups"] == ["adm", "erp-audit", "erp-dba", "erp-ssh"]
    assert "bob" not in plan(["lab", "erp_db"])
    assert app["bob"]["expires_epoch"] == int(dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp())
    assert app["alice"]["expires_epoch"] == -1


def test_people_who_lose_a_host_are_locked_there_if_they_had_an_account():
    moved = people(**{"1__roles": ["dba"]})
    assert plan(["erp_app"], existing=["bob"], the_people=moved)["bob"] == {
        "name": "bob", "full_name": "bob", "state": "locked", "groups": [], "keys": [], "expires": "2026-12-31",
        "expires_epoch": 86400}
    assert "bob" not in plan(["erp_app"], existing=[], the_people=moved)
    assert plan(["erp_db"], the_people=moved)["bob"]["state"] == "present"


def test_inactive_and_expired_people_are_locked():
    assert plan(["erp_app"], existing=["bob"], today="2027-01-01")["bob"]["state"] == "locked"
    gone = people(**{"2__state": "inactive"})
    assert plan(["erp_db"], existing=["carol"], the_people=gone)["carol"]["state"] == "locked"


# getent's databases on a host where mallory (removed from the matrix), an automation
# account and a system account are in the matrix's groups; erin is in none of them.
PASSWD = {"alice": ["x", "1001", "1001", "Alice Admin,,,", "/home/alice", "/bin/bash"],
          "mallory": ["x", "1002", "1002", "Mallory Left,,,", "/home/mallory", "/bin/bash"],
          "deploybot": ["x", "1003", "1003", "", "/home/deploybot", "/bin/bash"],
          "erin": ["x", "1004", "1004", "", "/home/erin", "/bin/bash"],
          "frank": ["x", "1005", "3005", "", "/home/frank", "/bin/bash"],
          "syslog": ["x", "104", "110", "", "/home/syslog", "/usr/sbin/nologin"]}
GROUPS = {"erp-admin": ["x", "3001", "alice,mallory"], "erp-ssh": ["x", "3002", "alice,mallory,deploybot"],
          "adm": ["x", "4", "syslog"], "erp-deploy": ["x", "3005", ""], "users": ["x", "100", "erin"]}


def test_accounts_the_matrix_does_not_list_are_locked_where_they_hold_its_groups():
    entries = F["access_host_plan"](PEOPLE, ROLES, ["erp_app"], PASSWD, ssh_group="erp-ssh", today=TODAY,
                                    group_members=GROUPS, known_accounts=["deploybot"])
    unlisted = {e["name"]: e for e in entries if e.get("unlisted")}
    # frank holds erp-deploy as his primary group; system accounts and erin are left alone.
    assert sorted(unlisted) == ["frank", "mallory"]
    assert unlisted["mallory"] == {
        "name": "mallory", "full_name": "Mallory Left", "state": "locked", "groups": [], "keys": [], "expires": "",
        "expires_epoch": 86400, "unlisted": True, "held_groups": ["erp-admin", "erp-ssh"]}
    assert unlisted["frank"]["held_groups"] == ["erp-deploy"]
    # Account names alone (no databases): nothing can be told, nothing extra is locked.
    assert not [e for e in F["access_host_plan"](PEOPLE, ROLES, ["erp_app"], list(PASSWD), today=TODAY)
                if e.get("unlisted")]


def test_sudo_rights_go_to_each_roles_first_group():
    assert F["access_sudo_rules"](ROLES) == [
        {"role": "admin", "group": "erp-admin", "commands": ["ALL"]},
        {"role": "deployer", "group": "erp-deploy", "commands": ["/usr/bin/docker"]},
    ]
    with pytest.raises(AnsibleFilterError, match=r"access_roles.dba.groups: a role with sudo rights needs a group"):
        F["access_sudo_rules"]({**ROLES, "dba": {"sudo": ["ALL"], "groups": [], "hosts": ["erp_db"]}})


SUDOERS = {
    "/etc/sudoers": "Defaults env_reset\n# comment\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n"
                    "@includedir /etc/sudoers.d\n",
    "/etc/sudoers.d/erp-access": "%erp-admin ALL=(root) NOPASSWD: ALL\n",
    "/etc/sudoers.d/zz-hand": "Cmnd_Alias X = /bin/true\nbob ALL=(root) NOPASSWD: \\\n  ALL\n",
}


def test_sudoers_rules_are_read_per_subject():
    assert F["access_parse_sudoers"](SUDOERS) == [
        {"file": "/etc/sudoers", "subject": "root", "rule": "ALL=(ALL:ALL) ALL"},
        {"file": "/etc/sudoers", "subject": "%sudo", "rule": "ALL=(ALL:ALL) ALL"},
        {"file": "/etc/sudoers.d/erp-access", "subject": "%erp-admin", "rule": "ALL=(root) NOPASSWD: ALL"},
        {"file": "/etc/sudoers.d/zz-hand", "subject": "bob", "rule": "ALL=(root) NOPASSWD: ALL"},
    ]


def host_state(**overrides):
    passwd = {
        "root": ["x", "0", "0", "root", "/root", "/bin/bash"],
        "alice": ["x", "1001", "1001", "Alice Admin", "/home/alice", "/bin/bash"],
        "bob": ["x", "1002", "1002", "bob", "/home/bob", "/bin/bash"],
        "carol": ["x", "1003", "1003", "carol", "/home/carol", "/bin/bash"],
        "mallory": ["x", "1004", "1004", "", "/home/mallory", "/bin/bash"],
        "debian": ["x", "1000", "1000", "", "/home/debian", "/bin/bash"],
    }
    group = {"erp-admin": ["x", "2001", "alice"], "erp-ssh": ["x", "2002", "alice,bob,carol,debian"],
             "erp-deploy": ["x", "2003", "bob"], "erp-audit": ["x", "2004", "carol"], "adm": ["x", "4", "carol"],
             "sudo": ["x", "27", ""]}
    shadow = {name: ["!", "20000", "0", "99999", "7", "", "", ""] for name in passwd}
    keys = {"/home/alice/.ssh/authorized_keys": ALICE_KEY + "\n", "/home/bob/.ssh/authorized_keys": BOB_KEY + "\n",
            "/home/carol/.ssh/authorized_keys": "# hand note\n" + CAROL_KEY + "\n"}
    sudoers = {"/etc/sudoers.d/erp-access": "%erp-admin ALL=(root) NOPASSWD: ALL\n"}
    args = {"passwd": passwd, "group": group, "shadow": shadow, "keys": keys, "sudoers": sudoers}
    for name, change in overrides.items():
        change(args[name])
    lastlog = ("Username         Port     From             Latest\n"
               "alice            pts/0    10.0.0.9         Fri Nov 27 10:00:00 +0000 2026\n"
               "bob                                         **Never logged in**\n")
    return F["access_host_state"](args["passwd"], args["group"], args["shadow"], args["keys"], args["sudoers"],
                                  lastlog=lastlog, today=TODAY)


def test_host_state_lists_people_accounts_with_keys_groups_and_last_login():
    state = host_state()
    assert sorted(state["accounts"]) == ["alice", "bob", "carol", "debian", "mallory"]
    assert state["accounts"]["alice"] == {"uid": 1001, "shell": "/bin/bash", "locked": False,
                                          "groups": ["erp-admin", "erp-ssh"], "fingerprints": [ALICE_FP],
                                          "last_login": "pts/0 10.0.0.9 Fri Nov 27 10:00:00 +0000 2026"}
    assert state["accounts"]["bob"]["last_login"] == "never"
    assert state["accounts"]["carol"]["fingerprints"] == [CAROL_FP]


def test_expired_or_nologin_accounts_count_as_locked():
    def expire_bob(shadow):
        shadow["bob"][6] = "1"

    def nologin_carol(passwd):
        passwd["carol"][5] = "/usr/sbin/nologin"

    state = host_state(shadow=expire_bob, passwd=nologin_carol)
    assert state["accounts"]["bob"]["locked"] is True
    assert state["accounts"]["carol"]["locked"] is True
    assert state["accounts"]["alice"]["locked"] is False


def drift(state, the_people=None, known=("debian",), groups=("lab", "erp_app")):
    return F["access_drift"]({"app1": {"groups": list(groups), "state": state}}, the_people or PEOPLE, ROLES,
                             known_accounts=list(known), ssh_group="erp-ssh", today=TODAY)


def test_a_hand_made_account_is_drift_and_known_accounts_are_not():
    assert drift(host_state()) == [{
        "host": "app1", "kind": "unknown_account", "account": "mallory",
        "detail": "uid 1004 is not in the access matrix (groups: none; last login: unknown)"}]


def test_extra_keys_groups_and_personal_sudo_rules_are_drift():
    def extra_key(keys):
        keys["/home/bob/.ssh/authorized_keys"] += ALICE_KEY.replace("alice@test", "copied") + "\n"

    def bob_in_sudo(group):
        group["sudo"][2] = "bob"

    def bob_sudoers(sudoers):
        sudoers["/etc/sudoers.d/zz-hand"] = "bob ALL=(ALL) NOPASSWD: ALL\n"

    findings = drift(host_state(keys=extra_key, group=bob_in_sudo, sudoers=bob_sudoers), known=("debian", "mallory"))
    assert [(f["kind"], f["account"], f["detail"]) for f in findings] == [
        ("excess_rights", "bob", "member of sudo, which role(s) deployer do not grant"),
        ("excess_rights", "bob", "personal sudo rule in /etc/sudoers.d/zz-hand: ALL=(ALL) NOPASSWD: ALL"),
        ("unknown_key", "bob", f"key {ALICE_FP} is not in the matrix"),
    ]


def test_expired_people_whose_account_still_works_are_drift():
    findings = drift(host_state(), the_people=people(**{"1__expires": "2026-11-01"}), known=("debian", "mallory"))
    assert [(f["kind"], f["account"]) for f in findings] == [("inactive_still_active", "bob")]
    assert findings[0]["detail"] == "expired on 2026-11-01, but the account is unlocked with 1 key(s)"


def test_missing_accounts_are_reported():
    def no_carol(passwd):
        del passwd["carol"]

    findings = drift(host_state(passwd=no_carol), known=("debian", "mallory"))
    assert [(f["kind"], f["account"]) for f in findings] == [("missing_account", "carol")]


def test_filter_names():
    assert sorted(F) == ["access_drift", "access_host_plan", "access_host_state", "access_parse_sudoers",
                         "access_sudo_rules", "access_validate", "ssh_key_fingerprint"]
