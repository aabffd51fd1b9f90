"""deploy.yml and rollback.yml against the lab, as an operator runs them, under user traffic.

Order matters and is the file's order: the module fixture deploys 1.0.0 first (the lab
starts with no ERP), then an upgrade under load, an idempotent second run, the lock (taken
with lock.yml as for maintenance), a rollback, a build that turns bad after the canary
passed (it must end with every app host back on the release it ran before and no failed
user request), and a host lost mid-rollout.
During the upgrade and the rollback the hosts' own health check runs over and over: switching
slots must never look like a failure to it (no alarm for a deploy). Short bake times and
deadlines keep the module within minutes; the production values live in the inventories.
The guard's refusals need no lab: tests/unit/playbooks/test_deploy_guard.py. Every faulty
build goes through deploy.yml's health gate in tests/lab/test_erpctl.py (each stage of an
erpctl rollout is a deploy.yml run), also under user traffic.
This module is the plain-Ansible lane: its runs use ANSIBLE_STRATEGY=linear, every other lab
module ansible.cfg's default (Mitogen), so deploy, a faulty build and rollback are proven on
both.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
import yaml
from conftest import (
    FAST,
    INVENTORY,
    LAB_NAME,
    PACED,
    QUICK,
    HealthSampler,
    Load,
    app_hosts,
    current_versions,
    ensure_healthcheck,
    ensure_release,
    playbook,
    recap,
    release_state,
    served_versions,
)

# Mitogen's strategy plugin announces itself with a deprecation warning of ansible-core.
MITOGEN_MARK = "strategy plugins not included in ansible.builtin"


@pytest.fixture(scope="module", autouse=True)
def plain_ansible():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANSIBLE_STRATEGY", "linear")
        yield


@pytest.fixture(scope="module")
def deployed(lab_hosts):
    """The lab starts with no ERP: deploy 1.0.0 (converging the database and the LB)."""
    ensure_release(lab_hosts, "1.0.0")
    ensure_healthcheck(lab_hosts)
    return lab_hosts


class NoAlarm:
    """The installed health check sampled on every app host while a rollout runs."""

    def __init__(self, lab_hosts):
        self.hosts = app_hosts(lab_hosts)

    def __enter__(self):
        self.samplers = [HealthSampler(host) for host in self.hosts]
        return self

    def __exit__(self, *exc):
        self.samples = {sampler.host.name: sampler.stop() for sampler in self.samplers}

    def assert_no_failure(self):
        for name, runs in self.samples.items():
            assert len(runs) >= 10, f"{name}: only {len(runs)} health check runs sampled"
            failing = [(round(run["time"]), run["failing"]) for run in runs if run["failing"]]
            assert not failing, f"{name}: {failing[:5]}"


def test_upgrade_under_load_fails_no_request_and_moves_every_host(deployed):
    with Load() as load, NoAlarm(deployed) as health:
        proc = playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.1.0", *QUICK)
        time.sleep(2)
    assert proc.returncode == 0, proc.output[-4000:]
    assert MITOGEN_MARK not in proc.output, "the plain lane ran on Mitogen"
    assert load.failed == [], load.failed[:5]
    assert load.ok > 500
    health.assert_no_failure()
    assert set(current_versions(deployed).values()) == {"1.1.0"}
    assert served_versions() == {"1.1.0"}
    for host in app_hosts(deployed):
        state = release_state(host)
        assert state["previous"]["version"] == "1.0.0"
        assert state["current"]["image"].startswith("registry:5000/erp-app@sha256:")
        audit = host.ssh("sudo tail -n 1 /var/log/erp/deploy-audit.log").stdout
        assert json.loads(audit)["event"] == "deployed"
        old_slot = state["previous"]["slot"]
        assert host.ssh(f"sudo docker inspect -f '{{{{.State.Status}}}}' erp-app-{old_slot}").stdout.strip() == "exited"


def test_second_deploy_of_the_same_release_changes_nothing(deployed):
    def snapshot():
        return {h.name: (h.ssh("sudo docker ps -aq --no-trunc --filter name=erp-app").stdout,
                         len(release_state(h)["history"])) for h in app_hosts(deployed)}
    running = set(current_versions(deployed).values())
    assert len(running) == 1
    before = snapshot()
    proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={running.pop()}", *FAST)
    assert proc.returncode == 0, proc.output[-4000:]
    assert snapshot() == before
    stats = recap(proc)
    assert all(stats[h.name]["changed"] == 0 for h in deployed.values() if h.group in ("erp_app", "erp_db"))


def test_a_maintenance_lock_refuses_deploys_until_it_is_released(deployed):
    """lock.yml as an operator holding the environment for maintenance: deploys refuse,
    naming the holder and the message, until lock.yml releases it."""
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    before = current_versions(deployed)
    taken = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=acquire",
                     "-e", "erp_deploy_message='database maintenance'", timeout=120)
    try:
        assert taken.returncode == 0, taken.output[-3000:]
        assert "database maintenance" in lb.ssh("sudo cat /var/lib/erp/deploy.lock").stdout
        proc = playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.1.0", *QUICK, timeout=400)
        assert proc.returncode != 0
        said = " ".join(proc.output.split())
        assert "Deploy lock of lab held by" in said and "database maintenance" in said, said[-3000:]
        assert "PLAY [Take the deploy lock]" not in proc.output
        assert current_versions(deployed) == before
        # the lock outlives the ansible-playbook that took it: a second try is refused too
        again = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=check", timeout=120)
        assert again.returncode != 0 and "database maintenance" in again.output
        status = playbook("lock.yml", "-l", "lab", timeout=120)
        assert status.returncode == 0 and "(database maintenance, run " in status.output
    finally:
        released = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=release", timeout=120)
    assert released.returncode == 0 and "-> released" in released.output, released.output[-3000:]
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


def test_a_release_the_registry_lacks_is_refused_before_the_lock(deployed):
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    proc = playbook("lock.yml", "-l", "lab", "-e", "erp_lock_action=acquire", "-e", "erp_version=0.0.404",
                    timeout=120)
    assert proc.returncode != 0
    assert "erp-app:0.0.404 is not in the registry" in proc.output and "asked from app1" in proc.output
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


# What the database host's firewall does to an app host it was not provisioned with: its
# connections to PostgreSQL go unanswered (dropped before Docker's port mapping sees them).
BLOCK_APP_HOST = """
table inet erp_lab_block {{
  chain prerouting {{
    type filter hook prerouting priority -200; policy accept;
    ip saddr {address} tcp dport 5432 drop
  }}
}}
"""


def test_an_app_host_the_database_does_not_admit_is_named_before_anything_changes(deployed):
    db = next(h for h in deployed.values() if h.group == "erp_db")
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    inventory = yaml.safe_load(INVENTORY.read_text())["lab"]["children"]["erp_app"]["hosts"]
    before = current_versions(deployed)
    target = "1.0.0" if set(before.values()) == {"1.1.0"} else "1.1.0"
    db.ssh(f"printf '%s' '{BLOCK_APP_HOST.format(address=inventory['app2']['erp_internal_address'])}' "
           "| sudo nft -f -")
    try:
        proc = playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, timeout=600)
    finally:
        db.ssh("sudo nft delete table inet erp_lab_block")
    assert proc.returncode != 0
    assert "app2 cannot reach the database at" in proc.output, proc.output[-3000:]
    assert "needs provision.yml -l lab first" in proc.output
    assert "app1 cannot reach" not in proc.output
    assert current_versions(deployed) == before
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


def test_rollback_returns_every_host_to_the_previous_release(deployed):
    with Load() as load, NoAlarm(deployed) as health:
        proc = playbook("rollback.yml", "-l", "lab", "-e", "erp_deploy_health_deadline=40")
    assert proc.returncode == 0, proc.output[-4000:]
    assert load.failed == [], load.failed[:5]
    health.assert_no_failure()
    assert set(current_versions(deployed).values()) == {"1.0.0"}
    assert served_versions() == {"1.0.0"}
    assert all(release_state(h)["history"][-1]["outcome"] == "rollback" for h in app_hosts(deployed))


# Plain deploy.yml with its default batches and a build that turns bad 20 s after it first
# was ready: its health gate passes, deploy.yml's own bake (outlasting those 20 s) catches it.
def test_a_release_turning_bad_after_the_canary_passed_is_rolled_back_without_failed_requests(deployed):
    before = current_versions(deployed)
    with Load(rate=PACED) as load:
        proc = playbook("deploy.yml", "-l", "lab", "-e", "erp_version=1.1.0-fault-fails-after-ready", *QUICK,
                        "-e", "erp_deploy_bake_seconds=40")
        time.sleep(2)
    assert proc.returncode != 0
    said = " ".join(proc.output.split())
    assert "Deploy of 1.1.0-fault-fails-after-ready to lab FAILED: " in said, said[-4000:]
    assert "unhealthy while baking" in said, said[-4000:]
    first = sorted(before)[0]
    assert f"{first}: reverted to {before[first]}" in said
    assert current_versions(deployed) == before
    assert served_versions() == set(before.values())
    assert load.failed == [], load.failed[:5]
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0, "the lock was not released"


def test_a_host_lost_mid_rollout_stops_it_and_the_others_are_undone(deployed):
    """app2 becomes unreachable (its sshd killed) once app1 is switched: the run must not
    abort there but undo app1, release the lock and name the lost host."""
    before = current_versions(deployed)
    first, second = sorted(h.name for h in app_hosts(deployed))
    host = deployed[first]
    container = f"{LAB_NAME}-{second}"
    target = "1.1.0" if set(before.values()) == {"1.0.0"} else "1.0.0"
    proc = None
    try:
        with Load(rate=PACED) as load:
            runner = threading.Thread(target=lambda: setattr(
                runner, "result", playbook("deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK)))
            runner.start()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and runner.is_alive():
                if release_state(host)["current"]["version"] == target:
                    subprocess.run(["docker", "exec", container, "pkill", "-x", "sshd"], check=True)
                    break
                time.sleep(0.5)
            runner.join(timeout=900)
            proc = runner.result
    finally:
        subprocess.run(["docker", "exec", container, "systemctl", "restart", "ssh"], check=True)
    assert proc.returncode != 0
    said = " ".join(proc.output.split())
    assert f"Deploy of {target} to lab FAILED: " in said, said[-4000:]
    assert f"{first}: reverted to {before[first]}" in said
    assert f"{second}: stopped answering (" in said and "NOT reverted: check it" in said
    assert current_versions(deployed) == before
    assert served_versions() == set(before.values())
    assert load.failed == [], load.failed[:5]
    lb = next(h for h in deployed.values() if h.group == "erp_lb")
    assert lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0, "the lock was not released"
