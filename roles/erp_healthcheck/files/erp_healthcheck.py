#!/usr/bin/python3
# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Scheduled health check of one ERP host (installed by the erp.ops.erp_healthcheck role).

Every run probes what the configuration names (ERP app slots, the database container,
HAProxy's backends, disk and memory headroom, certificate files), then:

- writes node_exporter textfile metrics atomically (temporary file in the same
  directory, fsync, rename), one ``erp_healthcheck_check_ok`` series per check;
- logs every change of a check's state to the journal (syslog);
- POSTs one JSON message to the alert webhook when checks changed state since the last
  notification, or when a failure goes on longer than the repeat interval. The payload
  has ``text`` (Slack incoming webhooks, Teams connectors) plus structured fields.

An app host is judged by the slot its release state (``/var/lib/erp/release.json``,
written by deploy.yml and rollback.yml, only read here) names as live; the other slot is
idle, and a switch between slots in progress is not a failure (``app_results``).

Health documents are parsed by the collection's ``_health.py`` (installed beside this
file), never a second copy. Exit codes: 0 every check ok, 1 a check failed or the webhook
could not be reached, 2 bad usage or configuration, 3 metrics or state not writable.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import syslog
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_CONFIG = 2
EXIT_IO = 3

OK = "ok"
FAIL = "fail"
IDLE = "idle"  # nothing to check (a slot without a running release): neither ok nor failing

DOCKER = "/usr/bin/docker"
OPENSSL = "/usr/bin/openssl"
METRICS_FILE_NAME = "erp_healthcheck.prom"
STATE_FILE_NAME = "state.json"
SYSLOG_IDENT = "erp-healthcheck"
RELEASE_CHECK = "app_release_state"
# docs/app-contract.md, section 5: what readiness says while the app drains after SIGTERM.
DRAIN_CHECK = "process:readiness"
DRAIN_OUTPUT = "shutting down"


# _health.py needs no Ansible (only its open_url_fetcher does, which this script does not use).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _haproxy  # noqa: E402  (installed beside this file by the role)
import _health  # noqa: E402

# ---------------------------------------------------------------------------------------
# Check results


def result(name, status, detail="", duration=None, labels=None):
    """One check result: ``name``, ``status`` (ok/fail/idle), ``detail``, ``duration`` (s)."""
    return {"name": name, "status": status, "detail": " ".join(str(detail).split()),
            "duration": duration, "labels": dict(labels or {})}


def _timed(func, *args, clock=time.monotonic):
    started = clock()
    value = func(*args)
    return value, round(clock() - started, 4)


# ---------------------------------------------------------------------------------------
# Probes (each takes its I/O as parameters so tests drive them without a host)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args, **_kwargs):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def urllib_fetch(url, timeout):
    """``fetch(url, timeout) -> _health.HttpResponse`` without proxies or redirects."""
    request = urllib.request.Request(url, headers={"Accept": _health.HEALTH_CONTENT_TYPE}, method="GET")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _health.HttpResponse(response.status, response.headers.get("Content-Type"), response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read() if exc.fp is not None else b""
        return _health.HttpResponse(exc.code, exc.headers.get("Content-Type") if exc.headers else None, body)


def docker_state(container, run=subprocess.run):
    """The container's ``State`` object from ``docker inspect``, or None when it does not exist."""
    completed = run([DOCKER, "inspect", "--type", "container", "--format", "{{json .State}}", container],
                    capture_output=True, text=True, timeout=20, check=False)
    if completed.returncode != 0:
        if "no such" in (completed.stderr or "").lower():
            return None
        raise RuntimeError(f"docker inspect {container}: {(completed.stderr or '').strip() or 'failed'}")
    return json.loads(completed.stdout)


def container_result(name, container, state, stopped_is_idle):
    """Judge a container ``State``: running is ok; crashed, restarting, dead or unhealthy fail.

    A container stopped cleanly (exit code 0, as the app does after SIGTERM) is idle when
    ``stopped_is_idle`` (a retired blue/green slot), else failed. A missing one is idle
    when ``stopped_is_idle``, else failed.
    """
    if state is None:
        return result(name, IDLE if stopped_is_idle else FAIL, f"container {container} does not exist")
    health = (state.get("Health") or {}).get("Status")
    status = state.get("Status")
    if state.get("Restarting") or status == "restarting":
        return result(name, FAIL, f"container {container} is restarting (exit code {state.get('ExitCode')})")
    if state.get("Running") and status == "running":
        if health == "unhealthy":
            return result(name, FAIL, f"container {container} is running but its Docker health check is unhealthy")
        return result(name, OK, f"container {container} is running")
    exit_code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return result(name, FAIL, f"container {container} was killed for lack of memory")
    if status in ("exited", "created") and exit_code == 0 and stopped_is_idle:
        return result(name, IDLE, f"container {container} is stopped ({status}, exit code 0)")
    return result(name, FAIL, f"container {container} is {status} (exit code {exit_code})")


def _seconds_ago(stamp, now):
    try:
        moment = datetime.strptime((stamp or "")[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None
    return now - moment


def started_seconds_ago(state, now):
    """Seconds since the container (re)started, from ``State.StartedAt``; None if unknown."""
    return _seconds_ago((state or {}).get("StartedAt"), now)


def is_draining(probed):
    """The endpoint answered that the app is shutting down (docs/app-contract.md, section 5:
    after SIGTERM readiness fails at once with ``process:readiness`` saying so, the app
    drains, then exits 0 within its shutdown grace)."""
    return any(str(check.get("name") or "").startswith(DRAIN_CHECK) and DRAIN_OUTPUT in (check.get("output") or "")
               for check in probed.get("failed_checks") or [])


def release_state_result(path, slot_names):
    """``app_release_state`` and the live release, from the state deploy.yml and rollback.yml
    keep on an app host (``{"current": {"version", "slot", ...} | null, "previous", "history"}``).

    Returns ``(result, current)``; ``current`` is None unless a configured slot is live. A
    missing file (nothing deployed yet) or ``"current": null`` is idle; an unreadable file
    or an unknown slot fails. The file is only read: deploy.yml owns it.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return result(RELEASE_CHECK, IDLE, f"{path} does not exist: no release was deployed here"), None
    except OSError as exc:
        return result(RELEASE_CHECK, FAIL, f"cannot read {path}: {exc.strerror or exc}"), None
    try:
        state = json.loads(text)
    except ValueError as exc:
        return result(RELEASE_CHECK, FAIL, f"{path} is not valid JSON ({exc})"), None
    if not isinstance(state, dict) or "current" not in state:
        return result(RELEASE_CHECK, FAIL, f"{path} has no 'current' entry"), None
    current = state["current"]
    if current is None:
        return result(RELEASE_CHECK, IDLE, f"{path}: no release is live on this host"), None
    slot = current.get("slot") if isinstance(current, dict) else None
    if slot not in slot_names:
        return result(RELEASE_CHECK, FAIL, f"{path}: the live slot {slot!r} is not one of the configured slots "
                                           f"({', '.join(slot_names)})"), None
    return result(RELEASE_CHECK, OK, f"release {current.get('version')} is live on slot {slot}"), current


def _endpoint_check(prefix, path):
    return f"{prefix}_{path.rstrip('/').rsplit('/', 1)[-1]}"


def judge_slot(slot, address, endpoints, inspect, fetch, timeout, now, start_grace=0, live=None):
    """Results of one slot, and its phase: ``ready``, ``booting``, ``draining``, ``idle``
    or ``down``.

    ``live=None``: no release state says which slot serves, so a missing or cleanly stopped
    container is idle and a running one is judged. ``live=True``: the release state says
    this slot serves, so it must run: a missing or stopped container fails.

    A running container that started less than ``start_grace`` seconds ago is ``booting``
    and one whose readiness says it is shutting down is ``draining``: their failing
    endpoints are idle, not failing, as both end by themselves (ready, or stopped).
    """
    prefix = f"app_{slot['name']}"
    name = f"{prefix}_container"
    checks = [_endpoint_check(prefix, path) for path in endpoints]
    try:
        state = inspect(slot["container"])
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        return [result(name, FAIL, str(exc)), *(result(check, FAIL, str(exc)) for check in checks)], "down"
    container = container_result(name, slot["container"], state, stopped_is_idle=not live)
    if live and container["status"] != OK:
        container = result(name, FAIL, f"{container['detail']}, but the release state says slot {slot['name']} "
                                       "is live")
    if container["status"] != OK:
        phase = "idle" if container["status"] == IDLE else "down"
        return [container, *(result(check, container["status"], container["detail"]) for check in checks)], phase

    age = started_seconds_ago(state, now)
    booting = age is not None and age < start_grace
    probes = []
    for check, path in zip(checks, endpoints, strict=True):
        endpoint = {"name": check, "url": f"http://{address}:{slot['port']}{path}"}
        probes.append((endpoint, _health.probe_endpoint(endpoint, fetch, timeout=timeout)))
    draining = any(is_draining(probed) for _endpoint, probed in probes)
    results = [container]
    for endpoint, probed in probes:
        latency = None if probed["latency_ms"] is None else round(probed["latency_ms"] / 1000.0, 4)
        if probed["healthy"]:
            results.append(result(endpoint["name"], OK, f"{endpoint['url']}: {probed['status']}", latency))
        elif draining:
            results.append(result(endpoint["name"], IDLE, f"draining (the app is stopping): {probed['reason']}",
                                  latency))
        elif booting:
            results.append(result(endpoint["name"], IDLE, f"starting ({age:.0f} s ago): {probed['reason']}", latency))
        else:
            results.append(result(endpoint["name"], FAIL, probed["reason"], latency))
    gate = _gate_check(prefix, endpoints)
    ready = all(r["status"] == OK for r in results if gate is None or r["name"] == gate)
    if ready:
        return results, "ready"
    return results, "draining" if draining else "booting" if booting else "down"


def _gate_check(prefix, endpoints):
    """The check that says a slot serves: its readiness endpoint (None: every check)."""
    ready = [path for path in endpoints if path.rstrip("/").endswith("/ready")]
    return _endpoint_check(prefix, ready[0]) if ready else None


def app_slot_results(slot, address, endpoints, inspect, fetch, timeout, now=None, start_grace=0):
    """Results of one slot judged by what runs (no release state): see ``judge_slot``."""
    return judge_slot(slot, address, endpoints, inspect, fetch, timeout, time.time() if now is None else now,
                      start_grace=start_grace)[0]


def idle_slot_results(slot, endpoints, inspect, why):
    """A slot that does not serve: every check idle, the container's state in the detail."""
    name = f"app_{slot['name']}_container"
    try:
        state = inspect(slot["container"])
        shown = container_result(name, slot["container"], state, stopped_is_idle=True)["detail"]
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        shown = str(exc)
    detail = f"{why}; {shown}"
    return [result(name, IDLE, detail),
            *(result(_endpoint_check(f"app_{slot['name']}", path), IDLE, detail) for path in endpoints)]


def app_serving_result(slot_results, endpoints):
    """``app_serving`` without release state: at least one slot answers its readiness (or last) endpoint."""
    gate = "ready" if any(p.rstrip("/").endswith("/ready") for p in endpoints) else None
    serving = [r for r in slot_results
               if r["status"] == OK and (r["name"].endswith(f"_{gate}") if gate else r["name"].endswith("_container"))]
    if serving:
        slots = sorted({r["name"].split("_")[1] for r in serving})
        return result("app_serving", OK, f"serving from slot {', '.join(slots)}")
    reasons = [r["detail"] for r in slot_results if r["status"] == FAIL]
    return result("app_serving", FAIL, "no app slot is ready" + (f": {'; '.join(reasons)}" if reasons else ""))


def live_serving_result(slot_name, version, phase, slot_results):
    """``app_serving`` from the live slot's phase: only a live slot that is down fails."""
    where = f"slot {slot_name} (release {version})"
    if phase == "ready":
        return result("app_serving", OK, f"serving from {where}")
    if phase == "booting":
        return result("app_serving", IDLE, f"{where} is starting")
    if phase == "draining":
        return result("app_serving", IDLE, f"{where} is stopping")
    reasons = [r["detail"] for r in slot_results if r["status"] == FAIL]
    return result("app_serving", FAIL, f"{where}, live, is not ready" + (f": {'; '.join(reasons)}" if reasons else ""))


def judge_confirmed(slot, address, endpoints, inspect, fetch, timeout, now, start_grace=0, live=None, confirm=0,
                    sleep=time.sleep):
    """``judge_slot``, but a running slot found down is judged again every second for up to
    ``confirm`` seconds, and counts as down only if it stays so: a passing hiccup (a slow
    answer, a connection refused for a moment) raises no alarm."""
    judged, phase = judge_slot(slot, address, endpoints, inspect, fetch, timeout, now, start_grace, live)
    waited = 0
    while phase == "down" and judged[0]["status"] == OK and waited < confirm:
        sleep(1)
        waited += 1
        judged, phase = judge_slot(slot, address, endpoints, inspect, fetch, timeout, now + waited, start_grace,
                                   live)
    return judged, phase


def app_results(slots, address, endpoints, inspect, fetch, timeout, now, start_grace=0,
                release_state_file="", confirm=0, sleep=time.sleep):
    """Every app check of the host: ``app_release_state``, each slot's, and ``app_serving``.

    With a release state file, only the slot it names as live is judged; the other slot
    (retired, kept for rollback, or being started by a deploy) is idle whatever it does.
    A deploy or rollback records the new live slot once traffic reaches it and before the
    old slot stops, so the live slot runs throughout a switch and a stopped live slot is
    a real failure. Without one
    (``release_state_file`` empty, or the file unreadable) every slot is judged by what
    runs and the host serves while any slot is ready. A running slot found down is
    confirmed (``judge_confirmed``).
    """
    def judged(slot, live=None):
        return judge_confirmed(slot, address, endpoints, inspect, fetch, timeout, now, start_grace, live, confirm,
                               sleep)

    release, current = (None, None)
    if release_state_file:
        release, current = release_state_result(release_state_file, [slot["name"] for slot in slots])
    if release is None or release["status"] == FAIL:
        slot_results = [r for slot in slots for r in judged(slot)[0]]
        return [*([release] if release else []), *slot_results, app_serving_result(slot_results, endpoints)]
    if current is None:
        why = "no release is live on this host"
        slot_results = [r for slot in slots for r in idle_slot_results(slot, endpoints, inspect, why)]
        return [release, *slot_results, result("app_serving", IDLE, why)]
    live = next(slot for slot in slots if slot["name"] == current["slot"])
    live_results, phase = judged(live, live=True)
    results = [release]
    for slot in slots:
        if slot is live:
            results += live_results
        else:
            results += idle_slot_results(slot, endpoints, inspect,
                                         f"not live (the release state says slot {live['name']} is)")
    return [*results, live_serving_result(live["name"], current.get("version"), phase, live_results)]


def db_results(container, user, inspect, run=subprocess.run):
    """The database container runs, accepts connections and is writable."""
    try:
        state = inspect(container)
    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
        return [result("db_container", FAIL, str(exc))]
    results = [container_result("db_container", container, state, stopped_is_idle=False)]
    if results[0]["status"] != OK:
        return [*results, result("db_accepting", FAIL, results[0]["detail"]),
                result("db_writable", FAIL, results[0]["detail"])]
    (ready, duration) = _timed(lambda: run([DOCKER, "exec", container, "pg_isready", "-q", "-U", user],
                                           capture_output=True, text=True, timeout=20, check=False))
    results.append(result("db_accepting", OK if ready.returncode == 0 else FAIL,
                          "accepting connections" if ready.returncode == 0 else
                          f"pg_isready exit code {ready.returncode}", duration))
    query = "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only')::boolean"
    writable = run([DOCKER, "exec", container, "psql", "-U", user, "-d", "postgres", "-XAtc", query],
                   capture_output=True, text=True, timeout=20, check=False)
    answer = (writable.stdout or "").strip()
    if writable.returncode != 0:
        results.append(result("db_writable", FAIL, f"psql exit code {writable.returncode}: {writable.stderr.strip()}"))
    elif answer == "f":
        results.append(result("db_writable", OK, "read-write"))
    else:
        results.append(result("db_writable", FAIL, "database is read-only (in recovery or transaction_read_only on)"))
    return results


def haproxy_show_stat(socket_path, timeout=5):
    """``show stat`` from HAProxy's runtime API socket, as CSV text."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        sock.sendall(b"show stat\n")
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def lb_results(stat_csv):
    """One ``lb_backend_<name>`` result per HAProxy backend: ok while a server is UP."""
    servers = {}
    for row in _haproxy.server_rows(stat_csv):
        servers.setdefault(row["backend"], []).append((row["server"], row["status"]))
    if not servers:
        return [result("lb_backends", FAIL, "HAProxy reports no backend servers")]
    results = []
    for proxy, members in sorted(servers.items()):
        up = [name for name, status in members if status == "UP"]
        listing = ", ".join(f"{name} {status}" for name, status in members)
        results.append(result(f"lb_backend_{proxy}", OK if up else FAIL,
                              f"{len(up)}/{len(members)} servers up ({listing})",
                              labels={"backend": proxy}))
    return results


def disk_result(path, min_free_percent, statvfs=os.statvfs):
    """Free space of the filesystem holding ``path`` (as root sees it) against the minimum."""
    try:
        stats = statvfs(path)
    except OSError as exc:
        return result(f"disk:{path}", FAIL, f"{path}: {exc.strerror}", labels={"path": path, "free_ratio": None})
    ratio = stats.f_bavail / stats.f_blocks if stats.f_blocks else 0.0
    status = OK if ratio * 100 >= min_free_percent else FAIL
    return result(f"disk:{path}", status, f"{path}: {ratio * 100:.1f}% free (minimum {min_free_percent}%)",
                  labels={"path": path, "free_ratio": round(ratio, 4)})


def memory_result(min_available_percent, meminfo_text):
    """MemAvailable against MemTotal from /proc/meminfo."""
    values = {}
    for line in meminfo_text.splitlines():
        key, _sep, rest = line.partition(":")
        if rest.strip():
            values[key] = int(rest.split()[0])
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    if not total or available is None:
        return result("memory", FAIL, "MemTotal/MemAvailable missing from /proc/meminfo")
    ratio = available / total
    status = OK if ratio * 100 >= min_available_percent else FAIL
    return result("memory", status, f"{ratio * 100:.1f}% available (minimum {min_available_percent}%)",
                  labels={"available_ratio": round(ratio, 4)})


def certificate_result(path, min_days, now, run=subprocess.run):
    """Expiry of a PEM certificate file, read with openssl."""
    completed = run([OPENSSL, "x509", "-noout", "-enddate", "-in", path],
                    capture_output=True, text=True, timeout=20, check=False)
    if completed.returncode != 0:
        return result(f"certificate:{path}", FAIL, f"{path}: cannot read certificate ({completed.stderr.strip()})",
                      labels={"path": path, "not_after": None})
    stamp = completed.stdout.strip().partition("=")[2]
    not_after = datetime.strptime(stamp, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC).timestamp()
    days = (not_after - now) / 86400
    status = OK if days >= min_days else FAIL
    return result(f"certificate:{path}", status, f"{path}: expires in {days:.1f} days (minimum {min_days})",
                  labels={"path": path, "not_after": not_after})


# ---------------------------------------------------------------------------------------
# State, notifications


def plan_notifications(previous, results, now, repeat_seconds):
    """Decide what to announce: returns ``(state, changes, repeats)``.

    ``previous`` maps check name to ``{"status", "since", "notified_status",
    "notified_at"}``. A check is announced when its status differs from the last status
    announced (a check seen for the first time counts as previously ok, so a new
    failure is announced and a new ok is not), and a failure again when
    ``repeat_seconds`` passed since its last announcement. idle counts as ok. The
    returned state is what to keep once the announcement was delivered; checks that
    disappeared from the configuration are dropped.
    """
    state, changes, repeats = {}, [], []
    for check in results:
        name, status = check["name"], check["status"]
        alert_status = FAIL if status == FAIL else OK
        before = previous.get(name) or {}
        since = before.get("since", now) if before.get("status") == status else now
        notified_status = before.get("notified_status", OK)
        notified_at = before.get("notified_at")
        entry = {"status": status, "since": since, "notified_status": notified_status,
                 "notified_at": notified_at, "detail": check["detail"]}
        if alert_status != notified_status:
            changes.append({"check": name, "status": alert_status, "previous": notified_status,
                            "since": since, "detail": check["detail"]})
            entry.update(notified_status=alert_status, notified_at=now)
        elif alert_status == FAIL and (notified_at is None or now - notified_at >= repeat_seconds):
            repeats.append({"check": name, "status": FAIL, "previous": FAIL, "since": since,
                            "detail": check["detail"]})
            entry.update(notified_at=now)
        state[name] = entry
    return state, changes, repeats


def state_changes(previous, results):
    """Checks whose status (ok/fail/idle) differs from the last run, for the journal."""
    changed = []
    for check in results:
        before = (previous.get(check["name"]) or {}).get("status")
        if before != check["status"]:
            changed.append((check["name"], before or "new", check["status"], check["detail"]))
    return changed


def build_payload(host, environment, changes, repeats, results, now):
    """The webhook body: ``text`` for Slack and Teams, ``summary``/``themeColor`` for Teams
    connector cards, and the structured fields for generic receivers."""
    failing = [r for r in results if r["status"] == FAIL]
    where = f"[{environment}] {host}" if environment else host
    headline = (f"{where}: {len(failing)} health check(s) failing" if failing
                else f"{where}: all health checks ok")
    lines = [headline]
    for item in changes:
        verb = "RECOVERED" if item["status"] == OK else "FAILING"
        lines.append(f"{verb} {item['check']}: {item['detail']}")
    for item in repeats:
        minutes = int((now - item["since"]) // 60)
        lines.append(f"STILL FAILING ({minutes} min) {item['check']}: {item['detail']}")
    return {
        "text": "\n".join(lines),
        "summary": headline,
        "themeColor": "D70000" if failing else "2EB886",
        "host": host,
        "environment": environment,
        "status": FAIL if failing else OK,
        "time": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds"),
        "changes": changes,
        "repeats": repeats,
        "failing": [{"check": r["name"], "detail": r["detail"]} for r in failing],
    }


def post_webhook(url, payload, timeout):
    """POST the payload as JSON; True on a 2xx answer."""
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - URL from root's config
                                     headers={"Content-Type": "application/json", "User-Agent": SYSLOG_IDENT})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------
# Metrics


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs):
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in pairs) + "}" if pairs else ""


def render_metrics(results, run_started, run_duration):
    """node_exporter textfile metrics for one run (Prometheus text format 0.0.4)."""
    families = {
        "erp_healthcheck_check_ok": ("gauge", "1 if the check passed, 0 if it failed (idle checks are left out)"),
        "erp_healthcheck_check_idle": ("gauge", "1 if the check had nothing to check (e.g. a retired app slot)"),
        "erp_healthcheck_check_duration_seconds": ("gauge", "Time the check took (HTTP latency for endpoints)"),
        "erp_healthcheck_disk_free_ratio": ("gauge", "Free share of the filesystem holding the path"),
        "erp_healthcheck_memory_available_ratio": ("gauge", "MemAvailable / MemTotal"),
        "erp_healthcheck_certificate_expiry_timestamp_seconds": ("gauge", "notAfter of the certificate file"),
        "erp_healthcheck_checks_failed": ("gauge", "Number of checks failing in the last run"),
        "erp_healthcheck_last_run_timestamp_seconds": ("gauge", "Unix time the last run started"),
        "erp_healthcheck_last_run_duration_seconds": ("gauge", "Seconds the last run took"),
    }
    samples = {name: [] for name in families}
    for check in sorted(results, key=lambda r: r["name"]):
        key = [("check", check["name"])]
        if check["status"] == IDLE:
            samples["erp_healthcheck_check_idle"].append((key, 1))
        else:
            samples["erp_healthcheck_check_ok"].append((key, 1 if check["status"] == OK else 0))
            samples["erp_healthcheck_check_idle"].append((key, 0))
        if check["duration"] is not None:
            samples["erp_healthcheck_check_duration_seconds"].append((key, check["duration"]))
        labels = check["labels"]
        if labels.get("free_ratio") is not None:
            samples["erp_healthcheck_disk_free_ratio"].append(([("path", labels["path"])], labels["free_ratio"]))
        if labels.get("available_ratio") is not None:
            samples["erp_healthcheck_memory_available_ratio"].append(([], labels["available_ratio"]))
        if labels.get("not_after") is not None:
            samples["erp_healthcheck_certificate_expiry_timestamp_seconds"].append(
                ([("path", labels["path"])], labels["not_after"]))
    samples["erp_healthcheck_checks_failed"].append(([], sum(1 for r in results if r["status"] == FAIL)))
    samples["erp_healthcheck_last_run_timestamp_seconds"].append(([], round(run_started, 3)))
    samples["erp_healthcheck_last_run_duration_seconds"].append(([], round(run_duration, 4)))
    lines = []
    for name, (kind, help_text) in families.items():
        if not samples[name]:
            continue
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(f"{name}{_labels(pairs)} {_number(value)}" for pairs, value in samples[name])
    return "\n".join(lines) + "\n"


def _number(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def write_atomically(path, text, mode=0o644):
    """Replace ``path`` with ``text`` so readers see the old or the new file, never half of one."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# One run


def load_config(path):
    """Read and check the JSON configuration the role writes; raises ValueError."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    required = ("host", "textfile_dir", "state_dir")
    missing = [key for key in required if not config.get(key)]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}")
    for slot in config.get("app_slots") or []:
        if not {"name", "container", "port"} <= set(slot):
            raise ValueError(f"{path}: app slot {slot!r} needs name, container and port")
    return config


def run_checks(config, inspect=docker_state, fetch=urllib_fetch, run=subprocess.run, now=None):
    """Every check the configuration enables, as a list of results."""
    now = time.time() if now is None else now
    results = []
    timeout = float(config.get("http_timeout", 3))
    if config.get("app_slots"):
        results.extend(app_results(config["app_slots"], config.get("address", "127.0.0.1"),
                                   config.get("app_endpoints") or list(_health.DEFAULT_CHECKS), inspect, fetch,
                                   timeout, now, start_grace=float(config.get("start_grace_seconds", 0)),
                                   release_state_file=config.get("release_state_file") or "",
                                   confirm=int(config.get("confirm_seconds", 0))))
    if config.get("db_container"):
        results.extend(db_results(config["db_container"], config.get("db_user", "postgres"), inspect, run))
    if config.get("lb_socket"):
        if config.get("lb_container"):
            try:
                results.append(container_result("lb_container", config["lb_container"],
                                                inspect(config["lb_container"]), stopped_is_idle=False))
            except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                results.append(result("lb_container", FAIL, str(exc)))
        try:
            results.extend(lb_results(haproxy_show_stat(config["lb_socket"], timeout)))
        except OSError as exc:
            results.append(result("lb_backends", FAIL, f"HAProxy runtime API {config['lb_socket']}: {exc}"))
    for path in config.get("disk_paths") or []:
        results.append(disk_result(path, float(config.get("disk_min_free_percent", 10))))
    if config.get("memory_min_available_percent") is not None:
        try:
            meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
        except OSError as exc:
            meminfo = ""
            results.append(result("memory", FAIL, f"/proc/meminfo: {exc.strerror}"))
        if meminfo:
            results.append(memory_result(float(config["memory_min_available_percent"]), meminfo))
    for path in config.get("certificates") or []:
        results.append(certificate_result(path, float(config.get("certificate_min_days", 14)), now, run))
    return results


def _log(priority, message):
    syslog.syslog(priority, message)


def main(argv=None, now=time.time, log=_log):
    parser = argparse.ArgumentParser(description="ERP host health check (erp.ops.erp_healthcheck)")
    parser.add_argument("--config", default="/etc/erp/healthcheck.json", help="JSON configuration written by the role")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the results as JSON; write no metrics or state and call no webhook")
    args = parser.parse_args(argv)
    syslog.openlog(SYSLOG_IDENT, 0, syslog.LOG_DAEMON)

    try:
        config = load_config(args.config)
    except ValueError as exc:
        print(f"erp-healthcheck: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    started = now()
    clock_started = time.monotonic()
    results = run_checks(config, now=started)
    duration = time.monotonic() - clock_started
    failed = [r for r in results if r["status"] == FAIL]
    if args.dry_run:
        print(json.dumps({"host": config["host"], "healthy": not failed, "checks": results}, indent=2))
        return EXIT_CHECK_FAILED if failed else EXIT_OK

    state_path = Path(config["state_dir"]) / STATE_FILE_NAME
    try:
        previous = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        previous = {}
    except (OSError, ValueError) as exc:
        log(syslog.LOG_WARNING, f"state file {state_path} unreadable ({exc}); starting afresh")
        previous = {}

    for name, before, after, detail in state_changes(previous, results):
        log(syslog.LOG_WARNING if after == FAIL else syslog.LOG_NOTICE, f"{name}: {before} -> {after}: {detail}")

    state, changes, repeats = plan_notifications(previous, results, started,
                                                 float(config.get("repeat_minutes", 60)) * 60)
    delivered = True
    webhook_url = _webhook_url(config)
    if webhook_url and (changes or repeats):
        payload = build_payload(config["host"], config.get("environment", ""), changes, repeats, results, started)
        delivered = post_webhook(webhook_url, payload, float(config.get("webhook_timeout", 5)))
        if not delivered:
            # Keep what was last announced, so the next run tries again.
            log(syslog.LOG_ERR, "alert webhook could not be reached; will retry on the next run")
            state = {name: {**entry, **{k: (previous.get(name) or {}).get(k) for k in ("notified_status",
                                                                                     "notified_at")}}
                     for name, entry in state.items()}
            for entry in state.values():
                if entry["notified_status"] is None:
                    entry["notified_status"] = OK

    try:
        write_atomically(Path(config["textfile_dir"]) / METRICS_FILE_NAME, render_metrics(results, started, duration))
        write_atomically(state_path, json.dumps(state, indent=1, sort_keys=True) + "\n", mode=0o600)
    except OSError as exc:
        print(f"erp-healthcheck: cannot write metrics or state: {exc}", file=sys.stderr)
        log(syslog.LOG_ERR, f"cannot write metrics or state: {exc}")
        return EXIT_IO
    return EXIT_CHECK_FAILED if failed or not delivered else EXIT_OK


def _webhook_url(config):
    path = config.get("webhook_url_file")
    if not path:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
