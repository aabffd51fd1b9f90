"""Role hardening, tried from this machine over the scenario network: sshd admits keys of the
allowed group only, from authorized_keys only, refuses root and passwords, never takes a bad setting; the firewall opens
a port to its rule's network only and never touches the tables of others."""

from __future__ import annotations

import socket
import time

import pytest
from provision_host import ADDRESS, NAME, SHARED, failure_messages, playbook, ssh

DROPIN = "/etc/ssh/sshd_config.d/00-erp-hardening.conf"


def test_sshd_runs_with_the_hardened_settings(host):
    effective = host.check_output("sshd -T").splitlines()
    for line in ("permitrootlogin no", "passwordauthentication no", "kbdinteractiveauthentication no",
                 "authenticationmethods publickey", "allowgroups erp-ssh", "x11forwarding no",
                 "authorizedkeysfile .ssh/authorized_keys",
                 "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
                 "aes256-ctr,aes128-ctr"):
        assert line in effective
    assert host.service("ssh").is_running


@pytest.fixture
def authorized(host, client_key):
    """This machine's probe key added to an account's authorized_keys, removed afterwards."""
    added = []

    def add(user: str, home: str) -> None:
        public = client_key.with_suffix(".pub").read_text().strip()
        host.run_expect([0], f"install -d -m 700 -o {user} {home}/.ssh")
        host.run_expect([0], f"echo '{public}' >> {home}/.ssh/authorized_keys")
        added.append(home)

    yield add
    for home in added:
        host.run(f"sed -i '/probe@test$/d' {home}/.ssh/authorized_keys")


def test_a_person_of_the_allowed_group_logs_in_with_a_key(authorized, client_key):
    authorized("alice", "/home/alice")  # made by prepare.yml, as the role access makes people
    login = ssh("alice", client_key)
    assert login.returncode == 0, login.stderr
    assert "erp-ssh" in login.stdout.split()


def test_an_account_outside_the_allowed_group_is_refused_even_with_a_key(authorized, client_key):
    authorized("mallory", "/home/mallory")
    refused = ssh("mallory", client_key)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_a_key_in_authorized_keys2_is_not_honoured(host, client_key):
    """Only the file the access role manages and reviews lets anyone in."""
    public = client_key.with_suffix(".pub").read_text().strip()
    host.run_expect([0], "install -d -m 700 -o alice /home/alice/.ssh")
    host.run_expect([0], f"echo '{public}' > /home/alice/.ssh/authorized_keys2")
    try:
        refused = ssh("alice", client_key)
    finally:
        host.run("rm -f /home/alice/.ssh/authorized_keys2")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_root_login_is_refused_even_with_an_authorized_key(authorized, client_key):
    authorized("root", "/root")
    refused = ssh("root", client_key)
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_password_login_is_not_even_offered():
    refused = ssh("alice", None, "-o", "PreferredAuthentications=password,keyboard-interactive",
                  "-o", "PubkeyAuthentication=no")
    assert refused.returncode == 255
    assert "Permission denied (publickey)" in refused.stderr


def test_a_bad_sshd_setting_is_refused_before_it_reaches_sshd(host, tmp_path):
    before = host.file(DROPIN).sha256sum
    proc = playbook(SHARED / "apply_role.yml", "-l", NAME, tmp=tmp_path,
                    extra={"stage_role": "hardening", "hardening_ssh_ciphers": ["no-such-cipher"]})
    assert proc.returncode != 0
    assert "Bad SSH2 cipher spec" in failure_messages(proc) or "no-such-cipher" in failure_messages(proc)
    assert host.file(DROPIN).sha256sum == before
    assert host.service("ssh").is_running
    assert "ciphers chacha20-poly1305@openssh.com" in host.check_output("sshd -T")


@pytest.fixture(scope="module")
def listeners(host):
    """Real listeners on the host: 9100 (open to this machine) and 5432 (open to an app host only)."""
    for port in (9100, 5432):
        host.run(f"systemctl stop probe-{port}")
        host.run_expect([0], f"systemd-run --unit=probe-{port} python3 -m http.server --bind 0.0.0.0 {port}")
    for _ in range(30):
        if host.run("ss -Htln 'sport = :9100 or sport = :5432' | wc -l").stdout.strip() == "2":
            break
        time.sleep(1)
    yield
    host.run("systemctl stop probe-9100 probe-5432")


def reach(port: int) -> str:
    try:
        socket.create_connection((ADDRESS, port), timeout=5).close()
        return "open"
    except TimeoutError:
        return "dropped"
    except ConnectionRefusedError:
        return "refused"


def test_a_port_is_open_to_its_rules_network_and_dropped_for_everyone_else(host, listeners):
    assert reach(9100) == "open"
    assert reach(5432) == "dropped"
    assert reach(8081) == "dropped"  # no rule at all
    assert host.run("python3 -c \"import socket; socket.create_connection(('127.0.0.1', 5432), 5)\"").rc == 0


def test_the_firewall_replaces_only_its_own_table(host, listeners):
    assert host.service("erp-firewall").is_enabled
    assert host.check_output("systemctl is-enabled nftables || true") == "masked"
    # Another table (Docker's NAT, in real life) survives reloads and restarts.
    host.run_expect([0], "nft add table ip probe_other")
    try:
        host.run_expect([0], "systemctl reload erp-firewall && systemctl restart erp-firewall")
        tables = host.check_output("nft list tables")
        assert "table ip probe_other" in tables
        assert "table inet erp_firewall" in tables
        assert reach(5432) == "dropped"
        assert reach(9100) == "open"
    finally:
        host.run("nft delete table ip probe_other")
