"""deploy.yml meeting a broken piece of infrastructure mid-rollout, under steady user traffic.

The load balancer stops answering SSH (its sshd killed, sessions and all) as the first new
slot starts, in each batch shape: a canary batch of one host, every app host in one batch,
a run for a single app host; and with draining off, where the LB's first step of a switch is
the change itself rather than a status read. No slot may stop serving before every LB confirmed traffic
moved to its replacement: users see no failed request, every app host still serves the
release it ran, the run fails and says which LB did not answer. Once SSH is back, the same
deploy run again converges (the lock of the run whose process is gone is stale, and broken).

The registry check meets a registry that requires a login (no login, a wrong one, the right
one) and a registry that is down: one line each, before anything changes.

A migration that hangs is stopped at its timeout with nothing switched; a registry lost
between the manifest check and the pull stops the deploy before anything moves; a controller
killed mid-rollout leaves users served and a lock the next deploy breaks; an undo that fails
(the old image gone, the registry down) is reported as such and the lock released; an app
host lost while its batch bakes does not stop the rollout and is named; a live
lock holder (another Unix user's process) is never broken and a gone one is; a release run
that would recreate the database container is refused before PostgreSQL is touched.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import threading
import time

import pytest
from conftest import (
    FAST,
    LAB_NAME,
    PACED,
    QUICK,
    REPO,
    Load,
    app_hosts,
    current_versions,
    ensure_release,
    playbook,
    release_state,
    secrets_in,
    served_versions,
)

SHAPES = {
    "a canary batch": [],
    "every app host in one batch": ["-e", '{"erp_rollout_batches": ["100%"]}'],
    # No status read before the change (nothing to drain): the LB's first step is the change.
    "a canary batch, no draining": ["-e", "erp_lb_server_drain=false"],
    # Last: it leaves the app hosts on two releases.
    "a single app host": ["-e", '{"erp_rollout_hosts": ["app1"]}'],
}


def engine(host: str, *argv: str) -> subprocess.CompletedProcess:
    """A command in a lab host's container, from this machine: not through the host's SSH."""
    return subprocess.run(["docker", "exec", f"{LAB_NAME}-{host}", *argv], capture_output=True, text=True,
                          timeout=60)


def slot_running(host: str, slot: str) -> bool:
    ps = engine(host, "docker", "ps", "-q", "--filter", f"name=^erp-app-{slot}$", "--filter", "status=running")
    return bool(ps.stdout.strip())


@pytest.fixture(scope="module")
def deployed(lab_hosts):
    ensure_release(lab_hosts, or_any=True)
    return lab_hosts


# Each shape deploys the other release of the one the lab runs (its second, good run
# leaves the lab there): no deploy is spent going back.
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_lb_lost_as_new_slots_start_leaves_every_old_slot_serving(deployed, shape):
    before = current_versions(deployed)
    assert len(set(before.values())) == 1
    running = next(iter(before.values()))
    target = "1.1.0" if running == "1.0.0" else "1.0.0"
    first = sorted(h.name for h in app_hosts(deployed))[0]
    idle = "green" if release_state(deployed[first])["current"]["slot"] == "blue" else "blue"
    # The trigger is the idle slot running: the container kept from an earlier release is
    # stopped, but a run that failed before this one may have left it running.
    if slot_running(first, idle):
        engine(first, "docker", "stop", f"erp-app-{idle}")
    killed = threading.Event()
    try:
        with Load(rate=PACED) as load:
            runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
                "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, *SHAPES[shape], timeout=600)))
            runner.start()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and runner.is_alive():
                if slot_running(first, idle):
                    engine("lb1", "pkill", "-x", "sshd")
                    killed.set()
                    break
                time.sleep(0.2)
            runner.join(timeout=700)
            proc = runner.result
            served_during = served_versions()
    finally:
        engine("lb1", "systemctl", "restart", "ssh")
    assert killed.is_set(), "the new slot never started: " + proc.output[-3000:]
    assert proc.returncode != 0
    assert "lb1 did not answer" in proc.output, proc.output[-4000:]
    said = " ".join(proc.output.split())
    # Where every app host stands, and the lock the unreachable LB still holds.
    stands = said.split("Hosts: ", 1)[-1]
    assert all(f"{name}: " in stands for name in before), said[-3000:]
    # The first host's undo met the silent LB too: the report says its old slot still serves.
    assert f"{first}: NOT reverted (" in stands and f"slot of {running} still runs; check it" in stands, stands
    assert "The deploy lock on lb1 could not be released (it did not answer)" in said
    assert "Traceback" not in proc.output
    assert load.failed == [], load.failed[:5]
    assert served_during == {running}
    assert current_versions(deployed) == before

    # SSH back: the next deploy of the same release goes through (the dead run's lock is stale).
    with Load(rate=PACED) as load:
        again = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, *SHAPES[shape])
    assert again.returncode == 0, again.output[-4000:]
    assert load.failed == [], load.failed[:5]
    moved = {name for name, version in current_versions(deployed).items() if version == target}
    assert moved == ({first} if shape == "a single app host" else set(before))


# A registry that requires a login, as real ones do: Debian's docker-registry with htpasswd
# (basic auth) beside the lab's own, for the registry check of lock.yml (erpctl's first step)
# and deploy.yml's preflight. The password is the lab's only; its bcrypt hash below.
LOGIN_REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
http:
  addr: :5000
auth:
  htpasswd:
    realm: lab
    path: /etc/docker/registry/htpasswd
"""
LOGIN = ("lab", "lab-only-registry-password")
HTPASSWD = "lab:$2y$10$a0Iyi7ZMTdy5uVnLPMLmVueHuCE6s2vVOrNa.o1LLG7f2rGyuI3uK\n"
ENGINE_LOGINS = "/root/.docker/config.json"


@pytest.fixture
def login_registry(tmp_path):
    (tmp_path / "config.yml").write_text(LOGIN_REGISTRY_CONFIG)
    (tmp_path / "htpasswd").write_text(HTPASSWD)
    name = f"{LAB_NAME}-loginregistry"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", name, "--label", f"io.erplab.lab={LAB_NAME}",
                    "--network", LAB_NAME, "--network-alias", "loginregistry",
                    "-v", f"{tmp_path / 'config.yml'}:/etc/docker/registry/config.yml:ro",
                    "-v", f"{tmp_path / 'htpasswd'}:/etc/docker/registry/htpasswd:ro",
                    "erplab/registry:2.8"], check=True, capture_output=True)
    yield "loginregistry:5000"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def engine_login(host: str, registry: str, user: str, password: str) -> None:
    """What docker_login (docker_engine_registry_logins) leaves in root's client config."""
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}})
    engine(host, "sh", "-c", f"mkdir -p /root/.docker && printf '%s' '{config}' > {ENGINE_LOGINS}")


def lock_check(*args: str) -> subprocess.CompletedProcess:
    return playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=check", *args, timeout=300)


def test_the_registry_check_asks_with_the_engine_s_login_and_names_each_refusal(deployed, login_registry):
    first = sorted(h.name for h in app_hosts(deployed))[0]
    at = ["-e", f"erp_registry={login_registry}", "-e", f"erp_registry_url=http://{login_registry}",
          "-e", "erp_version=1.0.0"]
    saved = engine(first, "cat", ENGINE_LOGINS)
    try:
        engine(first, "rm", "-f", ENGINE_LOGINS)
        anonymous = lock_check(*at)
        engine_login(first, login_registry, LOGIN[0], "not-the-password")
        refused = lock_check(*at)
        engine_login(first, login_registry, *LOGIN)
        admitted = lock_check(*at)
    finally:
        if saved.returncode == 0:
            engine(first, "sh", "-c", f"printf '%s' '{saved.stdout}' > {ENGINE_LOGINS}")
        else:
            engine(first, "rm", "-f", ENGINE_LOGINS)
    tag = f"{login_registry}/erp-app:1.0.0"
    for proc, says in ((anonymous, "cannot be checked: the registry requires a login the engine does not have"),
                       (refused, "cannot be checked: the registry refused the engine's login (HTTP 401)"),
                       # Admitted: the registry (empty) answers for the tag itself.
                       (admitted, "is not in the registry")):
        assert proc.returncode != 0
        assert f"{tag} {says}" in proc.output, proc.output[-3000:]
        assert f"(http://{login_registry}, asked from {first}); nothing changed" in proc.output
        assert LOGIN[1] not in proc.output and "not-the-password" not in proc.output
        assert "Traceback" not in proc.output


def test_a_registry_that_is_down_is_named_before_anything_changes(deployed):
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    registry = f"{LAB_NAME}-registry"
    subprocess.run(["docker", "stop", registry], check=True, capture_output=True)
    try:
        proc = playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.0.0", *QUICK, timeout=300)
    finally:
        subprocess.run(["docker", "start", registry], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and engine(
                "app1", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://registry:5000/v2/')",
        ).returncode != 0:
            time.sleep(1)
    assert proc.returncode != 0
    assert "erp-app:1.0.0 is unknown: the registry did not answer (" in proc.output, proc.output[-3000:]
    assert "Traceback" not in proc.output
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


def lock_on_lb(lb) -> dict | None:
    found = lb.ssh("sudo cat /var/lib/erp/deploy.lock", check=False)
    return json.loads(found.stdout) if found.returncode == 0 else None


def test_a_hung_migration_is_stopped_and_nothing_switches(deployed):
    """A release whose migration never ends: stopped at erp_deploy_migrate_timeout, its
    transaction and migration lock given back, no slot switched, the lock released."""
    before = current_versions(deployed)
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    db = next(h for h in deployed.values() if h.group == "erp_db")
    started = time.monotonic()
    with Load(rate=PACED) as load:
        proc = playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.1.0-fault-migration-hangs", *QUICK,
                        "-e", "erp_deploy_migrate_timeout=8", "-e", "erp_deploy_require_backup=false", timeout=300)
    assert proc.returncode != 0
    assert "migrations did not finish within 8 s: stopped" in proc.output, proc.output[-3000:]
    assert time.monotonic() - started < 200
    assert "Traceback" not in proc.output
    assert load.failed == [], load.failed[:5]
    assert current_versions(deployed) == before
    hosts_line = "Hosts: " + "; ".join(f"{name}: unchanged, on {before[name]}" for name in sorted(before))
    assert hosts_line in " ".join(proc.output.split()), proc.output[-3000:]
    for host in app_hosts(deployed):
        assert host.ssh("sudo docker ps -aq --filter name=erp-migrate").stdout.strip() == ""
    advisory = db.ssh("sudo docker exec erp-db psql -X -A -t -U postgres -d erp -c "
                      "\"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'\"").stdout.strip()
    assert advisory == "0"
    assert lock_on_lb(lb) is None


def test_a_registry_lost_after_the_manifest_check_stops_the_deploy_before_any_switch(deployed):
    """The registry answers the preflight, then stops as the lock is taken: the pre-pull on
    the app hosts fails, naming the image and the host; nothing migrates or switches, the
    lock is released."""
    before = current_versions(deployed)
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    # A release none of the app hosts has, so that each must pull it.
    release = "1.1.0-fault-migration-hangs"
    for host in app_hosts(deployed):
        host.ssh(f"sudo docker image rm -f registry:5000/erp-app:{release}", check=False)
        assert host.ssh(f"sudo docker image inspect registry:5000/erp-app:{release}", check=False).returncode != 0
    registry = f"{LAB_NAME}-registry"
    runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
        "deploy.yml", "-l", "lab", "-e", f"erp_version={release}", *QUICK, timeout=300)))
    stopped = False
    try:
        with Load(rate=PACED) as load:
            runner.start()
            deadline = time.monotonic() + 300
            while runner.is_alive() and time.monotonic() < deadline:
                if engine("lb1", "test", "-e", "/var/lib/erp/deploy.lock").returncode == 0:
                    subprocess.run(["docker", "stop", "-t", "1", registry], check=True, capture_output=True)
                    stopped = True
                    break
                time.sleep(0.2)
            runner.join(timeout=400)
    finally:
        subprocess.run(["docker", "start", registry], check=True, capture_output=True)
    proc = runner.result
    said = " ".join(proc.output.split())
    assert stopped, said[-3000:]
    assert proc.returncode != 0
    assert f"registry:5000/erp-app:{release} could not be pulled" in said, said[-3000:]
    assert "Hosts: " + "; ".join(f"{name}: unchanged, on {before[name]}" for name in sorted(before)) in said
    assert "Traceback" not in proc.output
    assert load.failed == [], load.failed[:5]
    assert current_versions(deployed) == before
    assert lock_on_lb(lb) is None


def test_a_controller_killed_mid_rollout_leaves_users_served_and_the_next_deploy_finishes(deployed):
    """ansible-playbook killed outright (no rescue, no unlock) once the canary switched: users
    are still served, the lock names the killed process, and the next deploy breaks that lock
    (its holder is gone) and takes every app host to the release."""
    before = current_versions(deployed)
    running = next(iter(before.values()))
    target = "1.1.0" if running == "1.0.0" else "1.0.0"
    first = sorted(h.name for h in app_hosts(deployed))[0]
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    with Load(rate=PACED) as load:
        run = subprocess.Popen(
            ["ansible-playbook", "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK],
            cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline:
            if release_state(deployed[first])["current"]["version"] == target:
                os.killpg(run.pid, signal.SIGKILL)
                break
            time.sleep(0.3)
        run.wait(timeout=60)
        left = lock_on_lb(lb)
        # At -vvv: not one secret in the output, whatever the verbosity.
        again = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, "-vvv")
    assert run.returncode == -signal.SIGKILL, "the run ended before its canary switched"
    assert left is not None and left["pid"] == run.pid
    assert again.returncode == 0, again.output[-4000:]
    assert "Broke the deploy lock held by" in again.output
    assert secrets_in(again.output) == []
    assert load.failed == [], load.failed[:5]
    assert set(current_versions(deployed).values()) == {target}
    assert served_versions() == {target}
    assert lock_on_lb(lb) is None


def test_an_undo_that_fails_is_reported_and_the_others_are_still_undone(deployed):
    """The undo itself fails: once the canary switched, its previous release's image is
    removed and the registry stopped (the undo cannot start the old slot again), and the next
    host stops answering, failing the rollout. Users are still served (the canary's new slot
    keeps serving), the report says the canary was NOT reverted and why, with its old slot
    stopped, the run fails and releases the lock; once the registry is back, a deploy of the
    previous release converges."""
    before = current_versions(deployed)
    running = next(iter(before.values()))
    target = "1.1.0" if running == "1.0.0" else "1.0.0"
    first, second = sorted(h.name for h in app_hosts(deployed))
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    registry = f"{LAB_NAME}-registry"
    runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
        "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, "-e", "erp_deploy_bake_seconds=10",
        timeout=600)))
    broken = False
    try:
        with Load(rate=PACED) as load:
            runner.start()
            deadline = time.monotonic() + 300
            while runner.is_alive() and time.monotonic() < deadline:
                if release_state(deployed[first])["current"]["version"] == target:
                    engine(first, "docker", "image", "rm", "-f", f"registry:5000/erp-app:{running}")
                    subprocess.run(["docker", "stop", "-t", "1", registry], check=True, capture_output=True)
                    engine(second, "pkill", "-x", "sshd")
                    broken = True
                    break
                time.sleep(0.3)
            runner.join(timeout=600)
            served_during = served_versions()
    finally:
        subprocess.run(["docker", "start", registry], check=True, capture_output=True)
        engine(second, "systemctl", "restart", "ssh")
    proc = runner.result
    said = " ".join(proc.output.split())
    assert broken, said[-3000:]
    assert proc.returncode != 0
    stands = said.split("Hosts: ", 1)[-1]
    assert f"{first}: NOT reverted (" in stands and f"could not be pulled on {first}" in stands, said[-4000:]
    assert f"slot of {running} is stopped; check it" in stands
    assert f"{second}: stopped answering (" in stands
    assert "Traceback" not in proc.output
    assert load.failed == [], load.failed[:5]
    assert served_during <= {running, target}
    assert current_versions(deployed) == {**before, first: target}
    assert lock_on_lb(lb) is None

    with Load(rate=PACED) as load:
        again = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={running}", *QUICK)
    assert again.returncode == 0, again.output[-4000:]
    assert load.failed == [], load.failed[:5]
    assert current_versions(deployed) == before


def test_an_app_host_lost_while_its_batch_bakes_is_named_and_the_rollout_goes_on(deployed):
    """The canary stops answering SSH once its switch is done, while it bakes: it serves the
    new release and the bakes probe it over HTTP from the controller, so the rollout goes on
    to the other hosts; the report names the host that kept its old images."""
    before = current_versions(deployed)
    running = next(iter(before.values()))
    target = "1.1.0" if running == "1.0.0" else "1.0.0"
    first = sorted(h.name for h in app_hosts(deployed))[0]
    old_slot = release_state(deployed[first])["current"]["slot"]
    runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
        "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, "-e", "erp_deploy_bake_seconds=15",
        timeout=600)))
    lost = False
    try:
        with Load(rate=PACED) as load:
            runner.start()
            deadline = time.monotonic() + 300
            while runner.is_alive() and time.monotonic() < deadline:
                # The switch's last step stops the old slot; its reachability check follows at once.
                if (release_state(deployed[first])["current"]["version"] == target
                        and not slot_running(first, old_slot)):
                    time.sleep(3)
                    engine(first, "pkill", "-x", "sshd")
                    lost = True
                    break
                time.sleep(0.3)
            runner.join(timeout=600)
    finally:
        engine(first, "systemctl", "restart", "ssh")
    proc = runner.result
    said = " ".join(proc.output.split())
    assert lost, said[-3000:]
    assert proc.returncode == 0, said[-4000:]
    assert f"Deployed {target} to lab. Stopped answering after the switch (serving {target}, old images kept): " \
           f"{first}." in said, said[-3000:]
    assert load.failed == [], load.failed[:5]
    assert set(current_versions(deployed).values()) == {target}
    assert served_versions() == {target}


def write_lock(lb, lock: dict) -> None:
    lb.ssh(f"echo {json.dumps(json.dumps(lock))} | sudo tee /var/lib/erp/deploy.lock >/dev/null")


@pytest.fixture
def other_users_process():
    """A live process of another Unix user on this controller (`kill -0` answers EPERM for it)."""
    sleeper = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "600"])
    yield sleeper
    sleeper.kill()
    sleeper.wait()


def test_a_live_holder_is_never_broken_and_a_gone_one_is(deployed, other_users_process):
    """The lock names its holder by controller, pid, start time and boot id: a live process
    (of another Unix user here) keeps its lock against deploy, rollback and the lock check;
    once it is gone, or its pid names another process, or the lock is another controller's,
    the next run knows which."""
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    pid = other_users_process.pid
    try:
        taken = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=acquire", "-e", f"erp_lock_pid={pid}",
                         "-e", "erp_deploy_message='operator one'", timeout=300)
        assert taken.returncode == 0, taken.output[-3000:]
        held = lock_on_lb(lb)
        assert held["pid"] == pid and held["started"] and held["boot_id"] and held["controller"]

        for proc in (playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.0.0", *QUICK, timeout=300),
                     playbook("rollback.yml", "-l", "lab", timeout=300),
                     lock_check()):
            assert proc.returncode != 0
            said = " ".join(proc.output.split())
            assert f"whose process pid {pid} of " in said and "still runs on this controller" in said, said[-3000:]
            assert "operator one" in said and "erpctl lock release --env lab" in said
            assert "Traceback" not in proc.output
            assert lock_on_lb(lb)["run"] == held["run"]

        # Its pid now names a process that started later: the holder is gone.
        write_lock(lb, {**held, "started": str(int(held["started"]) - 1)})
        assert lock_check().returncode == 0
        # The same lock from another controller: nothing here can tell, so it is kept.
        write_lock(lb, {**held, "controller": "another-controller"})
        elsewhere = lock_check()
        assert elsewhere.returncode != 0
        assert "runs on controller another-controller" in " ".join(elsewhere.output.split())
        # The holder exits: its lock is stale, the next run takes over.
        write_lock(lb, held)
        other_users_process.kill()
        other_users_process.wait()
        assert lock_check().returncode == 0
    finally:
        lb.ssh("sudo rm -f /var/lib/erp/deploy.lock")


def test_a_deploy_never_recreates_the_database_container(deployed):
    """A changed database setting in a release run: refused with what changed, before the
    container is touched; PostgreSQL keeps running, nothing switches, the lock is released."""
    db = next(h for h in deployed.values() if h.group == "erp_db")
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    inspect = "sudo docker inspect -f '{{.State.StartedAt}} {{.HostConfig.ShmSize}}' erp-db"
    running_since = db.ssh(inspect).stdout.strip()
    before = current_versions(deployed)
    target = "1.1.0" if set(before.values()) == {"1.0.0"} else "1.0.0"
    with Load(rate=PACED) as load:
        proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *FAST,
                        "-e", "erp_db_shm_size=320m", timeout=300)
    said = " ".join(proc.output.split())
    assert proc.returncode != 0
    assert "db1: the database container erp-db would be recreated (changed: " in said, said[-3000:]
    assert "run again with -e erp_deploy_db_recreate=true" in said
    assert "Traceback" not in proc.output
    assert db.ssh(inspect).stdout.strip() == running_since
    assert load.failed == [], load.failed[:5]
    assert current_versions(deployed) == before
    assert lock_on_lb(lb) is None


def lb_runtime(command: str) -> str:
    """One command on lb1's HAProxy runtime API (as the erp_lb role sends it)."""
    return engine("lb1", "docker", "exec", "erp-lb", "sh", "-c",
                  f"echo '{command}' | socat stdio UNIX-CONNECT:/run/haproxy/admin.sock").stdout


def test_a_bake_fails_when_the_load_balancer_stops_serving_and_the_rollout_is_undone(deployed):
    """The bake probes the load balancer's frontend as well as the slots: with every server of
    the LB put in maintenance behind the deploy's back while the canary bakes, the slots stay
    healthy but users get nothing; the bake fails and the canary is undone."""
    before = current_versions(deployed)
    running = next(iter(before.values()))
    target = "1.1.0" if running == "1.0.0" else "1.0.0"
    first = sorted(h.name for h in app_hosts(deployed))[0]
    servers = [f"{host}_{slot}" for host in sorted(before) for slot in ("blue", "green")]
    runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
        "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, "-e", "erp_deploy_bake_seconds=30",
        timeout=600)))
    runner.start()
    try:
        deadline = time.monotonic() + 300
        while runner.is_alive() and time.monotonic() < deadline:
            if release_state(deployed[first])["current"]["version"] == target:
                for server in servers:
                    lb_runtime(f"set server erp_app/{server} state maint")
                break
            time.sleep(0.5)
        runner.join(timeout=600)
    finally:
        # The hosts the undo does not touch are given back their live slots.
        for host in sorted(before):
            live = release_state(deployed[host])["current"]["slot"]
            lb_runtime(f"set server erp_app/{host}_{live} state ready")
    proc = runner.result
    said = " ".join(proc.output.split())
    assert proc.returncode != 0
    assert "unhealthy while baking: http://" in said and ":8404/health/ready: HTTP 503" in said, said[-3000:]
    assert f"{first}: reverted to {running}" in said
    assert "Traceback" not in proc.output
    assert current_versions(deployed) == before
    assert served_versions() == {running}
