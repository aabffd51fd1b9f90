"""A person's lifecycle on real hosts: added, moved to another role, deactivated; each step
visible in accounts, groups, sudo and keys, and tried with a real ssh client from lb1.
Bad matrices are refused, naming the field, before any host changes."""

from __future__ import annotations

import copy

import pytest
from conftest import PEOPLE, SCENARIO, changed_hosts, failure_messages, playbook, ssh

DAVE_KEY_FILE = "/root/dave_ed25519"


@pytest.fixture(scope="module")
def dave_key(lb):
    """Dave's key pair: the private half stays on lb1, where the ssh client runs."""
    lb.run_expect([0], f"test -f {DAVE_KEY_FILE} || ssh-keygen -q -t ed25519 -N '' -C dave@test -f {DAVE_KEY_FILE}")
    return lb.check_output(f"cat {DAVE_KEY_FILE}.pub")


def with_dave(key: str, **fields) -> list[dict]:
    return [*copy.deepcopy(PEOPLE), {"name": "dave", "full_name": "Dave Deployer", "keys": [key], **fields}]


def apply(tmp_path, people):
    proc = playbook(SCENARIO / "access_stage.yml", tmp=tmp_path, extra={"access_people": people})
    assert proc.returncode == 0, failure_messages(proc) or proc.stderr[-2000:]
    return proc


def groups_of(host, user):
    return set(host.check_output(f"id -Gn {user}").split())


def fingerprints(host, user):
    return host.run(f"ssh-keygen -lf /home/{user}/.ssh/authorized_keys").stdout


def sudo_rights(host, user):
    return host.run(f"sudo -l -U {user}").stdout


def test_1_a_new_person_gets_an_account_where_their_role_reaches(lb, app, db, dave_key, tmp_path):
    apply(tmp_path, with_dave(dave_key, roles=["deployer"]))
    assert groups_of(app, "dave") == {"dave", "erp-deploy", "erp-ssh"}
    assert "(root) NOPASSWD: /usr/bin/docker" in sudo_rights(app, "dave")
    fingerprint = lb.check_output(f"ssh-keygen -lf {DAVE_KEY_FILE}.pub").split()[1]
    assert fingerprint in fingerprints(app, "dave")
    assert not db.user("dave").exists  # deployers do not reach database hosts
    login = ssh(lb, "dave", "app", key=DAVE_KEY_FILE)
    assert login.rc == 0, login.stderr
    assert "erp-deploy" in login.stdout.split()


def test_2_a_role_change_moves_groups_sudo_keys_and_hosts(lb, app, db, dave_key, tmp_path):
    apply(tmp_path, with_dave(dave_key, roles=["dba"]))
    # Database hosts: the new role.
    assert groups_of(db, "dave") == {"dave", "erp-dba", "erp-ssh"}
    assert "/usr/bin/docker exec -it erp-db *" in sudo_rights(db, "dave")
    assert ssh(lb, "dave", "db", key=DAVE_KEY_FILE).rc == 0
    # App hosts, which the new role does not reach: deactivated there.
    assert groups_of(app, "dave") == {"dave"}
    assert "is not allowed to run sudo" in sudo_rights(app, "dave")
    assert not app.file("/home/dave/.ssh/authorized_keys").exists
    assert app.user("dave").shell == "/usr/sbin/nologin"
    assert app.user("dave").expiration_date is not None
    refused = ssh(lb, "dave", "app", key=DAVE_KEY_FILE)
    assert refused.rc == 255
    assert "Permission denied" in refused.stderr


def test_3_deactivation_locks_removes_keys_ends_sessions_and_keeps_home(lb, db, dave_key, tmp_path):
    db.run_expect([0], "su -s /bin/sh dave -c 'setsid sleep 600 >/dev/null 2>&1 < /dev/null &'")
    assert db.run("pgrep -u dave").rc == 0
    apply(tmp_path, with_dave(dave_key, roles=["dba"], state="inactive"))
    assert db.run("pgrep -u dave").rc == 1
    assert groups_of(db, "dave") == {"dave"}
    assert not db.file("/home/dave/.ssh/authorized_keys").exists
    assert db.file("/home/dave").is_directory
    assert "Account expires : Jan 02, 1970" in " ".join(db.check_output("chage -l dave").split())
    assert ssh(lb, "dave", "db", key=DAVE_KEY_FILE).rc == 255


def test_4_applying_the_same_matrix_again_changes_nothing(dave_key, tmp_path):
    proc = apply(tmp_path, with_dave(dave_key, roles=["dba"], state="inactive"))
    assert set(changed_hosts(proc).values()) == {0}


EVE = {"name": "eve", "roles": ["auditor"]}


@pytest.mark.parametrize(("people", "message"), [
    ([*PEOPLE, {**EVE, "roles": ["auditr"]}],
     "access_people[2].roles[0]: unknown role 'auditr' (known: admin, auditor, dba, deployer)"),
    ([*PEOPLE, {**EVE, "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNW"]}],
     "access_people[2].keys[0]: not an OpenSSH public key: the key data is not valid"),
    ([*PEOPLE, EVE, {**EVE, "roles": ["dba"]}], "access_people[3].name: 'eve' is listed twice (also access_people[2])"),
    ([{**PEOPLE[0], "roles": ["auditor"]}, PEOPLE[1], EVE],
     "access_people: no active, unexpired person holds the role 'admin': refusing a matrix that would leave no admin"),
], ids=["unknown-role", "malformed-key", "duplicate-user", "no-admin"])
def test_bad_input_is_refused_before_any_host_changes(app, people, message, tmp_path):
    # The whole provision (converge.yml = provision.yml's plays), not only the access role.
    proc = playbook(SCENARIO / "converge.yml", tmp=tmp_path, extra={"access_people": people})
    assert proc.returncode != 0
    assert message in failure_messages(proc)
    assert set(changed_hosts(proc).values()) == {0}
    assert not app.user("eve").exists
