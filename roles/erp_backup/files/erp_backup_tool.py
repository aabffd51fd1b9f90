#!/usr/bin/python3
# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)
"""Helpers of the ERP backup jobs that are easier to get right in Python than in bash.

Installed on the database hosts by the erp_backup role (standard library only) and called
by erp-backup, erp-backup-verify and erp-backup-base:

  manifest   write manifest.json (and SHA256SUMS) for a finished backup directory (sha256 and
             size per file, checked against the sha256 taken while a file was written)
  check      compare the files of a backup directory with its manifest; names a bad file
             (and refuses a backup dated in the future)
  latest     the newest complete backup, ignoring (and naming) any dated in the future
  retention  apply the grandfather-father-son policy to a directory of timestamped backups,
             and keep the newest N of each label (pre-deploy, pre-restore)
  metrics    write a node_exporter textfile atomically, keeping the last success on failure
  ping       GET/POST a dead-man URL

The pure functions (select_keep, parse_stamp, render_metrics, ...) are tested in
tests/unit/roles/test_erp_backup_tool.py without a database.
Exit codes: 0 success, 1 a check or operation failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
STAMP_RE = re.compile(r"^\d{8}T\d{6}Z$")
# A backup dated later than now plus this was written by a host with a wrong clock: as the
# "newest" it would be restored by default and kept by retention forever.
FUTURE_SKEW = dt.timedelta(minutes=5)
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
QUALIFIED_NAME = re.compile(rf"^{_IDENTIFIER}\.{_IDENTIFIER}$")


class ToolError(Exception):
    """A failure the caller reports in one line and exits 1 for."""


# ---------------------------------------------------------------- timestamps


def format_stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(STAMP_FORMAT)


def parse_stamp(name: str) -> dt.datetime | None:
    """The UTC time a backup directory name stands for, or None for any other name."""
    if not STAMP_RE.match(name):
        return None
    try:
        return dt.datetime.strptime(name, STAMP_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def stamp_of_backup(name: str) -> dt.datetime | None:
    """The time a backup directory stands for, labelled ones (<stamp>-<label>) included."""
    return parse_stamp(name[:16]) if len(name) == 16 or name[16:17] == "-" else None


def in_the_future(stamp: dt.datetime, now: dt.datetime | None = None) -> bool:
    return stamp > (now or dt.datetime.now(dt.UTC)) + FUTURE_SKEW


# ---------------------------------------------------------------- retention


def select_keep(stamps: Iterable[dt.datetime], daily: int, weekly: int, monthly: int) -> set[dt.datetime]:
    """Grandfather-father-son selection.

    Keeps the newest backup of each of the `daily` most recent days that have a backup, of
    each of the `weekly` most recent ISO weeks, and of each of the `monthly` most recent
    months; always keeps the newest backup, whatever the counts say.
    """
    if min(daily, weekly, monthly) < 0:
        raise ValueError("retention counts must not be negative")
    ordered = sorted(set(stamps), reverse=True)
    if not ordered:
        return set()
    keep = {ordered[0]}
    buckets = (
        (daily, lambda t: t.date()),
        (weekly, lambda t: t.isocalendar()[:2]),
        (monthly, lambda t: (t.year, t.month)),
    )
    for count, bucket_of in buckets:
        seen: list[object] = []
        for stamp in ordered:
            bucket = bucket_of(stamp)
            if bucket in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(bucket)
            keep.add(stamp)
    return keep


# A label's kind: the label without what names one instance (pitr-20261127t140300z -> pitr).
LABEL_INSTANCE_RE = re.compile(r"-[0-9][0-9a-z]*$")


def labelled_backups(directory: Path) -> dict[str, dict[dt.datetime, Path]]:
    """{label kind: {stamp: directory}} of the complete labelled backups (<stamp>-<label>)."""
    found: dict[str, dict[dt.datetime, Path]] = {}
    for entry in directory.iterdir():
        stamp = stamp_of_backup(entry.name)
        if stamp is not None and len(entry.name) > 16 and entry.is_dir() and (entry / MANIFEST).is_file():
            found.setdefault(LABEL_INSTANCE_RE.sub("", entry.name[17:]), {})[stamp] = entry
    return found


def complete_backups(directory: Path) -> dict[dt.datetime, Path]:
    """Backup directories with a timestamp name and a manifest; anything else is not a backup."""
    found = {}
    for entry in directory.iterdir():
        stamp = parse_stamp(entry.name)
        if stamp is not None and entry.is_dir() and (entry / MANIFEST).is_file():
            found[stamp] = entry
    return found


def apply_retention(directory: Path, daily: int, weekly: int, monthly: int, dry_run: bool = False,
                    labelled: int | None = None) -> list[Path]:
    """Remove what the GFS policy does not keep; with ``labelled``, also every labelled backup
    (pre-deploy, pre-restore, ...) but the newest ``labelled`` of each label."""
    if labelled is not None and labelled < 1:
        raise ValueError("the labelled backups kept per label must be at least 1")
    # A backup dated in the future is left alone: as the "newest" it would be kept in place of
    # the real newest, which the policy then could remove.
    backups = {stamp: path for stamp, path in complete_backups(directory).items() if not in_the_future(stamp)}
    keep = select_keep(backups, daily, weekly, monthly)
    doomed = [path for stamp, path in sorted(backups.items()) if stamp not in keep]
    for stamps in ({} if labelled is None else labelled_backups(directory)).values():
        current = sorted(stamp for stamp in stamps if not in_the_future(stamp))
        doomed += [stamps[stamp] for stamp in current[:-labelled]]
    if not dry_run:
        for path in doomed:
            shutil.rmtree(path)
    return doomed


# ---------------------------------------------------------------- manifest


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_counts(text: str) -> dict[str, int]:
    """`<table> <rows>` lines (from the dump's own data) into a mapping."""
    counts = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        table, _, rows = line.rpartition(" ")
        if not table or not rows.isdigit():
            raise ToolError(f"unreadable row count line: {line!r}")
        counts[table] = int(rows)
    return counts


def build_manifest(directory: Path, meta: dict[str, str], counts: dict[str, int],
                   expected: dict[str, str] | None = None) -> dict:
    """The manifest of a backup directory. `expected` maps file names to the sha256 taken
    while the file was written: a file on disk that hashes differently is an error."""
    files = {}
    for path in sorted(directory.iterdir()):
        if path.name in (MANIFEST, SUMS) or not path.is_file():
            continue
        files[path.name] = {"sha256": sha256_of(path), "bytes": path.stat().st_size}
    if not files:
        raise ToolError(f"{directory}: no files to describe")
    for name, digest in sorted((expected or {}).items()):
        if name not in files:
            raise ToolError(f"{directory / name}: missing")
        if files[name]["sha256"] != digest.lower():
            raise ToolError(f"{directory / name}: sha256 on disk differs from what was written ({digest})")
    return {"format": 1, **meta, "row_counts": counts, "files": files}


def render_sums(manifest: dict, manifest_text: str) -> str:
    """SHA256SUMS (sha256sum -c format) of the files of a manifest and of manifest.json itself,
    from the digests already taken: no file is read a second time."""
    digests = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    digests[MANIFEST] = hashlib.sha256(manifest_text.encode()).hexdigest()
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def check_backup(directory: Path, now: dt.datetime | None = None) -> list[str]:
    """Problems found in a backup directory, each naming the file; empty when it is intact."""
    stamp = stamp_of_backup(directory.name)
    if stamp is not None and in_the_future(stamp, now):
        return [f"{directory}: dated {format_stamp(stamp)}, in the future: refused (was the clock of the host "
                "that wrote it wrong?)"]
    manifest_path = directory / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        return [f"{manifest_path}: unreadable manifest ({exc})"]
    problems = []
    for name, expected in sorted(manifest.get("files", {}).items()):
        path = directory / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        size = path.stat().st_size
        if size != expected["bytes"]:
            problems.append(f"{path}: {size} bytes, manifest says {expected['bytes']}")
        elif sha256_of(path) != expected["sha256"]:
            problems.append(f"{path}: sha256 differs from the manifest (corrupted)")
    if not manifest.get("files"):
        problems.append(f"{manifest_path}: lists no files")
    return problems


def count_query(counts: dict[str, int]) -> str:
    """One query returning `<table>|<rows>` for each table of a manifest. The names are the
    ones pg_dump printed in its COPY lines, so they are already quoted where SQL needs it."""
    if not counts:
        raise ToolError("the manifest has no row counts")
    for table in counts:
        if not QUALIFIED_NAME.match(table):
            raise ToolError(f"{table!r} is not a schema-qualified table name as pg_dump writes it")
    # Names are checked against pg_dump's identifier syntax above.
    parts = [f"SELECT {_sql_literal(table)}, count(*) FROM {table}" for table in sorted(counts)]  # noqa: S608
    return " UNION ALL ".join(parts) + ";"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    problems = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            problems.append(f"{table}: manifest says {want} rows, restored database has {got}")
    return problems


# ---------------------------------------------------------------- metrics

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def read_metrics(path: Path) -> dict[str, float]:
    values: dict[str, float] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.partition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_metrics(prefix: str, job: str, previous: dict[str, float], now: float, success: bool,
                   duration: float, extra: dict[str, float], current: dict[str, float] | None = None) -> str:
    """Textfile for one job. On failure the last-success time (and the extra gauges that
    describe the last good run) keep their previous values. `current` gauges describe the
    attempt itself (a receiver up or down) and are written as given, success or not."""
    current = current or {}
    if not _METRIC_NAME.match(prefix):
        raise ToolError(f"bad metric prefix {prefix!r}")
    last_success = now if success else previous.get(f"{prefix}_last_success_timestamp_seconds", 0)
    gauges = [
        ("last_success_timestamp_seconds", f"Unix time the last successful {job} finished.", last_success),
        ("last_attempt_timestamp_seconds", f"Unix time the last {job} attempt finished.", now),
        ("last_duration_seconds", f"Duration of the last {job} attempt.", duration),
        ("last_success", f"1 if the last {job} attempt succeeded, 0 if it failed.", 1 if success else 0),
    ]
    standard = {f"{prefix}_{name}" for name, _, _ in gauges}
    if not success:
        # The gauges describing the last good run stay, even when this run measured none.
        for full, value in previous.items():
            name = full.removeprefix(f"{prefix}_")
            if full.startswith(f"{prefix}_") and full not in standard and name not in extra and name not in current:
                extra = {**extra, name: value}
    for name in set(extra) & set(current):
        raise ToolError(f"{name} is given both as a gauge of the last good run and of this attempt")
    for name, value in sorted(extra.items()):
        if not _METRIC_NAME.match(name):
            raise ToolError(f"bad metric name {name!r}")
        kept = value if success else previous.get(f"{prefix}_{name}", value)
        gauges.append((name, f"{job}: {name.replace('_', ' ')} of the last successful run.", kept))
    for name, value in sorted(current.items()):
        if not _METRIC_NAME.match(name):
            raise ToolError(f"bad metric name {name!r}")
        gauges.append((name, f"{job}: {name.replace('_', ' ')} at the last attempt.", value))
    lines = []
    for name, help_text, value in gauges:
        full = f"{prefix}_{name}"
        lines += [f"# HELP {full} {help_text}", f"# TYPE {full} gauge", f"{full} {_number(value)}"]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """node_exporter must never read a half-written file: write beside, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- command line


def _key_values(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ToolError(f"expected key=value, got {pair!r}")
        result[key] = value
    return result


def cmd_manifest(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    counts = parse_counts(Path(args.counts).read_text()) if args.counts else {}
    manifest = build_manifest(directory, _key_values(args.meta), counts, _key_values(args.expect))
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_atomically(directory / MANIFEST, text, 0o600)
    if args.sums:
        write_atomically(directory / SUMS, render_sums(manifest, text), 0o600)
    return 0


def describe_age(seconds: float) -> str:
    minutes = max(int(seconds // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days} d {hours} h" if days else f"{hours} h {minutes} min"


def cmd_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    problems = check_backup(directory)
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.describe and not problems:
        stamp = stamp_of_backup(directory.name)
        files = len(json.loads((directory / MANIFEST).read_text())["files"])
        taken = (f", taken {format_stamp(stamp)}, "
                 f"{describe_age((dt.datetime.now(dt.UTC) - stamp).total_seconds())} ago") if stamp else ""
        print(f"{directory}: intact ({files} files match the manifest){taken}")
    return 1 if problems else 0


def _manifest_counts(directory: str) -> dict[str, int]:
    return json.loads((Path(directory) / MANIFEST).read_text())["row_counts"]


def cmd_count_sql(args: argparse.Namespace) -> int:
    print(count_query(_manifest_counts(args.dir)))
    return 0


def cmd_compare_counts(args: argparse.Namespace) -> int:
    actual = {}
    for line in Path(args.actual).read_text().splitlines():
        if line.strip():
            table, _, rows = line.rpartition("|")
            actual[table] = int(rows)
    problems = compare_counts(_manifest_counts(args.dir), actual)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def cmd_manifest_value(args: argparse.Namespace) -> int:
    value = json.loads((Path(args.dir) / MANIFEST).read_text()).get(args.key)
    if value is None:
        print(f"{args.dir}/{MANIFEST}: no {args.key}", file=sys.stderr)
        return 1
    print(value)
    return 0


def cmd_latest(args: argparse.Namespace) -> int:
    now = dt.datetime.fromtimestamp(args.now, dt.UTC) if args.now is not None else None
    backups = complete_backups(Path(args.dir))
    for stamp in sorted(stamp for stamp in backups if in_the_future(stamp, now)):
        print(f"{backups.pop(stamp)}: dated in the future, ignored (was the clock of the host that wrote it wrong?)",
              file=sys.stderr)
    if not backups:
        print(f"{args.dir}: no complete backup", file=sys.stderr)
        return 1
    print(backups[max(backups)])
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    for path in apply_retention(Path(args.dir), args.daily, args.weekly, args.monthly, args.dry_run, args.labelled):
        print(("would remove " if args.dry_run else "removed ") + str(path))
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    path = Path(args.file)
    extra = {key: float(value) for key, value in _key_values(args.gauge).items()}
    current = {key: float(value) for key, value in _key_values(args.current).items()}
    now = args.now if args.now is not None else dt.datetime.now(dt.UTC).timestamp()
    text = render_metrics(args.prefix, args.job, read_metrics(path), now, args.result == "success",
                          args.duration, extra, current)
    write_atomically(path, text)
    return 0


def redact_url(url: str) -> str:
    """A dead-man URL as logs may show it: its path and query are the credential."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{f':{parts.port}' if parts.port else ''}/..."


def cmd_ping(args: argparse.Namespace) -> int:
    # From the environment, never the command line: any local user can read that (ps).
    if not re.match(r"^[A-Z_][A-Z0-9_]*$", args.url_from):
        print("dead-man ping: --url-from names an environment variable (the URL itself never goes on a command line)",
              file=sys.stderr)
        return 2
    url = os.environ.get(args.url_from, "")
    if not url:
        print(f"dead-man ping: {args.url_from} is not set", file=sys.stderr)
        return 2
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:  # noqa: S310 (URL from inventory)
            response.read(1024)
    except OSError as exc:
        print(f"dead-man ping {redact_url(url)} failed: {exc}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="erp_backup_tool", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("manifest", help="write manifest.json for a backup directory")
    p.add_argument("--dir", required=True)
    p.add_argument("--counts", help="file of '<table> <rows>' lines")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--expect", action="append", default=[], metavar="FILE=SHA256",
                   help="sha256 taken while FILE was written; the file on disk must match it")
    p.add_argument("--sums", action="store_true", help="also write SHA256SUMS for sha256sum -c")
    p.set_defaults(func=cmd_manifest)

    p = sub.add_parser("check", help="compare a backup directory with its manifest")
    p.add_argument("--dir", required=True)
    p.add_argument("--describe", action="store_true", help="print what was checked and the backup's age")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("count-sql", help="print the query counting the rows of a manifest's tables")
    p.add_argument("--dir", required=True)
    p.set_defaults(func=cmd_count_sql)

    p = sub.add_parser("compare-counts", help="compare '<table>|<rows>' lines with a manifest")
    p.add_argument("--dir", required=True)
    p.add_argument("--actual", required=True)
    p.set_defaults(func=cmd_compare_counts)

    p = sub.add_parser("manifest-value", help="print one top-level value of a manifest")
    p.add_argument("--dir", required=True)
    p.add_argument("--key", required=True)
    p.set_defaults(func=cmd_manifest_value)

    p = sub.add_parser("latest", help="print the newest complete backup directory")
    p.add_argument("--dir", required=True)
    p.add_argument("--now", type=float, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_latest)

    p = sub.add_parser("retention", help="remove backups the GFS policy does not keep")
    p.add_argument("--dir", required=True)
    p.add_argument("--daily", type=int, required=True)
    p.add_argument("--weekly", type=int, required=True)
    p.add_argument("--monthly", type=int, required=True)
    p.add_argument("--labelled", type=int, help="labelled backups kept per label (default: all)")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_retention)

    p = sub.add_parser("metrics", help="write a textfile collector file")
    p.add_argument("--file", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--result", choices=["success", "failure"], required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--gauge", action="append", default=[], metavar="NAME=VALUE",
                   help="describes the last successful run: kept from it when this attempt fails")
    p.add_argument("--current", action="append", default=[], metavar="NAME=VALUE",
                   help="describes this attempt: written as given, success or not")
    p.add_argument("--now", type=float, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("ping", help="call a dead-man URL", allow_abbrev=False)
    p.add_argument("--url-from", default="ERP_BACKUP_DEADMAN_URL", metavar="VARIABLE",
                   help="the environment variable holding the URL (default ERP_BACKUP_DEADMAN_URL)")
    p.add_argument("--timeout", type=float, default=10)
    p.set_defaults(func=cmd_ping)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ToolError, OSError, ValueError) as exc:
        print(f"erp_backup_tool {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
