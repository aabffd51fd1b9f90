"""The narrow interface erpctl needs from ansible-runner, and its real implementation.

Everything erpctl does on hosts goes through a ``Runner``: read the inventory, run an
entry playbook with a limit and extra variables, run one module ad hoc. Tests inject a
fake with the same three methods; ``AnsibleRunner`` wraps ``ansible_runner``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from erpctl.errors import ErpctlError
from erpctl.progress import MASK, is_secret_name

EventHandler = Callable[[dict], Any]
CancelCallback = Callable[[], bool]


@dataclass
class HostOutcome:
    """How one host ended a run: ``ok``, ``failed`` or ``unreachable``; ``result`` is the
    last module result seen (ad hoc runs: the module's return value)."""

    status: str
    result: dict = field(default_factory=dict)
    task: str | None = None
    message: str | None = None


@dataclass
class RunResult:
    """One runner invocation: ``status`` is runner's (successful, failed, canceled, timeout)."""

    status: str
    rc: int | None
    hosts: dict[str, HostOutcome] = field(default_factory=dict)
    artifacts: str | None = None
    # What the playbook handed back with set_stats (aggregated, not per host).
    artifact_data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and not self.failures()

    def failures(self) -> list[str]:
        """One line per failed or unreachable host, naming the task and the message."""
        lines = []
        for host, outcome in self.hosts.items():
            if outcome.status != "ok":
                where = f" in task {outcome.task!r}" if outcome.task else ""
                lines.append(f"{host}: {outcome.status}{where}: {outcome.message or 'no message'}")
        return lines


class Runner(Protocol):
    def inventory(self, sources: list[str]) -> dict:
        """``ansible-inventory --list`` of ``sources`` as a dict."""

    def playbook(self, *, playbook: str, limit: str, extravars: dict, private_data_dir: Path, ident: str,
                 event_handler: EventHandler | None = None,
                 cancel_callback: CancelCallback | None = None) -> RunResult:
        """Run an entry playbook of the repository."""

    def adhoc(self, *, module: str, module_args: str, host_pattern: str, private_data_dir: Path, ident: str,
              become: bool = True) -> RunResult:
        """Run one module on ``host_pattern``."""


def split_secret_vars(extravars: dict) -> tuple[dict, dict]:
    """(public, secret) extra variables; secret ones have secret-looking names."""
    public = {key: value for key, value in extravars.items() if not is_secret_name(key)}
    secret = {key: value for key, value in extravars.items() if is_secret_name(key)}
    return public, secret


def scrub_command_artifact(path: Path) -> None:
    """Mask secret-named environment variables in runner's ``command`` artifact.

    Runner records the whole environment of ansible-playbook there; a vault password or an
    API token exported in the operator's shell must not end up in the artifacts.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    env = document.get("env") if isinstance(document, dict) else None
    if isinstance(env, dict):
        document["env"] = {key: (MASK if is_secret_name(key) else value) for key, value in env.items()}
        path.write_text(json.dumps(document), encoding="utf-8")


def history_env(environ: dict, run_name: str, *, adhoc: bool) -> dict[str, str]:
    """What one run erpctl starts tells the repository's history callback (erp.ops.history,
    ARA): a playbook run is labelled ``erpctl`` and ``erpctl:<run>`` (the command's run
    directory), after any ERP_HISTORY_LABELS of the caller, so the history shows which runs
    one erpctl command made. Ad hoc reads are not recorded, as ``ansible`` ad hoc commands
    are not; ERP_RECORD_HISTORY=0 of the caller reaches every run through the environment."""
    if adhoc:
        return {"ERP_RECORD_HISTORY": "0"}
    labels = [label.strip() for label in environ.get("ERP_HISTORY_LABELS", "").split(",") if label.strip()]
    for label in ("erpctl", f"erpctl:{run_name}"):
        if label not in labels:
            labels.append(label)
    return {"ERP_HISTORY_LABELS": ",".join(labels)}


_FAILED_EVENTS = {"runner_on_failed": "failed", "runner_on_unreachable": "unreachable"}


def outcome_collector(hosts: dict[str, HostOutcome], forward: EventHandler | None,
                      artifact_data: dict | None = None) -> EventHandler:
    """An event handler recording per-host outcomes (and into ``artifact_data`` what the
    playbook handed back with set_stats), then passing the event on."""

    def handle(event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data") or {}
        host = data.get("host")
        if kind == "playbook_on_stats":
            if artifact_data is not None and isinstance(data.get("artifact_data"), dict):
                artifact_data.update(data["artifact_data"])
            # A failure a rescue section handled is not the host's outcome: the recap is.
            failed = set(data.get("failures") or {}) | set(data.get("dark") or {})
            for name, outcome in hosts.items():
                if outcome.status != "ok" and name not in failed:
                    hosts[name] = HostOutcome("ok", outcome.result, outcome.task,
                                              f"recovered (rescued): {outcome.message}")
        if host and kind in ("runner_on_ok", *_FAILED_EVENTS):
            result = data.get("res") if isinstance(data.get("res"), dict) else {}
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                kind = "runner_on_ok"
            previous = hosts.get(host)
            if kind == "runner_on_ok":
                if previous is None or previous.status == "ok":
                    hosts[host] = HostOutcome("ok", result, data.get("task"))
            else:
                hosts[host] = HostOutcome(_FAILED_EVENTS[kind], result, data.get("task"),
                                          str(result.get("msg") or result.get("reason") or "")[:500] or None)
        if forward is not None:
            forward(event)
        return True

    return handle


class AnsibleRunner:
    """``Runner`` on top of ansible_runner, running the repository's own ansible.cfg."""

    def __init__(self, repo: Path, inventory: str, vault_ids: list[str] | tuple = (), strategy: str | None = None):
        self.repo = repo
        self.inventory_source = inventory
        self.vault_args = [f"--vault-id {shlex.quote(vault_id)}" for vault_id in vault_ids]
        # The ansible-* commands beside the Python running erpctl come first, so a venv
        # need not be activated; runner looks commands up on this process's PATH.
        bindir = str(Path(sys.executable).parent)
        path = os.environ.get("PATH", "")
        if bindir not in path.split(os.pathsep):
            os.environ["PATH"] = bindir + (os.pathsep + path if path else "")
        if shutil.which("ansible-playbook") is None:
            raise ErpctlError("ansible-playbook not found on PATH or beside the Python running erpctl")
        self._env = {"ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "PATH": os.environ["PATH"]}
        # None keeps ansible.cfg's (or the caller's ANSIBLE_STRATEGY).
        if strategy:
            self._env["ANSIBLE_STRATEGY"] = strategy

    def _ansible_runner(self):
        import ansible_runner  # imported late: it is slow to import and tests never need it

        return ansible_runner

    def inventory(self, sources: list[str]) -> dict:
        runner = self._ansible_runner()
        try:
            out, err = runner.get_inventory(action="list", inventories=sources, response_format="json", quiet=True,
                                            envvars=dict(self._env))
        except Exception as exc:
            raise ErpctlError(f"inventory {', '.join(sources)}: {exc}") from None
        if not isinstance(out, dict):
            first = next((line for line in str(err or out).splitlines() if line.strip()), "no output")
            raise ErpctlError(f"inventory {', '.join(sources)}: {first.strip()}")
        return out

    def _run(self, private_data_dir: Path, ident: str, collected: dict, artifact_data: dict | None = None,
             **kwargs) -> RunResult:
        runner = self._ansible_runner()
        private_data_dir.mkdir(parents=True, exist_ok=True)
        # Without a cancel_callback runner installs its own SIGINT handler for good, and
        # erpctl's Ctrl-C handling (session.Interrupt) would never hear of a later Ctrl-C.
        kwargs["cancel_callback"] = kwargs.get("cancel_callback") or (lambda: False)
        cmdline = " ".join([*self.vault_args, *([kwargs.pop("cmdline")] if kwargs.get("cmdline") else [])])
        kwargs.pop("cmdline", None)
        if cmdline:
            kwargs["cmdline"] = cmdline
        envvars = {**self._env, **history_env(os.environ, private_data_dir.name, adhoc="module" in kwargs)}
        # suppress_env_files: every run of one erpctl command shares private_data_dir, and
        # runner writes env/extravars, env/cmdline, env/envvars only when they do not exist yet,
        # then reads them in every later run: a stage would get the previous stage's variables
        # and an ad hoc run's --become (or a deleted secret-vars file), rollback.yml the
        # rollout's erp_version. Passed per run, each run gets exactly its own.
        result = runner.run(private_data_dir=str(private_data_dir), ident=ident, project_dir=str(self.repo),
                            inventory=self.inventory_source, envvars=envvars, quiet=True,
                            suppress_env_files=True, **kwargs)
        artifacts = private_data_dir / "artifacts" / ident
        scrub_command_artifact(artifacts / "command")
        return RunResult(status=result.status, rc=result.rc, hosts=collected, artifacts=str(artifacts),
                         artifact_data=artifact_data if artifact_data is not None else {})

    def playbook(self, *, playbook, limit, extravars, private_data_dir, ident, event_handler=None,
                 cancel_callback=None) -> RunResult:
        collected: dict[str, HostOutcome] = {}
        artifact_data: dict = {}
        public, secret = split_secret_vars(extravars)
        with tempfile.TemporaryDirectory(prefix="erpctl-") as scratch:
            cmdline = None
            if secret:
                # runner puts extravars on the command line, which it records in the artifacts
                # (and ps shows): secret-named ones go through a private file instead.
                secret_file = Path(scratch) / "secret-vars.json"
                descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                    json.dump(secret, handle)
                cmdline = f"-e @{secret_file}"
            return self._run(private_data_dir, ident, collected, artifact_data, playbook=str(self.repo / playbook),
                             limit=limit, extravars=public, cmdline=cmdline,
                             event_handler=outcome_collector(collected, event_handler, artifact_data),
                             cancel_callback=cancel_callback)

    def adhoc(self, *, module, module_args, host_pattern, private_data_dir, ident, become=True) -> RunResult:
        collected: dict[str, HostOutcome] = {}
        return self._run(private_data_dir, ident, collected, module=module, module_args=module_args,
                         host_pattern=host_pattern, cmdline="--become" if become else None,
                         event_handler=outcome_collector(collected, None))
