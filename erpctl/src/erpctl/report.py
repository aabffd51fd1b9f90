"""Where each run leaves its record: the runner artifacts directory, report.json and one
line in the append-only audit log."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from pathlib import Path

from erpctl.progress import redact, redact_variables

ARTIFACTS_SUBDIR = Path("artifacts") / "erpctl"
AUDIT_LOG = "audit.log"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def who(environ=None) -> str:
    """The person behind the run: ``$SUDO_USER`` when run with sudo, else the login name."""
    environ = os.environ if environ is None else environ
    return environ.get("SUDO_USER") or getpass.getuser()


def new_run_dir(repo: Path, command: str, moment: dt.datetime | None = None) -> Path:
    """``<repo>/artifacts/erpctl/<UTC timestamp>-<command>/``, unique even within a second."""
    moment = moment or utc_now()
    base = repo / ARTIFACTS_SUBDIR
    # Owner only: a run's artifacts hold the inventory's names and every event of the run.
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = moment.strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(100):
        suffix = f"-{attempt}" if attempt else ""
        path = base / f"{stamp}-{command}{suffix}"
        try:
            path.mkdir(mode=0o700, exist_ok=False)
        except FileExistsError:
            continue
        path.chmod(0o700)  # whatever the umask
        return path
    raise FileExistsError(f"cannot create a run directory under {base}")


def new_report(command: str, env: str, argv: list[str], run_dir: Path, started: dt.datetime) -> dict:
    return {
        "command": command,
        "environment": env,
        "argv": list(argv),
        "user": who(),
        "controller": socket.gethostname(),
        "started_at": iso(started),
        "finished_at": None,
        "duration_seconds": None,
        "run_dir": str(run_dir),
        "outcome": None,
        "exit_code": None,
        "message": None,
    }


def finish_report(report: dict, outcome: str, code: int, message: str | None, started: dt.datetime) -> dict:
    finished = utc_now()
    report.update(outcome=outcome, exit_code=int(code), message=message, finished_at=iso(finished),
                  duration_seconds=round((finished - started).total_seconds(), 3))
    return report


def render(report: dict, secrets: list[str]) -> str:
    """The report as JSON with secret-named variables and any secret value masked."""
    cleaned = dict(report)
    if isinstance(cleaned.get("extravars"), dict):
        cleaned["extravars"] = redact_variables(cleaned["extravars"])
    return redact(json.dumps(cleaned, indent=2, sort_keys=False, default=str), secrets)


def write_report(run_dir: Path, report: dict, secrets: list[str]) -> Path:
    path = run_dir / "report.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(render(report, secrets) + "\n")
    return path


def append_audit(repo: Path, report: dict, secrets: list[str]) -> Path:
    """One JSON line per run, appended with O_APPEND (concurrent runs never interleave a line)."""
    path = repo / ARTIFACTS_SUBDIR / AUDIT_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {key: report.get(key) for key in ("finished_at", "user", "controller", "command", "environment",
                                               "version", "outcome", "exit_code", "message", "run_dir")}
    line = redact(json.dumps(entry, sort_keys=False, default=str), secrets) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, line.encode("utf-8"))
    finally:
        os.close(descriptor)
    return path
