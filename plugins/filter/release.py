# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Filters over the release state each app host keeps in /var/lib/erp/release.json.

The state's schema is plugins/module_utils/_release.py (the erp_deploy role writes it,
erpctl reads it). Pure functions: the playbooks read the file, call these, and write the result back.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.module_utils import _release

SLOTS = _release.SLOTS


def _state(state):
    try:
        return _release.normalize_state(state)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def _entry(entry, what):
    try:
        return _release.check_entry(entry, what)
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def release_idle_slot(state):
    """The slot a new release boots in: the one the current release does not use (blue first)."""
    current = _state(state)["current"]
    if not current:
        return "blue"
    slot = current.get("slot")
    if slot not in SLOTS:
        raise AnsibleFilterError(f"release_idle_slot: current slot {slot!r} is not one of {SLOTS}")
    return "green" if slot == "blue" else "blue"


def release_switch(state, entry, outcome="deployed", keep=20):
    """State after `entry` became the current release: the old current becomes previous."""
    new = _state(state)
    entry = _entry(entry, "release_switch")
    if not isinstance(keep, int) or keep < 1:
        raise AnsibleFilterError(f"release_switch: keep must be a positive integer, got {keep!r}")
    old = new["current"]
    if old and old.get("version") != entry["version"]:
        new["previous"] = old
    new["current"] = entry
    new["history"] = (new["history"] + [dict(entry, outcome=outcome)])[-keep:]
    return new


def release_restore(state, current, previous, entry, keep=20):
    """State after a failed rollout put `current` back (with its own `previous`)."""
    new = _state(state)
    if current is not None:
        _entry(current, "release_restore")
    if not isinstance(entry, dict) or "outcome" not in entry:
        raise AnsibleFilterError("release_restore: the history entry needs an outcome")
    new["current"] = current
    new["previous"] = previous
    new["history"] = (new["history"] + [dict(entry)])[-keep:]
    return new


def release_keep_versions(state, count=3):
    """Versions whose images must stay: current, previous, then the newest others of the history."""
    new = _state(state)
    if not isinstance(count, int) or count < 0:
        raise AnsibleFilterError(f"release_keep_versions: count must be a non-negative integer, got {count!r}")
    keep = [r["version"] for r in (new["current"], new["previous"]) if r and r.get("version")]
    older = []
    for record in reversed(new["history"]):
        version = record.get("version") if isinstance(record, dict) else None
        if version and version not in keep and version not in older and record.get("outcome") == "deployed":
            older.append(version)
    return keep + older[:count]


def health_endpoints(targets, checks):
    """[{name, url}] base URLs x check paths -> erp_health `endpoints` entries."""
    if not isinstance(targets, list) or not isinstance(checks, list) or not checks:
        raise AnsibleFilterError("health_endpoints: needs a list of targets and a non-empty list of check paths")
    endpoints = []
    for target in targets:
        if not isinstance(target, dict) or not target.get("name") or not target.get("url"):
            raise AnsibleFilterError(f"health_endpoints: target {target!r} needs a name and a url")
        for check in checks:
            if not isinstance(check, str) or not check.startswith("/"):
                raise AnsibleFilterError(f"health_endpoints: check {check!r} must be a path starting with /")
            endpoints.append({"name": f"{target['name']} {check}", "url": target["url"].rstrip("/") + check})
    return endpoints


class FilterModule:
    def filters(self):
        return {
            "release_idle_slot": release_idle_slot,
            "release_switch": release_switch,
            "release_restore": release_restore,
            "release_keep_versions": release_keep_versions,
            "health_endpoints": health_endpoints,
        }
