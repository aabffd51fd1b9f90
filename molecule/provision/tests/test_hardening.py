"""After provisioning: sshd refuses root and passwords (real ssh client), a bad sshd config
never reaches sshd, the database port is open from the app host and closed from the LB
host (a real listener in db1's own Docker engine, so the DNAT/forward path is what is
tested), and Docker networking still works."""

from __future__ import annotations

import time

import pytest
from conftest import ADDRESS, NAME, SCENARIO, failure_messages, playbook, ssh

# A listener image made inside db1's engine from db1's own python (no registry needed).
BUILD_PROBE_IMAGE = (
    "docker image inspect probe/python:1 >/dev/null 2>&1 && exit 0; "
    "libs=$(for f in $(ldd /usr/bin/python3.11 | grep -o '/[^ ]*'); do "
    "echo $f | sed -e 's|^/lib64/|usr/lib64/|' -e 's|^/lib/|usr/lib/|'; readlink -f $f | sed 's|^/||'; "
    "done | sort -u); "
    "tar -C / -c usr/bin/python3.11 usr/lib/python3.11 lib lib64 bin $libs 2>/dev/null | docker import - probe/python:1"
)
LISTENER = ("import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
            "s.bind(('0.0.0.0', {port})); s.listen()\n"
            "while True:\n    c, _ = s.accept(); c.sendall(b'probe'); c.close()")
CONNECT = ("import socket, sys\ntry:\n    c = socket.create_connection(('{address}', {port}), timeout=5)\n"
           "    print(c.recv(16).decode()); sys.exit(0)\nexcept OSError as e:\n    print(e); sys.exit(1)")


def connect(client, address: str, port: int):
    return client.run(f'python3 -c "{CONNECT.format(address=address, port=port)}"')


def test_sshd_runs_with_the_hardened_settings(db):
    effective = db.check_output("sshd -T")
    for line in ("permitrootlogin no", "passwordauthentication no", "kbdinteractiveauthentication no",
                 "authenticationmethods publickey", "allowgroups erp-ssh", "x11forwarding no",
                 "ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,"
                 "aes256-ctr,aes128-ctr"):
        assert line in effective.splitlines()
    assert db.service("ssh").is_running


def test_password_login_is_not_even_offered(lb):
    result = ssh(lb, "alice", "db", extra="-o PreferredAuthentications=password,keyboard-interactive "
                                          "-o PubkeyAuthentication=no")
    assert result.rc == 255
    assert "Permission denied (publickey)" in result.stderr


@pytest.fixture
def root_key_on_db(lb, db):
    """root on db1 with an authorized key whose private half is on lb1."""
    lb.run_expect([0], "test -f /root/probe_root || ssh-keygen -q -t ed25519 -N '' -f /root/probe_root")
    public = lb.check_output("cat /root/probe_root.pub")
    db.run_expect([0], f"install -d -m 700 /root/.ssh && echo '{public}' >> /root/.ssh/authorized_keys")
    yield "/root/probe_root"
    db.run("sed -i '/probe_root\\|root@/d' /root/.ssh/authorized_keys")


def test_root_login_is_refused_even_with_an_authorized_key(lb, root_key_on_db):
    result = ssh(lb, "root", "db", key=root_key_on_db)
    assert result.rc == 255
    assert "Permission denied" in result.stderr


def test_a_bad_sshd_setting_is_refused_before_it_reaches_sshd(db, tmp_path):
    dropin = "/etc/ssh/sshd_config.d/00-erp-hardening.conf"
    before = db.file(dropin).sha256sum
    proc = playbook(SCENARIO / "apply_role.yml", "-l", NAME["db"], tmp=tmp_path,
                    extra={"stage_role": "hardening", "hardening_ssh_ciphers": ["no-such-cipher"]})
    assert proc.returncode != 0
    assert "Bad SSH2 cipher spec" in failure_messages(proc) or "no-such-cipher" in failure_messages(proc)
    assert db.file(dropin).sha256sum == before
    assert db.service("ssh").is_running
    assert "ciphers chacha20-poly1305@openssh.com" in db.check_output("sshd -T")


def test_firewall_is_its_own_table_beside_dockers(db):
    tables = db.check_output("nft list tables")
    assert "table inet erp_firewall" in tables
    assert "table ip nat" in tables  # Docker's NAT, made through iptables-nft, is still there
    assert db.service("erp-firewall").is_enabled
    assert db.check_output("systemctl is-enabled nftables || true") == "masked"


@pytest.fixture(scope="module")
def listeners(db):
    """A real listener on 5432 and one on 8081, each published from a container in db1's engine."""
    db.run_expect([0], BUILD_PROBE_IMAGE)
    for name, port in (("probe-db", 5432), ("probe-web", 8081)):
        db.run(f"docker rm -f {name}")
        db.run_expect([0], f"docker run -d --name {name} -p {port}:{port} probe/python:1 "
                           f'/usr/bin/python3.11 -c "{LISTENER.format(port=port)}"')
    for _ in range(30):
        if connect(db, "127.0.0.1", 5432).rc == 0 and connect(db, "127.0.0.1", 8081).rc == 0:
            break
        time.sleep(1)
    yield
    db.run("docker rm -f probe-db probe-web")


def test_database_port_is_open_from_the_app_host(app, listeners):
    result = connect(app, ADDRESS["db"], 5432)
    assert result.rc == 0, result.stdout
    assert result.stdout.strip() == "probe"


def test_database_port_is_closed_from_the_lb_host(lb, listeners):
    result = connect(lb, ADDRESS["db"], 5432)
    assert result.rc == 1
    assert "timed out" in result.stdout


def test_published_ports_without_a_rule_are_closed_to_other_hosts(app, listeners):
    assert connect(app, ADDRESS["db"], 8081).rc == 1


def test_containers_still_publish_ports_and_reach_out(db, listeners):
    assert connect(db, "127.0.0.1", 8081).stdout.strip() == "probe"
    # From a container in db1's engine out through the engine's NAT to sshd on app1.
    outbound = db.run("docker run --rm probe/python:1 /usr/bin/python3.11 -c "
                      f"\"import socket; print(socket.create_connection(('{ADDRESS['app']}', 22), 5).recv(7))\"")
    assert outbound.rc == 0, outbound.stderr
    assert "SSH-2.0" in outbound.stdout


def test_reloading_or_restarting_the_firewall_keeps_dockers_rules(db, app, lb, listeners):
    db.run_expect([0], "systemctl reload erp-firewall")
    db.run_expect([0], "systemctl restart erp-firewall")
    assert connect(app, ADDRESS["db"], 5432).stdout.strip() == "probe"
    assert connect(lb, ADDRESS["db"], 5432).rc == 1
