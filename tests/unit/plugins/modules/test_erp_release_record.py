# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""erp_release_record's main() on real files: the state replaced atomically and only when it
changes, one audit line per call, modes, check mode and diff, a missing directory."""

from __future__ import annotations

import grp
import json
import os
import stat

import pytest
from ansible_collections.erp.ops.plugins.modules import erp_release_record
from module_fakes import catch_exits, run_module

STATE = {"current": {"version": "1.0.0", "slot": "blue"}, "previous": None, "history": []}
GROUP = grp.getgrgid(os.getgid()).gr_name


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    catch_exits(monkeypatch)


def run(monkeypatch, tmp_path, state=STATE, entry=None, **extra):
    args = {"path": str(tmp_path / "release.json"), "state": state, "audit_log": str(tmp_path / "audit.log"),
            "audit_entry": entry or {"time": "t1", "host": "app1", "event": "deploy", "version": "1.0.0"},
            "audit_group": GROUP, **extra}
    outcome, _requests = run_module(monkeypatch, erp_release_record.main, args)
    return outcome


def test_writes_the_state_and_appends_the_event(monkeypatch, tmp_path):
    outcome = run(monkeypatch, tmp_path)
    assert outcome.failed is False
    assert outcome.result["changed"] is True and outcome.result["state_changed"] is True
    text = (tmp_path / "release.json").read_text()
    assert json.loads(text) == STATE
    # what to_nice_json wrote before this module: readers and diffs see the same text
    assert text == json.dumps(STATE, indent=4, sort_keys=True) + "\n"
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert lines == ['{"time": "t1", "host": "app1", "event": "deploy", "version": "1.0.0"}']
    assert stat.S_IMODE((tmp_path / "release.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "audit.log").stat().st_mode) == 0o640
    assert grp.getgrgid((tmp_path / "audit.log").stat().st_gid).gr_name == GROUP


def test_an_unchanged_state_is_not_rewritten_but_every_event_is_logged(monkeypatch, tmp_path):
    run(monkeypatch, tmp_path)
    inode = (tmp_path / "release.json").stat().st_ino
    outcome = run(monkeypatch, tmp_path, entry={"time": "t2", "event": "deploy"})
    assert outcome.result["state_changed"] is False
    assert (tmp_path / "release.json").stat().st_ino == inode
    assert len((tmp_path / "audit.log").read_text().splitlines()) == 2


def test_a_changed_state_replaces_the_file_by_rename(monkeypatch, tmp_path):
    run(monkeypatch, tmp_path)
    inode = (tmp_path / "release.json").stat().st_ino
    switched = {**STATE, "current": {"version": "1.1.0", "slot": "green"}}
    outcome = run(monkeypatch, tmp_path, state=switched)
    assert outcome.result["state_changed"] is True
    # a new file renamed over the old one: a reader sees the old or the new, never half
    assert (tmp_path / "release.json").stat().st_ino != inode
    assert json.loads((tmp_path / "release.json").read_text()) == switched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.log", "release.json"]


def test_check_mode_writes_nothing_and_shows_the_diff(monkeypatch, tmp_path):
    outcome = run(monkeypatch, tmp_path, _ansible_check_mode=True, _ansible_diff=True)
    assert outcome.result["changed"] is True
    assert outcome.result["diff"]["before"] == ""
    assert json.loads(outcome.result["diff"]["after"]) == STATE
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_named(monkeypatch, tmp_path):
    outcome = run(monkeypatch, tmp_path / "absent")
    assert outcome.failed is True
    assert outcome.result["msg"] == f"directory of {tmp_path / 'absent' / 'release.json'} does not exist"


@pytest.mark.parametrize(("state", "says"), [
    ({"current": {"slot": "blue"}, "previous": None, "history": []}, "has no current.version"),
    ({"current": None, "previous": None, "history": ["deployed"]}, "history is not a list of objects"),
    ({"current": None, "previous": None, "history": {"v": 1}}, "history must be a list"),
])
def test_a_state_outside_the_schema_is_refused_and_nothing_is_written(monkeypatch, tmp_path, state, says):
    outcome = run(monkeypatch, tmp_path, state=state)
    assert outcome.failed is True
    assert "refusing to write a bad release state" in outcome.result["msg"] and says in outcome.result["msg"]
    assert not (tmp_path / "release.json").exists()
    assert not (tmp_path / "audit.log").exists()
