#!/usr/bin/env python3
"""The local lab: real Debian 12 hosts as containers on one machine.

Each host runs systemd as PID 1, sshd and (once the docker_engine role has run) its own
Docker engine, so the repository's playbooks reach them over real SSH exactly as they
reach servers. Beside them runs the lab's private image registry, where the reference
ERP images are pushed.

    labctl up       build images (cached), start registry + hosts, write the inventory,
                    push the ERP images, install each host's engine with the docker_engine role
    labctl down     remove every container, network and volume the lab made
    labctl status   one line per lab container
    labctl reset    down, then up
    labctl images   only build the images (what molecule and the tests need)

Standard library only, so it runs before the toolchain exists.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_DIR = Path(__file__).resolve().parent
STATE_DIR = REPO / ".lab"
INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"
VENV_BIN = REPO / ".venv" / "bin"

# LAB_NAME keeps two labs on one machine apart (say, a CI checkout beside a working one):
# it names the network and prefixes every container and volume. Ports move with
# LAB_SSH_BASE_PORT, LAB_HTTP_PORT and LAB_REGISTRY_PORT.
LAB_NAME = os.environ.get("LAB_NAME", "erplab")
LAB_NAME_PATTERN = r"[a-z][a-z0-9]{1,19}"
NETWORK = LAB_NAME
PREFIX = f"{LAB_NAME}-"
LABEL = f"io.erplab.lab={LAB_NAME}"
HOST_IMAGE = "erplab/host:bookworm"
REGISTRY_IMAGE = "erplab/registry:2.8"
BASE_IMAGE = "debian:bookworm-slim"
BOOTSTRAP_USER = "debian"

# ERP releases and the faulty builds used by the deploy tests; each is a tag of its own.
ERP_RELEASES = ("1.0.0", "1.1.0")
ERP_FAULTS = ("crash", "never-ready", "database-fails", "slow-ready", "fails-after-ready", "errors-500",
              "migration-hangs")
FAULTY_BASE_RELEASE = "1.1.0"

# Every capability but SYS_RESOURCE (missing from this machine's bounding set), and
# without BPF/PERFMON/CHECKPOINT_RESTORE, which this engine rejects: the fallback for
# machines where --privileged is refused (see shared/LAB-NOTES.md).
NESTED_CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE",
    "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ",
)


class LabError(Exception):
    """A problem the user can act on; printed as one line, never a traceback."""


@dataclass(frozen=True)
class LabHost:
    name: str
    group: str
    ssh_port: int
    http_port: int | None = None

    @property
    def container(self) -> str:
        return PREFIX + self.name

    @property
    def volume(self) -> str:
        return f"{PREFIX}{self.name}-docker"


def env_int(name: str, default: int, minimum: int = 1) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise LabError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise LabError(f"{name}={value} must be at least {minimum}")
    return value


def topology() -> list[LabHost]:
    """lb1, app1..appN, db1; SSH on consecutive 127.0.0.1 ports from LAB_SSH_BASE_PORT."""
    app_hosts = env_int("LAB_APP_HOSTS", 2)
    if app_hosts > 9:
        raise LabError(f"LAB_APP_HOSTS={app_hosts}: at most 9 app hosts fit on one machine")
    base = env_int("LAB_SSH_BASE_PORT", 2201, minimum=1024)
    http = env_int("LAB_HTTP_PORT", 8080, minimum=1024)
    hosts = [LabHost("lb1", "erp_lb", base, http_port=http), LabHost("db1", "erp_db", base + 1)]
    hosts += [LabHost(f"app{i}", "erp_app", base + 1 + i) for i in range(1, app_hosts + 1)]
    return hosts


def registry_port() -> int:
    return env_int("LAB_REGISTRY_PORT", 5000, minimum=1024)


# --------------------------------------------------------------------------- helpers

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[lab {time.monotonic() - _started:6.1f}s] {message}", flush=True)


def run(*cmd: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=capture, text=True)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise LabError(f"`{' '.join(cmd[:4])}...` failed: {detail[-1] if detail else 'exit ' + str(proc.returncode)}")
    return proc


def docker(
    *args: str, check: bool = True, capture: bool = True,
) -> subprocess.CompletedProcess:
    return run("docker", *args, check=check, capture=capture)


def require_engine() -> None:
    if shutil.which("docker") is None:
        raise LabError("no docker command: run `make setup` first")
    if docker("info", "--format", "{{.ServerVersion}}", check=False).returncode != 0:
        raise LabError("no Docker engine answers: run `make setup` (it installs and starts one)")


def container_state(name: str) -> str | None:
    proc = docker("inspect", "--format", "{{.State.Status}}", name, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def published_by_lab(port: int) -> bool:
    proc = docker("ps", "--format", "{{.Names}} {{.Ports}}", check=False)
    return any(line.startswith(PREFIX) and f"127.0.0.1:{port}->" in line for line in proc.stdout.splitlines())


def check_port_free(port: int, what: str) -> None:
    if published_by_lab(port):
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise LabError(
                f"port 127.0.0.1:{port} ({what}) is already taken by another program; "
                "free it or move the lab (LAB_SSH_BASE_PORT, LAB_HTTP_PORT, LAB_REGISTRY_PORT)"
            ) from None


def check_disk(min_gb: int = 8) -> None:
    root = docker("info", "--format", "{{.DockerRootDir}}").stdout.strip() or "/var/lib/docker"
    free_gb = shutil.disk_usage(root if os.path.exists(root) else "/").free // 2**30
    if free_gb < min_gb:
        raise LabError(f"not enough disk: {free_gb} GB free under {root}, the lab needs {min_gb} GB")


# --------------------------------------------------------------------------- images


def build(tag: str, context: Path, build_args: dict[str, str] | None = None) -> None:
    args = ["build", "-q", "-t", tag]
    for key, value in (build_args or {}).items():
        args += ["--build-arg", f"{key}={value}"]
    started = time.monotonic()
    docker(*args, str(context))
    progress(f"image {tag}: ready ({time.monotonic() - started:.0f}s)")


def erp_app_tags() -> list[tuple[str, str, str]]:
    """(tag, ERP_VERSION, ERP_FAULT) for every reference release and faulty build."""
    tags = [(release, release, "none") for release in ERP_RELEASES]
    for fault in ERP_FAULTS:
        tag = f"{FAULTY_BASE_RELEASE}-fault-{fault}"
        tags.append((tag, tag, fault))
    return tags


def build_images(with_erp: bool = True) -> None:
    progress("building images (cached after the first run)")
    run(str(LAB_DIR / "images" / "base" / "build.sh"), capture=False)
    build(HOST_IMAGE, LAB_DIR / "images" / "host")
    if not with_erp:
        return
    build(REGISTRY_IMAGE, LAB_DIR / "images" / "registry")
    build("postgres:15", LAB_DIR / "images" / "postgres")
    for tag, version, fault in erp_app_tags():
        build(f"erp-app:{tag}", LAB_DIR / "images" / "erp-app", {"ERP_VERSION": version, "ERP_FAULT": fault})


def push_images() -> None:
    port = registry_port()
    # The base image too: roles that build a small image on a host (HAProxy) start FROM it,
    # as a real site's hosts would from its own registry.
    images = [BASE_IMAGE, "postgres:15"] + [f"erp-app:{tag}" for tag, _, _ in erp_app_tags()]
    progress(f"pushing {len(images)} images into the lab registry (127.0.0.1:{port}, hosts see it as registry:5000)")
    for image in images:
        remote = f"127.0.0.1:{port}/{image}"
        docker("tag", image, remote)
        for attempt in range(3):
            if docker("push", remote, check=attempt == 2).returncode == 0:
                break
            time.sleep(2)
        docker("rmi", remote, check=False)
    progress("images pushed")


# --------------------------------------------------------------------------- containers


def ensure_network() -> None:
    if docker("network", "inspect", NETWORK, check=False).returncode != 0:
        docker("network", "create", "--label", LABEL, NETWORK)


def ensure_registry() -> None:
    name = PREFIX + "registry"
    state = container_state(name)
    if state is None:
        docker(
            "run", "-d", "--name", name, "--hostname", "registry", "--label", LABEL,
            "--network", NETWORK, "--network-alias", "registry", "--restart", "unless-stopped",
            "-p", f"127.0.0.1:{registry_port()}:5000",
            "-v", f"{PREFIX}registry-data:/var/lib/docker-registry",
            REGISTRY_IMAGE,
        )
    elif state != "running":
        docker("start", name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if _http_ok(f"http://127.0.0.1:{registry_port()}/v2/"):
            progress("registry: running")
            return
        time.sleep(1)
    raise LabError(f"the lab registry did not answer on 127.0.0.1:{registry_port()} within 30 s")


def _http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a fixed http:// URL
            return response.status < 500
    except OSError:
        return False


def host_run_args(host: LabHost) -> list[str]:
    args = [
        "-d", "--name", host.container, "--hostname", host.name, "--label", LABEL,
        "--label", f"io.erplab.group={host.group}",
        "--network", NETWORK, "--network-alias", host.name, "--restart", "unless-stopped",
        "--security-opt", "seccomp=unconfined", "--cgroupns=host",
        "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "-v", f"{host.volume}:/var/lib/docker",
        "-p", f"127.0.0.1:{host.ssh_port}:22",
    ]
    if host.http_port:
        args += ["-p", f"127.0.0.1:{host.http_port}:80"]
    return args


def start_host(host: LabHost) -> None:
    state = container_state(host.container)
    if state == "running":
        return
    if state is not None:
        docker("start", host.container)
        return
    docker("volume", "create", "--label", LABEL, host.volume)
    # --privileged is the normal way to nest Docker; here it fails ("unable to apply
    # caps") because the machine lacks CAP_SYS_RESOURCE, so fall back to the explicit list.
    privileged = docker("run", *host_run_args(host), "--privileged", HOST_IMAGE, check=False)
    if privileged.returncode == 0:
        return
    docker("rm", "-f", host.container, check=False)
    caps = [arg for cap in NESTED_CAPABILITIES for arg in ("--cap-add", cap)]
    docker("run", *host_run_args(host), *caps, HOST_IMAGE)


def wait_for_boot(hosts: list[LabHost], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    pending = list(hosts)
    while pending and time.monotonic() < deadline:
        for host in list(pending):
            state = docker("exec", host.container, "systemctl", "is-system-running", check=False).stdout.strip()
            ssh_up = docker("exec", host.container, "test", "-f", "/etc/ssh/ssh_host_ed25519_key.pub", check=False)
            if state in ("running", "degraded") and ssh_up.returncode == 0:
                pending.remove(host)
        time.sleep(1)
    if pending:
        raise LabError("hosts did not finish booting: " + ", ".join(h.name for h in pending))


def ensure_ssh_key() -> Path:
    STATE_DIR.mkdir(mode=0o700, exist_ok=True)
    key = STATE_DIR / "id_ed25519"
    if not key.exists():
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "erplab", "-f", str(key))
    return key


def bootstrap_account(host: LabHost, public_key: str) -> None:
    """The default sudo user a Debian cloud image gets from cloud-init, with the lab key.

    Done on every `up`, because leftover hosts from another checkout hold another key.
    """
    script = f"""set -e
id -u {BOOTSTRAP_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo {BOOTSTRAP_USER}
install -d -m 0700 -o {BOOTSTRAP_USER} -g {BOOTSTRAP_USER} /home/{BOOTSTRAP_USER}/.ssh
printf '%s\\n' "$1" > /home/{BOOTSTRAP_USER}/.ssh/authorized_keys
chown {BOOTSTRAP_USER}: /home/{BOOTSTRAP_USER}/.ssh/authorized_keys
chmod 0600 /home/{BOOTSTRAP_USER}/.ssh/authorized_keys
printf '%s ALL=(ALL) NOPASSWD:ALL\\n' {BOOTSTRAP_USER} > /etc/sudoers.d/90-cloud-init-users
chmod 0440 /etc/sudoers.d/90-cloud-init-users
"""
    docker("exec", host.container, "bash", "-c", script, "bootstrap", public_key)


def write_known_hosts(hosts: list[LabHost]) -> Path:
    lines = []
    for host in hosts:
        key = docker("exec", host.container, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        lines.append(f"[127.0.0.1]:{host.ssh_port} {key[0]} {key[1]}")
    path = STATE_DIR / "known_hosts"
    path.write_text("\n".join(lines) + "\n")
    return path


def lab_address(host: LabHost) -> str:
    fmt = "{{(index .NetworkSettings.Networks \"" + NETWORK + "\").IPAddress}}"
    return docker("inspect", "--format", fmt, host.container).stdout.strip()


def write_inventory(hosts: list[LabHost], key: Path, known_hosts: Path) -> None:
    groups: dict[str, dict] = {}
    for host in hosts:
        entry = {
            "ansible_host": "127.0.0.1",
            "ansible_port": host.ssh_port,
            "erp_internal_address": lab_address(host),
        }
        groups.setdefault(host.group, {"hosts": {}})["hosts"][host.name] = entry
    inventory = {
        "lab": {
            "vars": {
                "ansible_user": BOOTSTRAP_USER,
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes",
            },
            "children": groups,
        }
    }
    INVENTORY.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "---\n"
        "# Written by `lab/labctl.py up` for the lab on this machine; do not edit, do not commit.\n"
        "# Environment settings live in group_vars/lab.yml beside this file.\n"
    )
    # JSON is valid YAML: no third-party YAML writer needed before the toolchain exists.
    INVENTORY.write_text(header + json.dumps(inventory, indent=2) + "\n")


def ansible_playbook(*args: str) -> None:
    binary = VENV_BIN / "ansible-playbook"
    if not binary.exists():
        raise LabError("the Ansible toolchain is missing: run `make setup` first")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run([str(binary), *args], cwd=REPO, env=env)
    if proc.returncode != 0:
        raise LabError(f"ansible-playbook {' '.join(args)} failed (exit {proc.returncode}); see its output above")


# --------------------------------------------------------------------------- commands


def cmd_up(_: argparse.Namespace) -> None:
    require_engine()
    hosts = topology()
    for host in hosts:
        if container_state(host.container) is None:
            check_port_free(host.ssh_port, f"SSH of {host.name}")
            if host.http_port:
                check_port_free(host.http_port, f"HTTP of {host.name}")
    if container_state(PREFIX + "registry") is None:
        check_port_free(registry_port(), "lab registry")
    check_disk()
    build_images()
    progress("starting the registry and hosts: " + ", ".join(h.name for h in hosts))
    ensure_network()
    ensure_registry()
    for host in hosts:
        start_host(host)
    remove_surplus_hosts(hosts)
    wait_for_boot(hosts)
    key = ensure_ssh_key()
    public_key = Path(f"{key}.pub").read_text().strip()
    for host in hosts:
        bootstrap_account(host, public_key)
    write_inventory(hosts, key, write_known_hosts(hosts))
    progress(f"hosts booted; inventory written to {INVENTORY.relative_to(REPO)}")
    push_images()
    progress("installing each host's own Docker engine with the docker_engine role")
    ansible_playbook("playbooks/docker_engine.yml", "--limit", "lab")
    progress("lab is up")
    print_status(hosts)


def remove_surplus_hosts(hosts: list[LabHost]) -> None:
    """Scaling LAB_APP_HOSTS down removes the app hosts that are no longer wanted."""
    wanted = {h.container for h in hosts} | {PREFIX + "registry"}
    for name in lab_containers():
        if name not in wanted:
            docker("rm", "-f", "-v", name)
            docker("volume", "rm", f"{name}-docker", check=False)


def lab_containers() -> list[str]:
    """This lab's containers: by label, and by name for any made before labels had values."""
    labelled = docker("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}").stdout.split()
    named = [n for n in docker("ps", "-a", "--format", "{{.Names}}").stdout.split() if n.startswith(PREFIX)]
    return sorted(set(labelled) | set(named))


def cmd_down(_: argparse.Namespace) -> None:
    require_engine()
    names = lab_containers()
    if names:
        docker("rm", "-f", "-v", *names)
    volumes = docker("volume", "ls", "-q", "--filter", f"label={LABEL}").stdout.split()
    # Volumes a lab made before labels were applied, or by a checkout elsewhere, by name.
    volumes += [v for v in docker("volume", "ls", "-q").stdout.split() if v.startswith(PREFIX) and v not in volumes]
    if volumes:
        docker("volume", "rm", *volumes)
    if docker("network", "inspect", NETWORK, check=False).returncode == 0:
        docker("network", "rm", NETWORK)
    INVENTORY.unlink(missing_ok=True)
    (STATE_DIR / "known_hosts").unlink(missing_ok=True)
    progress(f"lab removed: {len(names)} containers, {len(volumes)} volumes, network {NETWORK}")


def cmd_status(_: argparse.Namespace) -> None:
    require_engine()
    print_status(topology())


def print_status(hosts: list[LabHost]) -> None:
    print(f"{'host':<10} {'group':<9} {'state':<9} {'ssh':<16} {'engine':<10}")
    for host in hosts:
        state = container_state(host.container) or "absent"
        engine = "-"
        if state == "running":
            probe = docker("exec", host.container, "docker", "info", "--format", "{{.ServerVersion}}", check=False)
            engine = probe.stdout.strip() if probe.returncode == 0 else "none"
        print(f"{host.name:<10} {host.group:<9} {state:<9} 127.0.0.1:{host.ssh_port:<6} {engine:<10}")
    registry = container_state(PREFIX + "registry") or "absent"
    print(f"{'registry':<10} {'-':<9} {registry:<9} 127.0.0.1:{registry_port():<6} (hosts: registry:5000)")
    if INVENTORY.exists():
        print(f"\nssh: ssh -i .lab/id_ed25519 -p <port> {BOOTSTRAP_USER}@127.0.0.1")
        print(f"inventory: {INVENTORY.relative_to(REPO)}")


def cmd_reset(args: argparse.Namespace) -> None:
    cmd_down(args)
    cmd_up(args)


def cmd_images(args: argparse.Namespace) -> None:
    require_engine()
    build_images(with_erp=not args.host_only)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labctl", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="{up,down,status,reset,images}")
    sub.add_parser("up", help="build, start and configure the lab").set_defaults(func=cmd_up)
    sub.add_parser("down", help="remove every container, network and volume of the lab").set_defaults(func=cmd_down)
    sub.add_parser("status", help="show the lab's hosts").set_defaults(func=cmd_status)
    sub.add_parser("reset", help="down, then up").set_defaults(func=cmd_reset)
    images = sub.add_parser("images", help="build the lab images only")
    images.add_argument("--host-only", action="store_true", help="only the base and host images")
    images.set_defaults(func=cmd_images)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not re.fullmatch(LAB_NAME_PATTERN, LAB_NAME):
        print(f"labctl: error: LAB_NAME={LAB_NAME!r} must be 2-20 lowercase letters and digits, "
              "starting with a letter", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        print("labctl: error: name a command: up, down, status, reset or images", file=sys.stderr)
        return 2
    try:
        args.func(args)
    except LabError as error:
        print(f"labctl: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("labctl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` or similar that stopped reading: not an error of the lab.
        sys.stderr.close()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
