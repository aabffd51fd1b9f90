"""Release-state filters: slot choice, switch/restore bookkeeping, image retention, endpoints."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.filter.release import (
    FilterModule,
    health_endpoints,
    release_idle_slot,
    release_keep_versions,
    release_restore,
    release_switch,
)

V100 = {"version": "1.0.0", "slot": "blue", "image": "r/erp-app@sha256:a"}
V110 = {"version": "1.1.0", "slot": "green", "image": "r/erp-app@sha256:b"}


@pytest.mark.parametrize(("state", "slot"), [
    (None, "blue"),
    ({}, "blue"),
    ({"current": V100}, "green"),
    ({"current": V110}, "blue"),
])
def test_idle_slot_is_the_one_the_current_release_does_not_use(state, slot):
    assert release_idle_slot(state) == slot


@pytest.mark.parametrize("state", [["x"], {"current": {"version": "1", "slot": "red"}}, {"history": "x"}])
def test_idle_slot_rejects_malformed_state(state):
    with pytest.raises(AnsibleFilterError):
        release_idle_slot(state)


def test_switch_moves_current_to_previous_and_appends_history():
    state = release_switch(release_switch(None, V100), V110)
    assert state["current"] == V110
    assert state["previous"] == V100
    assert [h["version"] for h in state["history"]] == ["1.0.0", "1.1.0"]
    assert all(h["outcome"] == "deployed" for h in state["history"])


def test_switch_to_the_same_version_keeps_the_previous_release():
    state = release_switch(release_switch(None, V100), V110)
    again = release_switch(state, dict(V110, slot="blue"))
    assert again["previous"] == V100


def test_switch_trims_history_to_keep():
    state = None
    for n in range(30):
        state = release_switch(state, {"version": f"1.0.{n}", "slot": "blue"}, keep=5)
    assert [h["version"] for h in state["history"]] == [f"1.0.{n}" for n in range(25, 30)]


@pytest.mark.parametrize(("entry", "keep"), [({"version": "1"}, 5), ({"slot": "blue"}, 5), (V100, 0), ("x", 5)])
def test_switch_rejects_bad_entries(entry, keep):
    with pytest.raises(AnsibleFilterError):
        release_switch(None, entry, keep=keep)


def test_restore_puts_back_current_and_previous_and_logs_the_outcome():
    before = release_switch(release_switch(None, V100), V110)
    after = release_switch(before, {"version": "1.2.0", "slot": "blue"})
    restored = release_restore(after, before["current"], before["previous"], dict(V110, outcome="reverted"))
    assert restored["current"] == V110 and restored["previous"] == V100
    assert restored["history"][-1]["outcome"] == "reverted"


def test_restore_to_nothing_after_a_failed_first_deploy():
    after = release_switch(None, V100)
    restored = release_restore(after, None, None, {"version": "1.0.0", "outcome": "reverted"})
    assert restored["current"] is None


def test_restore_needs_an_outcome():
    with pytest.raises(AnsibleFilterError):
        release_restore(None, None, None, {"version": "1"})


def test_keep_versions_never_drops_current_or_previous():
    state = None
    for n in range(6):
        state = release_switch(state, {"version": f"1.0.{n}", "slot": "blue" if n % 2 else "green"})
    state = release_restore(state, state["previous"], None, {"version": "1.0.5", "outcome": "reverted"})
    keep = release_keep_versions(state, 2)
    assert keep[0] == "1.0.4"
    assert "1.0.5" in keep and len(keep) == 3


def test_keep_versions_rejects_negative_counts():
    with pytest.raises(AnsibleFilterError):
        release_keep_versions(None, -1)


def test_health_endpoints_cross_targets_with_checks():
    endpoints = health_endpoints([{"name": "app1", "url": "http://10.0.0.5:8002/"}], ["/health/live", "/health/ready"])
    assert endpoints == [
        {"name": "app1 /health/live", "url": "http://10.0.0.5:8002/health/live"},
        {"name": "app1 /health/ready", "url": "http://10.0.0.5:8002/health/ready"},
    ]


@pytest.mark.parametrize(("targets", "checks"), [
    ([], []), ("x", ["/a"]), ([{"name": "a"}], ["/a"]), ([{"name": "a", "url": "u"}], ["health"]),
])
def test_health_endpoints_reject_bad_input(targets, checks):
    with pytest.raises(AnsibleFilterError):
        health_endpoints(targets, checks)


def test_every_filter_is_registered():
    assert set(FilterModule().filters()) == {
        "release_idle_slot", "release_switch", "release_restore", "release_keep_versions", "health_endpoints"}
