"""The off-host copy (rsync over SSH, checked with sha256sum on arrival) and the dead-man ping,
against a real SSH backup host (a container with sshd and rsync) and a local HTTP server."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from pathlib import Path

import pytest
from backup_env import RUN_ID, Jobs, docker

HOST_IMAGE = "bk-test-backup-host:1"
BACKUP_DIR = "/srv/erp-backups"

# A backup host whose disk damages what arrives: runs the client's command (rsync --server,
# sha256sum), then flips one byte of every dump that rsync just wrote.
CORRUPTING_SHELL = f"""#!/bin/sh
sh -c "$SSH_ORIGINAL_COMMAND"
rc=$?
case "$SSH_ORIGINAL_COMMAND" in
  rsync\\ --server*)
    for dump in {BACKUP_DIR}/*/erp.dump; do
      printf X | dd of="$dump" bs=1 seek=100 conv=notrunc 2>/dev/null
    done ;;
esac
exit $rc
"""


class BackupHost:
    def __init__(self, name: str, port: int, key: Path, known_hosts: Path) -> None:
        self.name, self.port, self.key, self.known_hosts = name, port, key, known_hosts

    @property
    def ssh_command(self) -> str:
        return (f"/usr/bin/ssh -p {self.port} -i {self.key} -o BatchMode=yes -o ConnectTimeout=10"
                f" -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={self.known_hosts}")

    def run(self, command: str) -> subprocess.CompletedProcess:
        return docker("exec", "-u", "erpbackup", self.name, "sh", "-c", command, check=False)

    def copies(self) -> list[str]:
        return sorted(self.run(f"ls {BACKUP_DIR}").stdout.split())

    def authorize(self, options: str = "") -> None:
        public = self.key.with_suffix(".pub").read_text().strip()
        line = f"{options} {public}".strip()
        docker("exec", "-u", "erpbackup", self.name, "sh", "-c",
               f"printf '%s\\n' '{line}' > /home/erpbackup/.ssh/authorized_keys"
               " && chmod 600 /home/erpbackup/.ssh/authorized_keys")


@pytest.fixture(scope="module")
def backup_host(tmp_path_factory, network):
    docker("build", "-q", "-t", HOST_IMAGE, str(Path(__file__).parent / "backup-host"), timeout=900)
    keys = tmp_path_factory.mktemp("offhost")
    key = keys / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    name = f"{RUN_ID}-backup-host"
    docker("run", "-d", "--name", name, "--network", network, "-p", "127.0.0.1::22", HOST_IMAGE)
    port = int(docker("port", name, "22/tcp").stdout.strip().splitlines()[0].rsplit(":", 1)[1])
    host = BackupHost(name, port, key, keys / "known_hosts")
    host.authorize()
    deadline = time.monotonic() + 60
    while subprocess.run([*host.ssh_command.split(), "erpbackup@127.0.0.1", "true"],
                         capture_output=True, check=False).returncode != 0:
        assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-2000:]
        time.sleep(0.5)
    yield host
    docker("rm", "-f", "-v", name, check=False)


@pytest.fixture
def offhost(backup_host):
    backup_host.authorize()
    backup_host.run(f"rm -rf {BACKUP_DIR}/* {BACKUP_DIR}/.[!.]*")
    return backup_host


def configure_offhost(jobs: Jobs, host: BackupHost, **overrides) -> None:
    jobs.configure(ERP_BACKUP_OFFHOST_TARGET=f"erpbackup@127.0.0.1:{BACKUP_DIR}",
                   ERP_BACKUP_OFFHOST_SSH=host.ssh_command, **overrides)


def test_each_backup_is_copied_off_host_and_checked_there(jobs: Jobs, offhost: BackupHost):
    configure_offhost(jobs, offhost)
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    [backup] = jobs.backups()
    assert offhost.copies() == [backup.name]
    assert f"off-host copy verified: erpbackup@127.0.0.1:{BACKUP_DIR}/{backup.name}" in result.stderr
    # The copy is complete: every file, and the checksums hold on the backup host.
    listed = offhost.run(f"cd {BACKUP_DIR}/{backup.name} && ls && sha256sum --quiet -c SHA256SUMS")
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == sorted(p.name for p in backup.iterdir())
    assert jobs.metrics()["erp_backup_last_success"] == 1


def test_a_copy_damaged_on_arrival_fails_the_backup_loudly(jobs: Jobs, offhost: BackupHost):
    assert jobs.run("erp-backup").returncode == 0  # a good backup without the off-host copy
    last_success = jobs.metrics()["erp_backup_last_success_timestamp_seconds"]
    shell = jobs.root / "corrupting-shell"
    shell.write_text(CORRUPTING_SHELL)
    docker("cp", str(shell), f"{offhost.name}:/usr/local/bin/corrupting-shell")
    docker("exec", offhost.name, "chmod", "755", "/usr/local/bin/corrupting-shell")
    offhost.authorize('command="/usr/local/bin/corrupting-shell"')
    configure_offhost(jobs, offhost)
    result = jobs.run("erp-backup")
    assert result.returncode == 1, result.stderr
    assert "does not match its checksums" in result.stderr
    metrics = jobs.metrics()
    assert metrics["erp_backup_last_success"] == 0
    assert metrics["erp_backup_last_success_timestamp_seconds"] == last_success
    # The local backup is good and stays; retention did not run after the failure.
    assert len(jobs.backups()) == 2
    for backup in jobs.backups():
        assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=backup, check=False).returncode == 0


def test_an_unreachable_backup_host_fails_the_backup(jobs: Jobs, offhost: BackupHost):
    jobs.configure(ERP_BACKUP_OFFHOST_TARGET=f"erpbackup@127.0.0.1:{BACKUP_DIR}",
                   ERP_BACKUP_OFFHOST_SSH=offhost.ssh_command.replace(f"-p {offhost.port}", "-p 1"))
    result = jobs.run("erp-backup")
    assert result.returncode == 1
    assert f"off-host copy to erpbackup@127.0.0.1:{BACKUP_DIR} failed" in result.stderr
    assert jobs.metrics()["erp_backup_last_success"] == 0


class PingRecorder(http.server.BaseHTTPRequestHandler):
    requests: list[str]

    def do_GET(self):
        self.requests.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def ping_server():
    handler = type("Recorder", (PingRecorder,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler.requests
    server.shutdown()
    server.server_close()


def test_a_successful_backup_pings_the_dead_man_url_once(jobs: Jobs, ping_server):
    url, requests = ping_server
    jobs.configure(ERP_BACKUP_DEADMAN_URL=f"{url}/ping/erp-db1")
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    assert requests == ["/ping/erp-db1"]


def test_a_failed_backup_does_not_ping(jobs: Jobs, ping_server):
    url, requests = ping_server
    jobs.configure(ERP_BACKUP_DEADMAN_URL=f"{url}/ping/erp-db1", ERP_BACKUP_MIN_BYTES=50_000_000)
    result = jobs.run("erp-backup")
    assert result.returncode == 1
    assert requests == []


def test_an_unreachable_ping_url_is_logged_and_the_good_backup_stands(jobs: Jobs):
    jobs.configure(ERP_BACKUP_DEADMAN_URL="http://127.0.0.1:1/ping/erp-db1")
    result = jobs.run("erp-backup")
    assert result.returncode == 0, result.stderr
    assert "the dead-man ping failed" in result.stderr
    # The URL's path is the credential: never in the logs.
    assert "dead-man ping http://127.0.0.1:1/... failed" in result.stderr
    assert "/ping/erp-db1" not in result.stderr
    assert jobs.metrics()["erp_backup_last_success"] == 1
