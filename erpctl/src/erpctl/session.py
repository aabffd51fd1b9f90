"""What one erpctl invocation works with, injected so tests can replace every piece."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from erpctl.progress import Progress


class Interrupt:
    """Counts Ctrl-C presses instead of raising KeyboardInterrupt mid-run; ``sleep`` wakes on one."""

    def __init__(self):
        self.count = 0
        self._event = threading.Event()

    def press(self, *_args) -> None:
        self.count += 1
        self._event.set()

    @property
    def requested(self) -> bool:
        return self.count > 0

    def sleep(self, seconds: float) -> None:
        self._event.wait(max(0.0, seconds))

    def install(self):
        """Catch SIGINT while the returned restore function has not been called."""
        previous = signal.signal(signal.SIGINT, self.press)
        return lambda: signal.signal(signal.SIGINT, previous)


@dataclass
class Session:
    repo: Path
    runner: Any
    run_dir: Path
    progress: Progress
    fetch: Callable
    report: dict
    started: dt.datetime
    inventory_sources: list[str]
    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] | None = None
    interrupt: Interrupt = field(default_factory=Interrupt)
    secrets: list[str] = field(default_factory=list)
    json_output: bool = False

    def __post_init__(self):
        if self.sleep is None:
            self.sleep = self.interrupt.sleep

    def confirm(self, question: str, yes: bool) -> None:
        """Ask ``question`` on the terminal unless ``yes``; refuse (exit 3) without a terminal."""
        from erpctl.errors import ErpctlError

        if yes:
            return
        if not self.stdin.isatty():
            raise ErpctlError("refusing without confirmation: stdin is not a terminal; pass --yes")
        self.progress.close()
        self.err.write(f"{question} [y/N] ")
        self.err.flush()
        if self.stdin.readline().strip().lower() not in ("y", "yes"):
            raise ErpctlError("declined; nothing changed")
