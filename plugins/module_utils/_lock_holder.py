# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Who holds the deploy lock, told apart from a process that merely has the same number.

A lock names the process it lives as long as: its controller (host name), the controller's
boot id and the process's start time (clock ticks since boot, /proc/<pid>/stat field 22),
besides its pid and Unix user. A pid alone is not enough: after the holder exits the number
is reused, and ``kill -0`` answers "operation not permitted" for a live process of another
Unix user, which is not the same as gone.

A lock is stale only when that can be known for sure: taken on this controller, and either
the controller booted since (the process cannot have survived) or no process with that pid
and start time exists. A lock taken on another controller, or for no process (pid 0: held
until released), is never stale: only an operator breaks it.
"""

from __future__ import annotations

import getpass
import multiprocessing
import os
import socket
from pathlib import Path

ALIVE = "alive"
GONE = "gone"
ELSEWHERE = "elsewhere"
UNTIL_RELEASED = "until-released"


class Controller:
    """This machine's view of its processes; ``proc`` is the procfs root (tests pass another)."""

    def __init__(self, proc: str | Path = "/proc", hostname: str | None = None):
        self.proc = Path(proc)
        self.hostname = hostname or socket.gethostname()

    def boot_id(self) -> str | None:
        try:
            return (self.proc / "sys/kernel/random/boot_id").read_text().strip() or None
        except OSError:
            return None

    def started(self, pid: int) -> str | None:
        """The process's start time in clock ticks since boot, None when there is no such
        process (or no procfs: then only its existence can be asked)."""
        try:
            stat = (self.proc / str(pid) / "stat").read_text()
        except OSError:
            return None
        # The command name (field 2) is in parentheses and may hold spaces or parentheses.
        fields = stat[stat.rindex(")") + 2:].split()
        return fields[19] if len(fields) > 19 else None

    def exists(self, pid: int) -> bool:
        if (self.proc / str(pid)).is_dir():
            return True
        if self.proc.is_dir():
            return False
        try:
            os.kill(pid, 0)
        except PermissionError:
            return True  # another user's live process
        except OSError:
            return False
        return True

    def identity(self, pid: int) -> dict:
        """What a lock records about the process ``pid`` of this controller (0: none)."""
        return {
            "controller": self.hostname,
            "user": getpass.getuser(),
            "pid": pid,
            "started": self.started(pid) if pid > 0 else None,
            "boot_id": self.boot_id(),
        }

    def holder_state(self, holder: dict) -> str:
        """ALIVE, GONE, ELSEWHERE (another controller: cannot be known from here) or
        UNTIL_RELEASED (the lock names no process)."""
        try:
            pid = int(holder.get("pid") or 0)
        except (TypeError, ValueError):
            pid = 0
        if holder.get("controller") != self.hostname:
            return ELSEWHERE
        if pid <= 0:
            return UNTIL_RELEASED
        booted = self.boot_id()
        if holder.get("boot_id") and booted and holder["boot_id"] != booted:
            return GONE
        if not self.exists(pid):
            return GONE
        started = holder.get("started")
        if started and booted and holder.get("boot_id") == booted:
            now = self.started(pid)
            if now is not None and now != str(started):
                return GONE  # the pid was reused by another process
        return ALIVE


def run_process_pid() -> int:
    """The ansible-playbook process of this run: the parent of the worker that templates
    a task, or this process when templating happens in the main process itself."""
    return os.getppid() if multiprocessing.parent_process() is not None else os.getpid()
