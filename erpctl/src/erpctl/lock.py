"""The environment's deploy lock, held by erpctl for a whole staged rollout.

``/var/lib/erp/deploy.lock`` (JSON: id, user, controller, started_at, version, message) on
every app host of the environment. Each host's file is created with the shell's
``noclobber`` (O_EXCL), so of two concurrent rollouts only one gets a host; a rollout that
does not get every host gives back the ones it got and is refused. deploy.yml receives
``erp_lock_id`` and treats a lock with that id as its own (see README.md).
"""

from __future__ import annotations

import json
import shlex
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from erpctl import contract
from erpctl.release import decode_slurp
from erpctl.report import iso, utc_now, who

_ACQUIRE = (f"mkdir -p {shlex.quote(str(Path(contract.LOCK_FILE).parent))} && "
            f"set -C && cat > {shlex.quote(contract.LOCK_FILE)}")
_RELEASE_OWN = f'if grep -qF -- "$1" {shlex.quote(contract.LOCK_FILE)} 2>/dev/null; then rm -f {contract.LOCK_FILE}; fi'


@dataclass
class LockState:
    """``holders``: {host: lock document}; ``errors``: {host: why it could not be read}."""

    holders: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)

    @property
    def held(self) -> bool:
        return bool(self.holders)

    def describe(self) -> str:
        if not self.holders:
            return "free"
        docs = {json.dumps(doc, sort_keys=True) for doc in self.holders.values()}
        parts = []
        for text in sorted(docs):
            doc = json.loads(text)
            hosts = sorted(host for host, held in self.holders.items() if json.dumps(held, sort_keys=True) == text)
            parts.append(f"held by {doc.get('user', '?')} since {doc.get('started_at', '?')} "
                         f"for {doc.get('version', '?')} ({doc.get('message') or 'no message'}) on {', '.join(hosts)}")
        return "; ".join(parts)


def _pattern(env: str) -> str:
    return f"{env}:&{contract.APP_GROUP}"


def read_lock(runner, env: str, private_data_dir: Path, ident: str = "lock-status") -> LockState:
    run = runner.adhoc(module="ansible.builtin.stat", module_args=json.dumps({"path": contract.LOCK_FILE}),
                       host_pattern=_pattern(env), private_data_dir=private_data_dir, ident=f"{ident}-stat")
    state = LockState()
    present = []
    for host, outcome in run.hosts.items():
        if outcome.status != "ok":
            state.errors[host] = outcome.message or outcome.status
        elif (outcome.result.get("stat") or {}).get("exists"):
            present.append(host)
    if not present:
        return state
    run = runner.adhoc(module="ansible.builtin.slurp", module_args=json.dumps({"src": contract.LOCK_FILE}),
                       host_pattern=_pattern(env), private_data_dir=private_data_dir, ident=f"{ident}-read")
    for host in present:
        outcome = run.hosts.get(host)
        if outcome is None or outcome.status != "ok":
            # Gone between the two reads (released meanwhile) or unreadable.
            if outcome is not None and "not found" not in (outcome.message or "").lower():
                state.errors[host] = outcome.message or outcome.status
            continue
        try:
            document = json.loads(decode_slurp(outcome.result))
        except ValueError:
            document = {"message": "unreadable lock file"}
        state.holders[host] = document if isinstance(document, dict) else {"message": "unreadable lock file"}
    return state


def new_lock_document(version: str, message: str | None) -> dict:
    return {"id": uuid.uuid4().hex, "tool": "erpctl", "user": who(), "started_at": iso(utc_now()),
            "version": version, "message": message or ""}


def acquire(runner, env: str, document: dict, private_data_dir: Path) -> tuple[bool, list[str]]:
    """Create the lock on every app host; returns (acquired, hosts that refused)."""
    args = {"argv": ["sh", "-c", _ACQUIRE], "stdin": json.dumps(document)}
    run = runner.adhoc(module="ansible.builtin.command", module_args=json.dumps(args),
                       host_pattern=_pattern(env), private_data_dir=private_data_dir, ident="lock-acquire")
    refused = sorted(host for host, outcome in run.hosts.items() if outcome.status != "ok")
    if refused or not run.hosts:
        release_own(runner, env, document["id"], private_data_dir)
        return False, refused
    return True, []


def release_own(runner, env: str, lock_id: str, private_data_dir: Path) -> bool:
    """Remove the lock where it carries ``lock_id``; another rollout's lock is left alone."""
    args = {"argv": ["sh", "-c", _RELEASE_OWN, "sh", f'"id": "{lock_id}"']}
    run = runner.adhoc(module="ansible.builtin.command", module_args=json.dumps(args),
                       host_pattern=_pattern(env), private_data_dir=private_data_dir, ident="lock-release")
    return run.ok


def force_release(runner, env: str, private_data_dir: Path) -> bool:
    """``erpctl lock release``: remove whatever lock is there (a stale one after a crash)."""
    run = runner.adhoc(module="ansible.builtin.file",
                       module_args=json.dumps({"path": contract.LOCK_FILE, "state": "absent"}),
                       host_pattern=_pattern(env), private_data_dir=private_data_dir, ident="lock-force-release")
    return run.ok
