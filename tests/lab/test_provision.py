"""provision.yml on the lab's bare hosts, as an operator runs it, and the lab still working after it.

The first module on a fresh lab: it provisions (base, the Docker engine, hardening, access,
health checks), proves a second run changes nothing, then proves the hardening from outside
(a real ssh client from this machine, connections from one lab host to another) and the
access lifecycle on the hosts, and leaves the lab provisioned with ERP 1.0.0 served by the LB,
so every module after it runs on hardened hosts. People the tests add are removed again.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import LAB_NAME, REPO, ensure_release, internal_addresses, playbook, recap, served_versions

MATRIX = yaml.safe_load((REPO / "inventories" / "lab" / "group_vars" / "lab" / "access.yml").read_text())
PEOPLE = MATRIX["access_people"]
CONNECT = ("import socket, sys\ntry:\n    socket.create_connection(('{address}', {port}), timeout=5)\n"
           "except OSError as e:\n    print(type(e).__name__); sys.exit(1)")


def ssh_argv(host, user: str, key: str, *options: str, command: str = "id -Gn") -> list[str]:
    """A real ssh client on this machine logging in to a lab host as `user` with `key`."""
    return ["ssh", "-p", str(host.port), "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={host.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "ConnectTimeout=10", *options, f"{user}@127.0.0.1", command]


def login(host, user: str, key: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_argv(host, user, key, *options), capture_output=True, text=True, timeout=60)


def connect_from(host, address: str, port: int) -> subprocess.CompletedProcess:
    """A TCP connection from a lab host to address:port: exit 0 when it is accepted."""
    return host.ssh(f'python3 -c "{CONNECT.format(address=address, port=port)}"', check=False)


def provision(*args: str, people: list | None = None, tmp=None) -> subprocess.CompletedProcess:
    extra = []
    if people is not None:
        matrix = tmp / "matrix.json"
        matrix.write_text(json.dumps({"access_people": people}))
        extra = ["-e", f"@{matrix}"]
    return playbook("provision.yml", "-l", "lab", *args, *extra)


@pytest.fixture(scope="module")
def provisioned(lab_hosts):
    """Bare lab hosts provisioned twice, then ERP 1.0.0 deployed on the hardened hosts."""
    first = provision()
    assert first.returncode == 0, first.output[-5000:]
    second = provision()
    assert second.returncode == 0, second.output[-5000:]
    ensure_release(lab_hosts, "1.0.0")
    return first, second


def test_bare_hosts_converge_and_a_second_run_changes_nothing(provisioned, lab_hosts):
    first, second = provisioned
    assert set(recap(first)) == set(lab_hosts)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in recap(first).values())
    assert {host: stats["changed"] for host, stats in recap(second).items()} == dict.fromkeys(lab_hosts, 0)
    assert all(stats["failed"] == 0 and stats["unreachable"] == 0 for stats in recap(second).values())


def test_the_bootstrap_user_still_logs_in_and_administers_every_host(provisioned, lab_hosts):
    for host in lab_hosts.values():
        assert "erp-ssh" in host.ssh("id -Gn").stdout.split()
        assert host.ssh("sudo -n docker info --format '{{.Name}}'").stdout.strip() == host.name
        assert host.ssh("sudo -n nft list table inet erp_firewall").returncode == 0


def http_get(address: str, port: int, path: str) -> str:
    """The body of a GET from this machine, or how the connection failed: refused or dropped."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=10) as response:
            return response.read().decode()
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            return "refused"
        raise
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "dropped"


def test_the_lab_serves_erp_through_the_lb_and_the_controller_reaches_internal_ports(provisioned, lab_hosts):
    assert served_versions() == {"1.0.0"}
    address = internal_addresses()
    assert json.loads(http_get(address["lb1"], 80, "/version"))["version"] == "1.0.0"
    assert "haproxy_" in http_get(address["lb1"], 8404, "/metrics")
    for host in (h for h in lab_hosts.values() if h.group == "erp_app"):
        # One slot serves, the other is stopped: its port must answer with a refusal, not the
        # silence of a dropped packet.
        answers = [http_get(address[host.name], port, "/version") for port in (8001, 8002)]
        assert sorted("refused" if a == "refused" else json.loads(a)["version"] for a in answers) == [
            "1.0.0", "refused"], (host.name, answers)


def test_root_login_is_refused_even_with_an_authorized_key(provisioned, lab_hosts):
    host = lab_hosts["lb1"]
    public_key = Path(f"{host.key}.pub").read_text().split()[:2]
    host.ssh(f"sudo install -d -m 700 /root/.ssh && echo '{' '.join(public_key)} root-probe' "
             "| sudo tee -a /root/.ssh/authorized_keys")
    try:
        refused = login(host, "root", host.key)
    finally:
        host.ssh("sudo sed -i '/ root-probe$/d' /root/.ssh/authorized_keys")
    assert refused.returncode == 255
    assert "Permission denied" in refused.stderr


def test_password_login_is_not_even_offered(provisioned, lab_hosts):
    host = lab_hosts["lb1"]
    refused = login(host, host.user, host.key, "-o", "PubkeyAuthentication=no",
                    "-o", "PreferredAuthentications=password,keyboard-interactive")
    assert refused.returncode == 255
    assert "Permission denied (publickey)" in refused.stderr


@pytest.mark.parametrize("after", ["provisioning", "a firewall restart"])
def test_the_database_port_is_open_from_an_app_host_and_closed_from_the_lb_host(provisioned, lab_hosts, after):
    # PostgreSQL is the erp-db container's published port: Docker's DNAT path, not input.
    if after == "a firewall restart":
        lab_hosts["db1"].ssh("sudo -n systemctl restart erp-firewall")
    db = internal_addresses()["db1"]
    opened = connect_from(lab_hosts["app1"], db, 5432)
    assert opened.returncode == 0, opened.stdout
    closed = connect_from(lab_hosts["lb1"], db, 5432)
    assert closed.returncode == 1
    assert closed.stdout.strip() == "TimeoutError"  # dropped by the firewall, not refused


@pytest.fixture(scope="module")
def dave(provisioned, tmp_path_factory):
    """A new person's key pair on this machine (the lifecycle test removes their accounts)."""
    tmp = tmp_path_factory.mktemp("dave")
    key = tmp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dave@lab-test", "-f", str(key)], check=True)
    return {"key": str(key), "public": (tmp / "id_ed25519.pub").read_text().strip(), "tmp": tmp}


def with_dave(dave, **fields) -> list[dict]:
    person = {"name": "dave", "full_name": "Dave (lab test)", "keys": [dave["public"]], **fields}
    return [*copy.deepcopy(PEOPLE), person]


def apply_access(dave, people):
    proc = provision("--tags", "access", people=people, tmp=dave["tmp"])
    assert proc.returncode == 0, proc.output[-5000:]


def groups_of(host, user):
    return set(host.ssh(f"id -Gn {user}").stdout.split())


def sudo_rights(host, user):
    return host.ssh(f"sudo -n sudo -l -U {user}").stdout


def key_fingerprints(host, user):
    return host.ssh(f"sudo -n ssh-keygen -lf /home/{user}/.ssh/authorized_keys", check=False).stdout


def test_access_lifecycle_add_change_role_deactivate(provisioned, lab_hosts, dave):
    app1, db1 = lab_hosts["app1"], lab_hosts["db1"]
    fingerprint = subprocess.run(["ssh-keygen", "-lf", dave["key"] + ".pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    try:
        # 1. Added as a deployer: an account on app and LB hosts, none on the database host.
        apply_access(dave, with_dave(dave, roles=["deployer"]))
        assert groups_of(app1, "dave") == {"dave", "erp-deploy", "erp-ssh"}
        assert "(root) NOPASSWD: /usr/local/sbin/erp-ops" in sudo_rights(app1, "dave")
        assert fingerprint in key_fingerprints(app1, "dave")
        # Status and logs of the ERP containers, through erp-ops; docker itself is root: refused.
        as_dave = subprocess.run(ssh_argv(app1, "dave", dave["key"], command=(
            "sudo -n /usr/local/sbin/erp-ops status && sudo -n /usr/local/sbin/erp-ops logs erp-db --tail 1;"
            " sudo -n /usr/bin/docker ps")), capture_output=True, text=True, timeout=60)
        assert "erp-app-" in as_dave.stdout, as_dave.stdout + as_dave.stderr
        assert "'erp-db' is not an ERP container here" in as_dave.stderr
        assert "a password is required" in as_dave.stderr or "not allowed" in as_dave.stderr, as_dave.stderr
        assert db1.ssh("getent passwd dave", check=False).returncode == 2
        assert "erp-deploy" in login(app1, "dave", dave["key"]).stdout.split()

        # 2. Moved to dba: the database host gets the account, app hosts deactivate theirs.
        apply_access(dave, with_dave(dave, roles=["dba"]))
        assert groups_of(db1, "dave") == {"dave", "erp-dba", "erp-ssh"}
        assert "/usr/bin/docker exec -it erp-db *" in sudo_rights(db1, "dave")
        assert fingerprint in key_fingerprints(db1, "dave")
        assert groups_of(app1, "dave") == {"dave"}
        assert "not allowed to run sudo" in sudo_rights(app1, "dave")
        assert app1.ssh("sudo -n test -e /home/dave/.ssh/authorized_keys", check=False).returncode == 1
        refused = login(app1, "dave", dave["key"])
        assert refused.returncode == 255 and "Permission denied" in refused.stderr
        assert login(db1, "dave", dave["key"]).returncode == 0

        # 3. Deactivated while logged in: session ended, account locked, keys gone, home kept.
        session = subprocess.Popen(ssh_argv(db1, "dave", dave["key"], command="sleep 600"),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(30):
                if db1.ssh("pgrep -u dave -x sleep", check=False).returncode == 0:
                    break
                time.sleep(1)
            else:
                pytest.fail("dave's ssh session never started on db1")
            apply_access(dave, with_dave(dave, roles=["dba"], state="inactive"))
            session.wait(timeout=30)
        finally:
            session.kill()
        assert db1.ssh("pgrep -u dave", check=False).returncode == 1
        assert groups_of(db1, "dave") == {"dave"}
        assert "not allowed to run sudo" in sudo_rights(db1, "dave")
        assert db1.ssh("sudo -n test -e /home/dave/.ssh/authorized_keys", check=False).returncode == 1
        assert db1.ssh("sudo -n test -d /home/dave").returncode == 0
        assert "Account expires : Jan 02, 1970" in " ".join(db1.ssh("sudo -n chage -l dave").stdout.split())
        assert login(db1, "dave", dave["key"]).returncode == 255
    finally:
        # The lab's own matrix never changed (each step passed its matrix with -e): only the
        # accounts made for dave are left to remove.
        for host in lab_hosts.values():
            host.ssh("sudo -n pkill -KILL -u dave; id dave && sudo -n userdel -r dave", check=False)


def test_a_person_taken_out_of_the_matrix_can_no_longer_log_in_or_sudo(provisioned, lab_hosts, dave):
    """Removing someone from the matrix (not marking them inactive) removes their access: the
    account left in the matrix's groups is deactivated, named in the run, its session ended."""
    app1 = lab_hosts["app1"]
    try:
        apply_access(dave, with_dave(dave, roles=["admin"]))
        assert "erp-admin" in login(app1, "dave", dave["key"]).stdout.split()
        proc = provision("--tags", "access", people=copy.deepcopy(PEOPLE), tmp=dave["tmp"])
        assert proc.returncode == 0, proc.output[-5000:]
        assert "Locking dave: not in the access matrix, yet in erp-admin, erp-ssh" in " ".join(proc.output.split())
        assert groups_of(app1, "dave") == {"dave"}
        assert "not allowed to run sudo" in sudo_rights(app1, "dave")
        assert app1.ssh("sudo -n test -e /home/dave/.ssh/authorized_keys", check=False).returncode == 1
        assert login(app1, "dave", dave["key"]).returncode == 255
        # The lab's own people and the account Ansible connects as keep their access.
        assert "erp-admin" in groups_of(app1, "alice")
        assert app1.ssh("sudo -n true").returncode == 0
    finally:
        for host in lab_hosts.values():
            host.ssh("sudo -n pkill -KILL -u dave; id dave && sudo -n userdel -r dave", check=False)


def test_an_account_added_by_hand_is_drift_in_the_access_review(provisioned, lab_hosts, tmp_path):
    app1 = lab_hosts["app1"]
    app1.ssh("id mallory || sudo -n useradd -m -s /bin/bash mallory")
    try:
        proc = playbook("access_review.yml", "-l", "lab", "-e", f"access_review_report_dir={tmp_path}")
    finally:
        app1.ssh("sudo -n userdel -r mallory", check=False)
    assert proc.returncode == 0, proc.output[-4000:]
    (report,) = tmp_path.glob("access-review-*.json")
    findings = json.loads(report.read_text())["findings"]
    # A freshly provisioned lab matches its matrix: the hand-made account is the only drift.
    assert [(f["kind"], f["host"], f["account"]) for f in findings] == [("unknown_account", "app1", "mallory")]
    markdown = report.with_suffix(".md").read_text()
    assert "| unknown_account | app1 | `mallory` |" in markdown
    assert "## 5. Reviewer sign-off" in markdown


EVE = {"name": "eve", "roles": ["auditor"]}


@pytest.mark.parametrize(("people", "message"), [
    ([*PEOPLE, {**EVE, "roles": ["auditr"]}],
     "access_people[3].roles[0]: unknown role 'auditr' (known: admin, auditor, dba, deployer)"),
    ([*PEOPLE, {**EVE, "keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNW eve@lab"]}],
     "access_people[3].keys[0]: not an OpenSSH public key: the key data is not valid"),
    ([*PEOPLE, EVE, {**EVE, "roles": ["dba"]}], "access_people[4].name: 'eve' is listed twice (also access_people[3])"),
    ([{**person, "roles": ["auditor"]} if "admin" in person["roles"] else person for person in PEOPLE],
     "access_people: no active, unexpired person holds the role 'admin': refusing a matrix that would leave no admin"),
], ids=["unknown-role", "malformed-key", "duplicate-user", "no-admin"])
def test_bad_matrix_is_refused_before_any_host_changes(provisioned, lab_hosts, people, message, tmp_path):
    proc = provision(people=people, tmp=tmp_path)
    assert proc.returncode != 0
    assert message in proc.output
    assert "Traceback" not in proc.output
    assert "PLAY [Provision]" not in proc.stdout  # stopped in the input checks
    assert {host: stats["changed"] for host, stats in recap(proc).items()} == dict.fromkeys(lab_hosts, 0)
    assert lab_hosts["app1"].ssh("getent passwd eve", check=False).returncode == 2


def answers(host) -> bool:
    """Whether a new SSH session to ``host`` logs in (the lab's bootstrap account) within a
    few seconds: a firewall that drops the connection leaves it waiting."""
    try:
        return host.ssh("true", check=False, timeout=8).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def test_a_firewall_change_that_cuts_the_controller_off_undoes_itself(provisioned, lab_hosts):
    """Admin networks that leave out the controller: once the new ruleset is applied the
    controller cannot log in again; the run fails saying so, and each host puts its previous
    ruleset back by itself when the confirmation time runs out."""
    rulesets = {name: host.ssh("sudo cat /etc/erp/firewall.nft").stdout for name, host in lab_hosts.items()}
    started = time.monotonic()
    proc = provision("--tags", "hardening", "-e", '{"hardening_firewall_admin_networks": ["192.0.2.1/32"]}',
                     "-e", "hardening_confirm_seconds=30")
    said = " ".join(proc.output.split())
    assert proc.returncode != 0
    for name in lab_hosts:
        assert f"{name}: after this change of sshd's or the firewall's settings this controller could not log " \
               "in again; the host puts its previous settings back by itself within 30 s" in said, said[-3000:]
    assert "Traceback" not in proc.output
    while time.monotonic() < started + 150 and not all(answers(host) for host in lab_hosts.values()):
        time.sleep(3)
    lost = [name for name, host in lab_hosts.items() if not answers(host)]
    for name in lost:  # the lab must stay usable for the modules after this one
        subprocess.run(["docker", "exec", f"{LAB_NAME}-{name}", "nft", "delete", "table", "inet", "erp_firewall"],
                       capture_output=True, timeout=60)
    assert lost == [], "these hosts did not put their firewall back"
    for name, host in lab_hosts.items():
        assert host.ssh("sudo cat /etc/erp/firewall.nft").stdout == rulesets[name]
        assert "settings put back" in host.ssh("sudo journalctl -t erp-hardening --no-pager").stdout
    # The right settings once more: nothing to change, nothing armed.
    again = provision("--tags", "hardening")
    assert again.returncode == 0, again.output[-3000:]
    assert all(stats["changed"] == 0 for stats in recap(again).values()), recap(again)
