"""Live progress from runner events: one rewritten status line on a terminal, plain lines
otherwise. Secrets never reach the output: values of secret-named variables are masked in
every line, and only task names and failure messages are shown, never module results (a
``no_log`` task's result is censored by Ansible before it becomes an event anyway).
"""

from __future__ import annotations

import re
import time

SECRET_NAME = re.compile(r"password|passwd|secret|token|key|vault", re.IGNORECASE)
MASK = "********"


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(str(name)))


def secret_values(variables: dict) -> list[str]:
    """Values of variables whose names look secret (nested values included), longest first."""
    found = []

    def walk(name, value):
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{name}.{key}", item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(name, item)
        elif is_secret_name(name) and value not in (None, "") and len(str(value)) >= 3:
            found.append(str(value))

    for key, value in (variables or {}).items():
        walk(str(key), value)
    return sorted(set(found), key=len, reverse=True)


def redact_variables(variables: dict) -> dict:
    """A copy with the value of every secret-named variable masked (for reports)."""
    redacted = {}
    for key, value in (variables or {}).items():
        if is_secret_name(key):
            redacted[key] = MASK
        elif isinstance(value, dict):
            redacted[key] = redact_variables(value)
        else:
            redacted[key] = value
    return redacted


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _one_line(text, limit=200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _clock_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class Progress:
    """Prints what happens; ``event`` is the runner event handler."""

    def __init__(self, stream, tty: bool = False, secrets: list[str] | None = None, clock=time.monotonic,
                 quiet: bool = False):
        self.stream = stream
        self.tty = tty
        self.secrets = list(secrets or [])
        self.clock = clock
        self.quiet = quiet
        self.start = clock()
        self.phase = ""
        self.task = ""
        self.done_hosts: set[str] = set()
        self._status_shown = False

    # -- output helpers
    def _write(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(redact(text, self.secrets))
        self.stream.flush()

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self._write("\r\x1b[K")
            self._status_shown = False

    def line(self, text: str) -> None:
        """A permanent line, prefixed with the elapsed time."""
        self._clear_status()
        self._write(f"[{_clock_text(self.clock() - self.start)}] {text}\n")

    def status(self, text: str) -> None:
        """A transient status line on a terminal; nothing in plain mode (lines say it all)."""
        if not self.tty:
            return
        self._write(f"\r\x1b[K[{_clock_text(self.clock() - self.start)}] {_one_line(text, 150)}")
        self._status_shown = True

    def set_phase(self, phase: str, detail: str | None = None) -> None:
        """Start a phase (``stage 1/3 canary``); task and host lines carry its name."""
        self.phase = phase
        self.task = ""
        self.done_hosts = set()
        self.line(f"{phase}: {detail}" if detail else phase)

    def close(self) -> None:
        self._clear_status()

    # -- runner events
    def event(self, event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host")
        if kind == "playbook_on_task_start":
            self.task = _one_line(data.get("task") or data.get("name") or "", 80)
            if self.tty:
                self.status(f"{self.phase} | {self.task}")
            else:
                self.line(f"{self.phase} | task: {self.task}")
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable") and host:
            result = data.get("res") if isinstance(data.get("res"), dict) else {}
            if kind == "runner_on_ok":
                word = "changed" if result.get("changed") else "ok"
            elif kind == "runner_on_failed" and data.get("ignore_errors"):
                word = "failed (ignored)"
            else:
                word = "unreachable" if kind == "runner_on_unreachable" else "FAILED"
            self.done_hosts.add(host)
            task = _one_line(data.get("task") or self.task, 80)
            if word in ("FAILED", "unreachable"):
                message = _one_line(result.get("msg") or result.get("reason") or "")
                self.line(f"{self.phase} | {host} | {word} | {task}" + (f": {message}" if message else ""))
            elif self.tty:
                self.status(f"{self.phase} | {task} | {host} {word} ({len(self.done_hosts)} host(s))")
            else:
                self.line(f"{self.phase} | {host} | {word} | {task}")
        return True
