"""The release state each app host keeps in /var/lib/erp/release.json, read back with slurp.

Its one schema is the collection's plugins/module_utils/_release.py (the erp_deploy role
writes it): ``current`` and ``previous`` entries ``{"version", "slot", "image", "time",
"by", "rollout"}``, ``history`` oldest first with an ``outcome`` each. erpctl keeps no state
of its own: status and history always come from the hosts.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path

from erpctl import contract
from erpctl._shared import release_schema


def _pick(record: dict, fields) -> dict:
    return {key: record.get(key) for key in fields}


@dataclass
class HostRelease:
    """What one host reported: ``current`` and ``history``, or ``error`` when unreadable."""

    host: str
    current: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    previous: dict | None = None
    error: str | None = None
    unreachable: bool = False

    @property
    def version(self) -> str | None:
        return self.current.get("version")

    @property
    def slot(self) -> str | None:
        return self.current.get("slot")


def parse_release_document(host: str, text: str) -> HostRelease:
    """Validate one release.json; problems become ``error``, never exceptions."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return HostRelease(host, error=f"{contract.RELEASE_FILE} is not JSON ({exc})")
    if not isinstance(document, dict):
        return HostRelease(host, error=f"{contract.RELEASE_FILE} is not a JSON object")
    problem = release_schema.problem(document)
    if problem:
        return HostRelease(host, error=f"{contract.RELEASE_FILE}: {problem}")
    state = release_schema.normalize_state(document)
    current, previous = state["current"], state["previous"]
    return HostRelease(host, _pick(current, release_schema.ENTRY_FIELDS) if current else {},
                       [_pick(entry, release_schema.HISTORY_FIELDS) for entry in state["history"]],
                       _pick(previous, release_schema.ENTRY_FIELDS) if previous else None)


def decode_slurp(result: dict) -> str:
    """The file content of an ``ansible.builtin.slurp`` result."""
    try:
        return base64.b64decode(result.get("content") or "", validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"slurp returned undecodable content ({exc})") from None


def read_releases(runner, env: str, hosts: list[str], private_data_dir: Path, ident: str) -> dict[str, HostRelease]:
    """Read release.json from the app hosts of ``env``; each of ``hosts`` gets an entry.

    All app hosts of the environment are read (in parallel, one ad hoc run), so the host
    pattern stays the simple ``<env>:&erp_app``.
    """
    run = runner.adhoc(module="ansible.builtin.slurp", module_args=f"src={contract.RELEASE_FILE}",
                       host_pattern=f"{env}:&{contract.APP_GROUP}", private_data_dir=private_data_dir, ident=ident)
    releases = {}
    for host in hosts:
        outcome = run.hosts.get(host)
        if outcome is None:
            releases[host] = HostRelease(host, error="no answer (not in the run)")
        elif outcome.status != "ok":
            message = outcome.message or outcome.status
            if "No such file" in message or "not found" in message.lower():
                message = f"{contract.RELEASE_FILE} not found (never deployed by deploy.yml?)"
            releases[host] = HostRelease(host, error=f"{outcome.status}: {message}",
                                         unreachable=outcome.status == "unreachable")
        else:
            try:
                releases[host] = parse_release_document(host, decode_slurp(outcome.result))
            except ValueError as exc:
                releases[host] = HostRelease(host, error=str(exc))
    return releases


def releases_from_stats(artifact_data: dict, hosts: list[str]) -> dict[str, HostRelease]:
    """Each of ``hosts``' release state as deploy.yml handed it back (``set_stats``
    ``erp_release_states``: the state it wrote to each host's release.json in that run)."""
    states = artifact_data.get(contract.STATS_RELEASE_STATES)
    releases = {}
    for host in hosts:
        state = states.get(host) if isinstance(states, dict) else None
        if state is None:
            releases[host] = HostRelease(host, error="deploy.yml reported no release state for this host")
        else:
            releases[host] = parse_release_document(host, json.dumps(state))
    return releases
