# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The release state each app host keeps in /var/lib/erp/release.json: its one schema.

Written by the erp_deploy role (filters in plugins/filter/release.py compute each new state,
erp.ops.erp_release_record writes it) and read by erpctl and the health check::

    {"current": ENTRY or None,      # the release the host serves; None on a fresh host
     "previous": ENTRY or None,     # the release a rollback returns to
     "history": [ENTRY + {"outcome"}, ...]}   # oldest first, at most `keep` entries

    ENTRY = {"version", "slot", "image", "time", "by", "rollout"}

``image`` is the image the slot runs, pinned by digest where the registry gave one; ``time``
is when the entry's event happened (ISO 8601, UTC); ``by`` who ran it (user@controller);
``rollout`` the run's id. ``outcome`` is deployed, reverted or rollback.
Plain Python: no Ansible import.
"""

from __future__ import annotations

SLOTS = ("blue", "green")
ENTRY_FIELDS = ("version", "slot", "image", "time", "by", "rollout")
HISTORY_FIELDS = (*ENTRY_FIELDS, "outcome")
OUTCOMES = ("deployed", "reverted", "rollback")


def empty_state():
    return {"current": None, "previous": None, "history": []}


def normalize_state(state):
    """A release state with its three keys; ``None`` or ``""`` is a fresh host's.

    :raises ValueError: when the state is not a dict or its history not a list.
    """
    if state in (None, ""):
        return empty_state()
    if not isinstance(state, dict):
        raise ValueError(f"release state must be a dict, got {type(state).__name__}")
    history = state.get("history") or []
    if not isinstance(history, list):
        raise ValueError("release state: history must be a list")
    return {"current": state.get("current"), "previous": state.get("previous"), "history": list(history)}


def check_entry(entry, what):
    """A copy of ``entry`` after checking it names a version and a slot.

    :raises ValueError: naming ``what`` and the bad entry.
    """
    if not isinstance(entry, dict) or not entry.get("version") or entry.get("slot") not in SLOTS:
        raise ValueError(f"{what}: needs a dict with a version and a slot in {SLOTS}, got {entry!r}")
    return dict(entry)


def problem(state):
    """Why ``state`` is not a release state a reader can use; empty when it is."""
    try:
        state = normalize_state(state)
    except ValueError as exc:
        return str(exc)
    for key in ("current", "previous"):
        entry = state[key]
        if entry is not None and (not isinstance(entry, dict) or not entry.get("version")):
            return f"has no {key}.version"
    if not all(isinstance(entry, dict) for entry in state["history"]):
        return "history is not a list of objects"
    return ""
