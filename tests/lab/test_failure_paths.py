"""deploy.yml meeting a broken piece of infrastructure mid-rollout, under steady user traffic.

The load balancer stops answering SSH (its sshd killed, sessions and all) as the first new
slot starts, in each batch shape: a canary batch of one host, every app host in one batch,
a run for a single app host; and with draining off, where the LB's first step of a switch is
the change itself rather than a status read. No slot may stop serving before every LB confirmed traffic
moved to its replacement: users see no failed request, every app host still serves the
release it ran, the run fails and says which LB did not answer. Once SSH is back, the same
deploy run again converges (the lock of the run whose process is gone is stale, and broken).
"""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from conftest import (
    LAB_NAME,
    PACED,
    QUICK,
    Load,
    app_hosts,
    current_versions,
    ensure_release,
    playbook,
    release_state,
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


def new_slot_running(host: str, idle_slot: str) -> bool:
    ps = engine(host, "docker", "ps", "-q", "--filter", f"name=^erp-app-{idle_slot}$", "--filter", "status=running")
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
    if new_slot_running(first, idle):
        engine(first, "docker", "stop", f"erp-app-{idle}")
    killed = threading.Event()
    try:
        with Load(rate=PACED) as load:
            runner = threading.Thread(target=lambda: setattr(runner, "result", playbook(
                "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK, *SHAPES[shape], timeout=600)))
            runner.start()
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and runner.is_alive():
                if new_slot_running(first, idle):
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
