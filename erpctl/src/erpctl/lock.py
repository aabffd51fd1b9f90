"""The environment's deploy lock, through ``playbooks/lock.yml`` (the erp_deploy role's
``lock_manage`` entry point): erpctl never touches the lock file itself.

A staged rollout asks lock.yml to ``check`` (the registry has the release, nobody holds
the lock) before its plan, ``acquire``\\s it as its own run id for erpctl's process
(``erp_lock_pid``: deploy.yml on this controller breaks it once that process is gone), passes
that id to every stage (``erp_lock_id``: a stage neither takes nor releases it) and
``release``\\s it at the end. lock.yml hands back ``{"erp_lock": {"host", "action", "holder",
"changed"}}`` with set_stats; a refusal is the playbook's own message.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from erpctl import contract
from erpctl.errors import ErpctlError
from erpctl.runner import RunResult


@dataclass
class LockState:
    """What lock.yml found: ``holder`` is the lock document (None: free); ``changed`` whether
    the run took or released it; ``error`` why the run failed (its own message)."""

    host: str | None = None
    holder: dict | None = None
    changed: bool = False
    error: str | None = None

    @property
    def held(self) -> bool:
        return self.holder is not None

    def describe(self) -> str:
        if self.holder is None:
            return "free"
        doc = self.holder
        release = doc.get("version") or "no release"
        return (f"held by {doc.get('by') or '?'} since {doc.get('time') or '?'} for {release} "
                f"({doc.get('message') or 'no message'}) on {self.host}")


def new_run_id() -> str:
    return f"erpctl-{uuid.uuid4().hex}"


def _state(run: RunResult) -> LockState:
    found = run.artifact_data.get(contract.STATS_LOCK)
    found = found if isinstance(found, dict) else {}
    error = None if run.ok else ("; ".join(run.failures()) or f"lock.yml ended {run.status}")
    holder = found.get("holder")
    return LockState(host=found.get("host"), holder=holder if isinstance(holder, dict) else None,
                     changed=bool(found.get("changed")), error=error)


def run_lock(runner, env: str, action: str, private_data_dir: Path, ident: str, extra_vars: dict | None = None,
             **variables) -> LockState:
    """lock.yml with erp_lock_action=``action``, the operator's ``extra_vars`` and the given
    variables (None: unset)."""
    extravars = {**(extra_vars or {}), contract.VAR_LOCK_ACTION: action,
                 **{key: value for key, value in variables.items() if value is not None}}
    run = runner.playbook(playbook=contract.LOCK_PLAYBOOK, limit=env, extravars=extravars,
                          private_data_dir=private_data_dir, ident=ident)
    return _state(run)


def check(runner, env: str, version: str, private_data_dir: Path, extra_vars: dict | None = None) -> LockState:
    return run_lock(runner, env, "check", private_data_dir, "lock-check", extra_vars,
                    **{contract.VAR_VERSION: version})


def acquire(runner, env: str, version: str, message: str | None, run_id: str, private_data_dir: Path,
            extra_vars: dict | None = None) -> LockState:
    state = run_lock(runner, env, "acquire", private_data_dir, "lock-acquire", extra_vars,
                     **{contract.VAR_VERSION: version, contract.VAR_DEPLOY_MESSAGE: message or "",
                        contract.VAR_LOCK_RUN: run_id, contract.VAR_LOCK_PID: os.getpid()})
    if state.error is None and not state.changed:
        state.error = "lock.yml reported the lock as not taken"
    return state


def release_own(runner, env: str, run_id: str, private_data_dir: Path, extra_vars: dict | None = None) -> bool:
    """Release the lock ``run_id`` holds; another run's lock is left alone."""
    return run_lock(runner, env, "release", private_data_dir, "lock-release", extra_vars,
                    **{contract.VAR_LOCK_RUN: run_id}).error is None


def status(runner, env: str, private_data_dir: Path) -> LockState:
    return run_lock(runner, env, "status", private_data_dir, "lock-status")


def force_release(runner, env: str, private_data_dir: Path) -> LockState:
    """``erpctl lock release``: remove whatever lock is there (a stale one after a crash)."""
    return run_lock(runner, env, "release", private_data_dir, "lock-force-release")


def require_lock_host(inventory, env: str) -> None:
    """lock.yml (and deploy.yml) keep the lock on the environment's first LB: refuse early."""
    if not inventory.env_hosts(env, contract.LB_GROUP):
        raise ErpctlError(f"environment {env!r} has no {contract.LB_GROUP} host: deploy.yml keeps the lock there")
