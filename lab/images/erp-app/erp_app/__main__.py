"""Command line: ``erp-app [serve|migrate|healthcheck [PATH]|version]``.

Exit codes: 0 success, 1 runtime failure (database unreachable, unhealthy,
crash fault), 2 usage or configuration error. Heavy imports (FastAPI, uvicorn,
psycopg2) happen inside the command that needs them, so ``healthcheck`` (run by
Docker every few seconds) starts fast.
"""

import argparse
import json
import os
import sys
import time

from erp_app.config import ConfigError, load, port_from, redact_url
from erp_app.migrations import target_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="erp-app", description="ERP reference service")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="run the HTTP server (default)")
    commands.add_parser("migrate", help="apply this release's pending schema migrations")
    check = commands.add_parser("healthcheck", help="GET a local health endpoint; exit 0 on 2xx")
    check.add_argument("path", nargs="?", default="/health/live")
    commands.add_parser("version", help="print release, fault and required schema as JSON")
    args = parser.parse_args(argv)
    command = args.command or "serve"
    try:
        if command == "serve":
            return _serve()
        if command == "migrate":
            return _migrate()
        if command == "healthcheck":
            return _healthcheck(args.path)
        return _version()
    except ConfigError as exc:
        print(f"erp-app {command}: {exc}", file=sys.stderr)
        return 2


def _serve() -> int:
    settings = load(os.environ, need_database=True, need_secret=True)
    from erp_app.server import serve

    return serve(settings)


def _migrate() -> int:
    settings = load(os.environ, need_database=True)
    import psycopg2

    from erp_app.db import first_line
    from erp_app.migrate import migrate

    where = redact_url(settings.database_url)
    try:
        hang = _hang_forever if settings.fault.migration_hangs() else None
        applied, schema = migrate(settings.database_url, settings.version, hang)
    except psycopg2.OperationalError as exc:
        print(f"erp-app migrate: database {where}: {first_line(exc)}", file=sys.stderr)
        return 1
    except psycopg2.Error as exc:
        print(
            f"erp-app migrate: failed, nothing applied: {first_line(exc)}",
            file=sys.stderr,
        )
        return 1
    for migration in applied:
        print(f"applied {migration.id} {migration.name} (introduced in {migration.introduced_in})")
    summary = "" if applied else "nothing to do: "
    print(f"{summary}schema {schema}; release {settings.version} needs {target_version(settings.version)}")
    return 0


def _hang_forever() -> None:
    print("erp-app migrate: fault 'migration-hangs': holding the migration lock (lab fault injection)",
          file=sys.stderr, flush=True)
    while True:
        time.sleep(3600)


def _healthcheck(path: str) -> int:
    from erp_app.healthcheck import check

    ok, summary = check(port_from(os.environ), path)
    print(summary)
    return 0 if ok else 1


def _version() -> int:
    settings = load(os.environ)
    info = {
        "version": settings.version,
        "fault": settings.fault.mode,
        "requires_schema": target_version(settings.version),
    }
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
