# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""HAProxy's runtime API ``show stat`` CSV, parsed once for every reader.

Used by the ``haproxy_servers`` filter (the erp_lb role's status entry point, restore.yml,
incident.yml) and by the host health-check script, which installs this file beside itself.
Plain Python: no Ansible import, so the script can load it on any host.
"""

from __future__ import annotations

import csv
import io

# Pseudo-servers HAProxy lists for each proxy's own totals.
AGGREGATE_ROWS = ("FRONTEND", "BACKEND")


def parse_show_stat(text):
    """``show stat`` CSV text -> list of rows (dicts keyed by HAProxy's field names)."""
    if not isinstance(text, str):
        raise TypeError(f"show stat output must be text, got {type(text).__name__}")
    # The header line starts with "# ": the first field is "pxname".
    body = text.lstrip("# ")
    return [row for row in csv.DictReader(io.StringIO(body)) if row.get("pxname")]


def server_rows(text):
    """The real servers of ``show stat``: ``[{"backend", "server", "status", "weight", "sessions"}]``.

    ``status`` is HAProxy's first word (UP, DOWN, MAINT, DRAIN, NOLB; "UP 1/2" while a
    check is rising gives UP), ``weight`` and ``sessions`` (current) are integers.
    """
    rows = []
    for row in parse_show_stat(text):
        name = row.get("svname")
        if not name or name in AGGREGATE_ROWS:
            continue
        rows.append({
            "backend": row["pxname"],
            "server": name,
            "status": (row.get("status") or "").split(" ")[0],
            "weight": _integer(row.get("weight")),
            "sessions": _integer(row.get("scur")),
        })
    return rows


def servers_by_backend(text):
    """``{backend: {server: {"status", "weight", "sessions"}}}`` of the real servers."""
    servers = {}
    for row in server_rows(text):
        servers.setdefault(row["backend"], {})[row["server"]] = {
            key: row[key] for key in ("status", "weight", "sessions")}
    return servers


def _integer(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
