"""Role access: the matrix's people on the host as its roles say (accounts, groups, sudo, keys,
expiry); people whose roles do not reach the host get no account. The lifecycle (add, role
change, deactivate), the bad matrices and the access review are proven on the lab's hosts
(tests/lab/test_provision.py)."""

from __future__ import annotations

import subprocess

from provision_host import ALICE_KEY


def groups_of(host, user):
    return set(host.check_output(f"id -Gn {user}").split())


def test_people_get_exactly_the_groups_of_their_roles(host):
    assert groups_of(host, "alice") == {"alice", "erp-admin", "erp-ssh"}
    assert groups_of(host, "carol") == {"carol", "erp-dba", "erp-audit", "adm", "erp-ssh"}
    assert host.user("alice").shell == "/bin/bash"
    assert host.user("alice").gecos.startswith("Alice Admin")


def test_sudo_follows_roles(host):
    assert "(root) NOPASSWD: ALL" in host.check_output("sudo -l -U alice")
    carol = host.check_output("sudo -l -U carol")
    assert "/usr/bin/docker exec -it erp-db *" in carol
    assert "(root) NOPASSWD: ALL" not in carol
    assert host.run("visudo -c").rc == 0


def test_exactly_the_keys_of_the_matrix_are_authorized(host):
    expected = subprocess.run(["ssh-keygen", "-lf", "-"], input=ALICE_KEY, capture_output=True, text=True,
                              check=True).stdout.split()[1]
    listed = host.check_output("ssh-keygen -lf /home/alice/.ssh/authorized_keys").splitlines()
    assert [line.split()[1] for line in listed] == [expected]


def test_expiry_dates_reach_the_account(host):
    # expires: 2099-12-31 is carol's last day: the account is disabled from the next day on.
    assert "Account expires : Jan 01, 2100" in " ".join(host.check_output("chage -l carol").split())
    assert "Account expires : never" in " ".join(host.check_output("chage -l alice").split())


def test_a_role_that_does_not_reach_the_host_gives_no_account(host):
    assert not host.user("bob").exists  # deployers reach app and LB hosts, not this database host


def test_erp_ops_is_installed_root_owned_for_the_deployers_sudo_right(host):
    ops = host.file("/usr/local/sbin/erp-ops")
    assert ops.user == "root" and ops.group == "root" and ops.mode == 0o755
    assert "{status,logs,restart}" in host.check_output("/usr/local/sbin/erp-ops --help")
