"""Pure logic of the backup jobs' helper (roles/erp_backup/files/erp_backup_tool.py):
GFS retention with faked dates, manifests and their checks, metrics that keep the last
success on failure. No database needed."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

TOOL_PATH = Path(__file__).resolve().parents[3] / "roles" / "erp_backup" / "files" / "erp_backup_tool.py"
_spec = importlib.util.spec_from_file_location("erp_backup_tool", TOOL_PATH)
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def daily_series(first: str, days: int, hour: int = 2) -> list[dt.datetime]:
    start = at(first).replace(hour=hour)
    return [start + dt.timedelta(days=n) for n in range(days)]


# ---------------------------------------------------------------- retention


def test_gfs_keeps_exactly_the_expected_set_over_a_year_of_dailies():
    stamps = daily_series("2026-01-01", 365)  # 2026-01-01 .. 2026-12-31, 02:00 each day
    kept = sorted(tool.select_keep(stamps, daily=7, weekly=4, monthly=6))
    expected_daily = [at(f"2026-12-{d:02d}T02:00") for d in range(25, 32)]
    # Newest backup of each of the 4 newest ISO weeks: weeks end on Sundays (Dec 27, 20, 13);
    # the current week (53, from Dec 28) has Dec 31 as its newest.
    expected_weekly = [at("2026-12-13T02:00"), at("2026-12-20T02:00"), at("2026-12-27T02:00"), at("2026-12-31T02:00")]
    expected_monthly = [at(f"2026-{m:02d}-{d}T02:00") for m, d in ((7, 31), (8, 31), (9, 30), (10, 31), (11, 30))]
    expected_monthly.append(at("2026-12-31T02:00"))
    assert kept == sorted(set(expected_daily + expected_weekly + expected_monthly))


def test_the_newest_of_several_backups_a_day_represents_the_day():
    stamps = [at("2026-03-10T02:00"), at("2026-03-10T14:00"), at("2026-03-11T02:00"), at("2026-03-11T09:30")]
    assert tool.select_keep(stamps, daily=2, weekly=0, monthly=0) == {at("2026-03-10T14:00"), at("2026-03-11T09:30")}


def test_gaps_count_days_that_have_a_backup_not_calendar_days():
    # Backups stopped for a month: the last 3 good ones are still kept.
    stamps = [at("2026-01-01T02:00"), at("2026-01-02T02:00"), at("2026-01-03T02:00"), at("2026-02-10T02:00")]
    assert tool.select_keep(stamps, daily=3, weekly=0, monthly=0) == set(stamps[1:])


def test_the_newest_backup_is_kept_whatever_the_counts():
    stamps = daily_series("2026-05-01", 3)
    assert tool.select_keep(stamps, daily=0, weekly=0, monthly=0) == {stamps[-1]}


@pytest.mark.parametrize(("daily", "weekly", "monthly"), [(-1, 0, 0), (1, -2, 0), (1, 0, -3)])
def test_negative_counts_are_refused(daily, weekly, monthly):
    with pytest.raises(ValueError):
        tool.select_keep(daily_series("2026-05-01", 3), daily, weekly, monthly)


def make_backup(root: Path, stamp: dt.datetime, complete: bool = True, label: str = "") -> Path:
    path = root / (tool.format_stamp(stamp) + (f"-{label}" if label else ""))
    path.mkdir()
    (path / "erp.dump").write_bytes(b"x" * 10)
    if complete:
        (path / "manifest.json").write_text("{}")
    return path


def test_retention_removes_only_complete_backups_outside_the_policy(tmp_path):
    stamps = daily_series("2026-04-01", 10)
    paths = [make_backup(tmp_path, s) for s in stamps]
    incomplete = make_backup(tmp_path, at("2026-03-01T02:00"), complete=False)
    partial = tmp_path / ".partial-20260301T020000Z-abc"
    partial.mkdir()
    removed = tool.apply_retention(tmp_path, daily=3, weekly=0, monthly=0)
    assert removed == paths[:7]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in paths[7:]] + [incomplete.name, partial.name])


def test_dry_run_removes_nothing(tmp_path):
    paths = [make_backup(tmp_path, s) for s in daily_series("2026-04-01", 5)]
    assert tool.apply_retention(tmp_path, 1, 0, 0, dry_run=True) == paths[:4]
    assert all(p.exists() for p in paths)


def test_labelled_backups_keep_the_newest_of_each_label_and_the_policy_never_touches_them(tmp_path):
    days = daily_series("2026-04-01", 6)
    plain = [make_backup(tmp_path, s) for s in days]
    deploys = [make_backup(tmp_path, s + dt.timedelta(hours=1), label="pre-deploy") for s in days]
    restores = [make_backup(tmp_path, s + dt.timedelta(hours=2), label="pre-restore") for s in days[:2]]
    # Each point-in-time recovery is labelled with its target: one kind, pitr.
    pitrs = [make_backup(tmp_path, s + dt.timedelta(hours=3), label=f"pitr-{tool.format_stamp(s).lower()}")
             for s in days[:4]]
    removed = tool.apply_retention(tmp_path, daily=7, weekly=0, monthly=0, labelled=2)
    assert sorted(removed) == sorted(deploys[:4] + pitrs[:2])
    assert all(p.exists() for p in plain + deploys[4:] + restores + pitrs[2:])
    # Without the option (an older caller), labelled backups are left alone.
    assert tool.apply_retention(tmp_path, daily=7, weekly=0, monthly=0) == []


def test_at_least_one_labelled_backup_of_each_label_is_kept(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        tool.apply_retention(tmp_path, daily=1, weekly=0, monthly=0, labelled=0)


@pytest.mark.parametrize("name", ["20261127T020000Z", "20260229T000000Z"])
def test_stamp_names_round_trip_or_are_rejected(name):
    parsed = tool.parse_stamp(name)
    if name.startswith("20260229"):  # not a date
        assert parsed is None
    else:
        assert tool.format_stamp(parsed) == name


@pytest.mark.parametrize("name", [".partial-20261127T020000Z-x", "latest", "20261127T020000", "20261127T020000Z.old"])
def test_other_names_are_not_backups(name):
    assert tool.parse_stamp(name) is None


# ---------------------------------------------------------------- manifest and check


def test_manifest_lists_every_file_with_its_checksum_and_check_finds_the_corrupted_one(tmp_path):
    (tmp_path / "erp.dump").write_bytes(b"dump-bytes" * 100)
    (tmp_path / "globals.sql").write_text("CREATE ROLE erp;\n")
    assert tool.main(["manifest", "--dir", str(tmp_path), "--meta", "database=erp"]) == 0
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["database"] == "erp"
    assert set(manifest["files"]) == {"erp.dump", "globals.sql"}
    assert tool.check_backup(tmp_path) == []
    data = bytearray((tmp_path / "erp.dump").read_bytes())
    data[500] ^= 0xFF
    (tmp_path / "erp.dump").write_bytes(bytes(data))
    problems = tool.check_backup(tmp_path)
    assert len(problems) == 1
    assert str(tmp_path / "erp.dump") in problems[0]


def test_manifest_writes_sums_that_sha256sum_accepts_without_hashing_twice(tmp_path, monkeypatch):
    (tmp_path / "erp.dump").write_bytes(b"dump-bytes" * 100)
    (tmp_path / "globals.sql").write_text("CREATE ROLE erp;\n")
    hashed = []
    real = tool.sha256_of
    monkeypatch.setattr(tool, "sha256_of", lambda path: hashed.append(path.name) or real(path))
    digest = hashlib.sha256(b"dump-bytes" * 100).hexdigest()
    assert tool.main(["manifest", "--dir", str(tmp_path), "--expect", f"erp.dump={digest}", "--sums"]) == 0
    assert sorted(hashed) == ["erp.dump", "globals.sql"]  # each file read once
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert [line.split()[1] for line in (tmp_path / "SHA256SUMS").read_text().splitlines()] == [
        "erp.dump", "globals.sql", "manifest.json"]
    assert "SHA256SUMS" not in json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert tool.check_backup(tmp_path) == []


def test_a_file_that_differs_from_what_was_written_fails_the_manifest(tmp_path, capsys):
    (tmp_path / "erp.dump").write_bytes(b"what the disk holds")
    written = hashlib.sha256(b"what pg_dump sent").hexdigest()
    assert tool.main(["manifest", "--dir", str(tmp_path), "--expect", f"erp.dump={written}", "--sums"]) == 1
    assert f"{tmp_path / 'erp.dump'}: sha256 on disk differs from what was written" in capsys.readouterr().err
    assert not (tmp_path / "manifest.json").exists()
    assert not (tmp_path / "SHA256SUMS").exists()


def test_a_truncated_or_missing_file_is_named(tmp_path):
    (tmp_path / "erp.dump").write_bytes(b"a" * 100)
    (tmp_path / "globals.sql").write_text("x")
    tool.main(["manifest", "--dir", str(tmp_path)])
    (tmp_path / "erp.dump").write_bytes(b"a" * 20)
    (tmp_path / "globals.sql").unlink()
    problems = tool.check_backup(tmp_path)
    assert problems == [f"{tmp_path / 'erp.dump'}: 20 bytes, manifest says 100", f"{tmp_path / 'globals.sql'}: missing"]


def test_row_counts_parse_and_compare():
    counts = tool.parse_counts("public.customers 3\npublic.invoices 0\n#schema 0002\n")
    assert counts == {"public.customers": 3, "public.invoices": 0}
    assert tool.compare_counts(counts, {"public.customers": 3, "public.invoices": 0}) == []
    assert tool.compare_counts(counts, {"public.customers": 2, "public.invoices": 0}) == [
        "public.customers: manifest says 3 rows, restored database has 2"]


def test_count_query_refuses_names_that_are_not_pg_dump_identifiers():
    assert "FROM public.\"Odd Name\"" in tool.count_query({'public."Odd Name"': 1})
    with pytest.raises(tool.ToolError):
        tool.count_query({"public.x; DROP TABLE y": 1})


# ---------------------------------------------------------------- metrics


def test_failure_keeps_the_last_success_time_and_the_last_good_sizes(tmp_path):
    prom = tmp_path / "erp_backup.prom"
    base = ["metrics", "--file", str(prom), "--prefix", "erp_backup", "--job", "erp-backup"]
    tool.main([*base, "--result", "success", "--duration", "12", "--gauge", "size_bytes=4096", "--now", "1000"])
    tool.main([*base, "--result", "failure", "--duration", "3", "--now", "2000"])
    values = tool.read_metrics(prom)
    assert values["erp_backup_last_success_timestamp_seconds"] == 1000
    assert values["erp_backup_last_attempt_timestamp_seconds"] == 2000
    assert values["erp_backup_last_success"] == 0
    assert values["erp_backup_last_duration_seconds"] == 3
    assert values["erp_backup_size_bytes"] == 4096
    tool.main([*base, "--result", "failure", "--duration", "3", "--gauge", "size_bytes=1", "--now", "3000"])
    assert tool.read_metrics(prom)["erp_backup_size_bytes"] == 4096
    tool.main([*base, "--result", "success", "--duration", "3", "--gauge", "size_bytes=8192", "--now", "4000"])
    assert tool.read_metrics(prom)["erp_backup_size_bytes"] == 8192


def test_gauges_of_the_attempt_itself_are_written_as_given_on_failure(tmp_path):
    prom = tmp_path / "erp_backup_wal.prom"
    base = ["metrics", "--file", str(prom), "--prefix", "erp_backup_wal", "--job", "erp-backup-wal"]
    assert tool.main([*base, "--result", "success", "--duration", "1", "--current", "receiver_up=1",
                      "--gauge", "newest_segment_timestamp_seconds=900", "--now", "1000"]) == 0
    assert tool.main([*base, "--result", "failure", "--duration", "1", "--current", "receiver_up=0",
                      "--now", "2000"]) == 0
    values = tool.read_metrics(prom)
    assert values["erp_backup_wal_receiver_up"] == 0
    assert values["erp_backup_wal_newest_segment_timestamp_seconds"] == 900
    assert values["erp_backup_wal_last_success_timestamp_seconds"] == 1000
    assert tool.main([*base, "--result", "success", "--duration", "1", "--current", "x=1", "--gauge", "x=2"]) == 1


def test_first_run_failing_reports_never_succeeded(tmp_path):
    text = tool.render_metrics("erp_backup", "erp-backup", {}, 50.0, False, 1.0, {})
    assert "erp_backup_last_success_timestamp_seconds 0\n" in text
    assert "# TYPE erp_backup_last_success gauge" in text


def test_metrics_file_is_replaced_atomically(tmp_path):
    prom = tmp_path / "m.prom"
    tool.write_atomically(prom, "a 1\n")
    tool.write_atomically(prom, "a 2\n")
    assert prom.read_text() == "a 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["m.prom"]


def test_a_backup_dated_in_the_future_is_never_the_newest_nor_kept_in_place_of_it(tmp_path, capsys):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    real = make_backup(tmp_path, now - dt.timedelta(hours=2))
    older = make_backup(tmp_path, now - dt.timedelta(days=1))
    future = make_backup(tmp_path, now + dt.timedelta(days=30))
    assert tool.main(["latest", "--dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(real)
    assert f"{future}: dated in the future, ignored" in err
    # Retention neither keeps it as the newest (the real newest is) nor removes it.
    assert tool.apply_retention(tmp_path, daily=0, weekly=0, monthly=0) == [older]
    assert real.is_dir() and future.is_dir()


def test_check_refuses_a_backup_dated_in_the_future_labelled_or_not(tmp_path):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for name in (tool.format_stamp(now + dt.timedelta(hours=1)),
                 tool.format_stamp(now + dt.timedelta(hours=1)) + "-pre-deploy"):
        path = tmp_path / name
        path.mkdir()
        (path / "erp.dump").write_bytes(b"x")
        assert tool.main(["manifest", "--dir", str(path)]) == 0
        [problem] = tool.check_backup(path)
        assert "in the future: refused" in problem
    # Within the allowed clock skew, and in the past, it is checked as usual.
    recent = make_backup(tmp_path, now + dt.timedelta(minutes=1), complete=False)
    assert tool.main(["manifest", "--dir", str(recent)]) == 0
    assert tool.check_backup(recent) == []


def test_latest_with_only_future_backups_finds_none(tmp_path, capsys):
    make_backup(tmp_path, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    assert tool.main(["latest", "--dir", str(tmp_path)]) == 1
    assert "no complete backup" in capsys.readouterr().err


def test_check_describes_an_intact_backup_and_its_age(tmp_path, capsys):
    taken = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3, minutes=7)
    path = tmp_path / (tool.format_stamp(taken) + "-pre-deploy")
    path.mkdir()
    (path / "erp.dump").write_bytes(b"x" * 10)
    (path / "globals.sql").write_text("--")
    assert tool.main(["manifest", "--dir", str(path)]) == 0
    assert tool.main(["check", "--dir", str(path), "--describe"]) == 0
    said = capsys.readouterr().out.strip()
    assert said == f"{path}: intact (2 files match the manifest), taken {tool.format_stamp(taken)}, 3 h 7 min ago"
    # Without --describe, check says nothing when the backup is intact (scripts print their own line).
    assert tool.main(["check", "--dir", str(path)]) == 0
    assert capsys.readouterr().out == ""
    assert tool.describe_age(2 * 86400 + 5 * 3600) == "2 d 5 h"


# ---------------------------------------------------------------- dead-man ping


def test_the_dead_man_url_comes_from_the_environment_and_never_reaches_a_log(monkeypatch, capsys):
    """The URL is a credential: it is read from the environment (a command line is visible to
    every local user) and a failure names only its scheme, host and port."""
    url = "http://127.0.0.1:1/ping/0f6c1d2e-secret-token"
    monkeypatch.setenv("ERP_BACKUP_DEADMAN_URL", url)
    assert tool.main(["ping", "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert "dead-man ping http://127.0.0.1:1/... failed" in err
    assert "secret-token" not in err
    monkeypatch.delenv("ERP_BACKUP_DEADMAN_URL")
    assert tool.main(["ping"]) == 2
    assert "ERP_BACKUP_DEADMAN_URL is not set" in capsys.readouterr().err
    # No --url (nor an abbreviation of --url-from) to put it on a command line.
    with pytest.raises(SystemExit):
        tool.main(["ping", "--url", url])
    capsys.readouterr()
    assert tool.main(["ping", "--url-from", url]) == 2
    assert "secret-token" not in capsys.readouterr().err
