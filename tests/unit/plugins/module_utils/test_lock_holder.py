# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The deploy lock's holder: only a holder known to be gone makes a lock stale."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ansible_collections.erp.ops.plugins.module_utils._lock_holder import (
    ALIVE,
    ELSEWHERE,
    GONE,
    UNTIL_RELEASED,
    Controller,
)

BOOT = "3749f431-6c0f-4499-85a5-eab855187096"


def fake_proc(tmp_path, processes: dict[int, str], boot_id: str = BOOT):
    """A procfs with a boot id and processes {pid: start time in ticks}."""
    (tmp_path / "sys/kernel/random").mkdir(parents=True)
    (tmp_path / "sys/kernel/random/boot_id").write_text(boot_id + "\n")
    for pid, started in processes.items():
        (tmp_path / str(pid)).mkdir()
        # Field 2 may hold spaces and parentheses; field 22 is the start time.
        fields = ["S"] + ["0"] * 18 + [started] + ["0"] * 10
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (ansible (x) y) " + " ".join(fields) + "\n")
    return Controller(tmp_path, hostname="ctl1")


def holder(**changes):
    return {"controller": "ctl1", "user": "alice", "pid": 4242, "started": "832475", "boot_id": BOOT, **changes}


def test_identity_names_the_process_by_pid_start_time_and_boot(tmp_path):
    controller = fake_proc(tmp_path, {4242: "832475"})
    found = controller.identity(4242)
    assert found["controller"] == "ctl1"
    assert (found["pid"], found["started"], found["boot_id"]) == (4242, "832475", BOOT)
    assert found["user"]


def test_a_lock_for_no_process_names_none(tmp_path):
    assert fake_proc(tmp_path, {}).identity(0)["started"] is None


@pytest.mark.parametrize(("processes", "lock", "state"), [
    ({4242: "832475"}, holder(), ALIVE),
    # The holder exited: no process with its pid.
    ({}, holder(), GONE),
    # Its pid now belongs to another process, started later.
    ({4242: "990001"}, holder(), GONE),
    # The controller booted since: nothing survives a reboot.
    ({4242: "832475"}, holder(boot_id="11111111-0000-0000-0000-000000000000"), GONE),
    # Another controller's process cannot be seen from here, alive or not.
    ({}, holder(controller="ctl2"), ELSEWHERE),
    # lock.yml's lock without a process: held until released.
    ({}, holder(pid=0), UNTIL_RELEASED),
    ({}, holder(pid="not a pid"), UNTIL_RELEASED),
    # A lock written before start times were recorded: the pid alone decides.
    ({4242: "5"}, {"controller": "ctl1", "pid": 4242}, ALIVE),
    ({}, {"controller": "ctl1", "pid": 4242}, GONE),
])
def test_holder_state(tmp_path, processes, lock, state):
    assert fake_proc(tmp_path, processes).holder_state(lock) == state


def test_a_live_process_of_another_unix_user_is_alive_on_the_real_controller():
    """The case `kill -0` gets wrong: it answers EPERM for another user's live process (make
    test runs as root, which may start one as nobody)."""
    sleeper = subprocess.Popen(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "60"])
    try:
        controller = Controller()
        lock = controller.identity(sleeper.pid)
        assert controller.holder_state(lock) == ALIVE
    finally:
        sleeper.kill()
        sleeper.wait()
    assert controller.holder_state(lock) == GONE


def test_this_process_is_alive_and_a_reused_pid_is_not():
    controller = Controller()
    me = controller.identity(os.getpid())
    assert controller.holder_state(me) == ALIVE
    assert controller.holder_state({**me, "started": str(int(me["started"]) + 1)}) == GONE
    assert sys.platform != "linux" or me["boot_id"]
