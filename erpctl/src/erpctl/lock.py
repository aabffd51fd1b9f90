"""The environment's deploy lock, held by erpctl for a whole staged rollout.

Same file and host as deploy.yml's own lock (the erp_deploy role's lock entry point):
``/var/lib/erp/deploy.lock`` on the environment's first load balancer, JSON
``{"by", "time", "version", "message", "run", "controller", "pid", "tool"}``.
It is created with the shell's ``noclobber`` (O_EXCL), so of two concurrent rollouts only
one gets it. deploy.yml receives ``erp_lock_id`` (= ``run``) and treats a lock with that
run as its own: it proceeds, and leaves it for erpctl to release (see README.md).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from erpctl import contract
from erpctl.errors import ErpctlError
from erpctl.release import decode_slurp
from erpctl.report import iso, utc_now, who

_ACQUIRE = (f"mkdir -p {shlex.quote(str(Path(contract.LOCK_FILE).parent))} && "
            f"set -C && cat > {shlex.quote(contract.LOCK_FILE)}")
_RELEASE_OWN = f'if grep -qF -- "$1" {shlex.quote(contract.LOCK_FILE)} 2>/dev/null; then rm -f {contract.LOCK_FILE}; fi'


def lock_host(inventory, env: str) -> str:
    """Where the environment's lock lives: its first LB, as for deploy.yml (which refuses an
    environment without one)."""
    hosts = inventory.env_hosts(env, contract.LB_GROUP)
    if not hosts:
        raise ErpctlError(f"environment {env!r} has no {contract.LB_GROUP} host: deploy.yml keeps the lock there")
    return hosts[0]


@dataclass
class LockState:
    """``holder``: the lock document when held; ``error``: why it could not be read."""

    host: str
    holder: dict | None = None
    error: str | None = None

    @property
    def held(self) -> bool:
        return self.holder is not None

    def describe(self) -> str:
        if self.holder is None:
            return "free"
        doc = self.holder
        by = doc.get("by") or doc.get("user") or "?"
        since = doc.get("time") or doc.get("started_at") or "?"
        return (f"held by {by} since {since} for {doc.get('version', '?')} "
                f"({doc.get('message') or 'no message'}) on {self.host}")


def read_lock(runner, host: str, private_data_dir: Path, ident: str = "lock-read") -> LockState:
    run = runner.adhoc(module="ansible.builtin.stat", module_args=json.dumps({"path": contract.LOCK_FILE}),
                       host_pattern=host, private_data_dir=private_data_dir, ident=f"{ident}-stat")
    outcome = run.hosts.get(host)
    if outcome is None or outcome.status != "ok":
        return LockState(host, error=(outcome.message or outcome.status) if outcome else "no answer")
    if not (outcome.result.get("stat") or {}).get("exists"):
        return LockState(host)
    run = runner.adhoc(module="ansible.builtin.slurp", module_args=json.dumps({"src": contract.LOCK_FILE}),
                       host_pattern=host, private_data_dir=private_data_dir, ident=f"{ident}-content")
    outcome = run.hosts.get(host)
    if outcome is None or outcome.status != "ok":
        message = (outcome.message or outcome.status) if outcome else "no answer"
        # Gone between the two reads: released meanwhile.
        return LockState(host) if "not found" in message.lower() else LockState(host, error=message)
    try:
        document = json.loads(decode_slurp(outcome.result))
    except ValueError:
        document = None
    return LockState(host, document if isinstance(document, dict) else {"message": "unreadable lock file"})


def new_lock_document(version: str, message: str | None) -> dict:
    return {"by": who(), "time": iso(utc_now()), "version": version, "message": message or "",
            "run": f"erpctl-{uuid.uuid4().hex}", "controller": socket.gethostname(), "pid": os.getpid(),
            "tool": "erpctl"}


def acquire(runner, host: str, document: dict, private_data_dir: Path) -> bool:
    """Create the lock on ``host``; False when it exists (or cannot be created)."""
    args = {"argv": ["sh", "-c", _ACQUIRE], "stdin": json.dumps(document)}
    run = runner.adhoc(module="ansible.builtin.command", module_args=json.dumps(args),
                       host_pattern=host, private_data_dir=private_data_dir, ident="lock-acquire")
    outcome = run.hosts.get(host)
    return outcome is not None and outcome.status == "ok"


def release_own(runner, host: str, run_id: str, private_data_dir: Path) -> bool:
    """Remove the lock where it carries ``run_id``; another run's lock is left alone."""
    args = {"argv": ["sh", "-c", _RELEASE_OWN, "sh", f'"run": "{run_id}"']}
    run = runner.adhoc(module="ansible.builtin.command", module_args=json.dumps(args),
                       host_pattern=host, private_data_dir=private_data_dir, ident="lock-release")
    return run.ok


def force_release(runner, host: str, private_data_dir: Path) -> bool:
    """``erpctl lock release``: remove whatever lock is there (a stale one after a crash)."""
    run = runner.adhoc(module="ansible.builtin.file",
                       module_args=json.dumps({"path": contract.LOCK_FILE, "state": "absent"}),
                       host_pattern=host, private_data_dir=private_data_dir, ident="lock-force-release")
    return run.ok
