# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Health probing of ``application/health+json`` endpoints.

The response format is the IETF draft-inadarei-api-health-check: a JSON object with
``status`` (pass, warn or fail), optional ``version``, ``releaseId``, ``output`` and a
``checks`` object mapping ``component:measurement`` names to lists of check objects.
HTTP 2xx-3xx together with pass/warn means healthy; 4xx/5xx or fail means unhealthy.

Everything here is plain functions with explicit parameters so the erp_health module,
the erpctl CLI and the erp_healthcheck role's host script share one implementation; the
only I/O is in ``open_url_fetcher`` (HTTP) and ``wait_for_health`` (clock and sleep), both
injectable. Only ``open_url_fetcher`` needs Ansible (its urls module), and imports it when
called: the host script runs where Ansible is not installed.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from collections import namedtuple
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

HEALTH_CONTENT_TYPE = "application/health+json"
JSON_CONTENT_TYPE = "application/json"
DEFAULT_CHECKS = ("/health/live", "/health/ready", "/health/database")
DEFAULT_EXPECTED_STATUS = ("pass", "warn")
HEALTH_STATUSES = ("pass", "warn", "fail")

# The draft lists these aliases used by common frameworks (NodeJS "ok", Spring "up"/"down").
_STATUS_ALIASES = {
    "pass": "pass",
    "ok": "pass",
    "up": "pass",
    "warn": "warn",
    "fail": "fail",
    "error": "fail",
    "down": "fail",
}
_JSON_TYPE_NAMES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
# Characters RFC 3986 never allows in a path or query; seeing one means a mangled argument.
_URL_UNSAFE = re.compile(r'[\s"<>\[\]{}|\\^`]')
# Keeps a single check's output from swamping the one-line reason; the full text stays in
# the structured result.
_REASON_OUTPUT_LIMIT = 160

# What a fetch function returns: HTTP status code, Content-Type header value, body bytes.
HttpResponse = namedtuple("HttpResponse", ["status", "content_type", "body"])

# Everything a fetch can raise for a failed request: socket, TLS and timeout errors and
# URLError are OSError; a malformed URL is ValueError; a broken answer is HTTPException.
# open_url_fetcher turns Ansible's own ConnectionError family (proxy and TLS validation
# failures) into URLError, so callers need not import Ansible to catch them.
FETCH_ERRORS = (OSError, ValueError, HTTPException)


def normalize_status(value):
    """Return ``pass``, ``warn`` or ``fail`` for a health status (aliases accepted), else None."""
    if not isinstance(value, str):
        return None
    return _STATUS_ALIASES.get(value.strip().lower())


def _json_type(value):
    return _JSON_TYPE_NAMES.get(type(value), "not an object")


def _one_line(text, limit=None):
    line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 3] + "..."
    return line


def _media_type(content_type):
    if not content_type:
        return None, None
    parts = [part.strip() for part in str(content_type).split(";")]
    charset = None
    for param in parts[1:]:
        key, _sep, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"')
    return parts[0].lower(), charset


def _check_entries(name, value, notes):
    """Normalize one ``checks`` member (a list of check objects, or a lone object) to dicts."""
    entries = value if isinstance(value, list) else [value]
    normalized = []
    for entry in entries:
        if not isinstance(entry, dict):
            notes.append(f"check {name} has a non-object entry; ignored")
            continue
        raw_status = entry.get("status")
        status = normalize_status(raw_status)
        if raw_status is not None and status is None:
            notes.append(f"check {name} has unknown status {raw_status!r}")
        component_id = entry.get("componentId")
        label = name
        if component_id is not None and len(entries) > 1:
            label = f"{name}[{component_id}]"
        output = entry.get("output")
        normalized.append({
            "name": label,
            "status": status,
            "output": None if output is None else str(output),
            "component_id": component_id,
            "component_type": entry.get("componentType"),
            "observed_value": entry.get("observedValue"),
            "observed_unit": entry.get("observedUnit"),
            "time": entry.get("time"),
        })
    return normalized


def parse_checks(checks, notes=None):
    """Flatten a health body's ``checks`` object to a list of check dicts.

    Each item has ``name`` (the ``component:measurement`` key, plus ``[componentId]``
    when a key holds several entries), ``status`` (normalized or None), ``output``,
    ``component_id``, ``component_type``, ``observed_value``, ``observed_unit`` and
    ``time``. Problems are appended to ``notes`` (a list) instead of raising.
    """
    notes = [] if notes is None else notes
    if checks is None:
        return []
    if not isinstance(checks, dict):
        notes.append(f"checks is {_json_type(checks)}, not an object; ignored")
        return []
    flattened = []
    for name, value in checks.items():
        flattened.extend(_check_entries(str(name), value, notes))
    return flattened


def _empty_result(url, name=None):
    return {
        "name": name if name is not None else url,
        "url": url,
        "http_status": None,
        "content_type": None,
        "status": None,
        "version": None,
        "release_id": None,
        "output": None,
        "latency_ms": None,
        "failed_checks": [],
        "warned_checks": [],
        "notes": [],
        "problems": [],
        "error": None,
        "healthy": False,
        "reason": None,
    }


def _decode_body(body, charset):
    if body is None:
        return ""
    if isinstance(body, bytes):
        return body.decode(charset or "utf-8")
    return str(body)


def parse_health_response(http_status, content_type, body, url="", require_content_type=True, name=None):
    """Parse one HTTP answer of a health endpoint into a normalized result dict.

    :param http_status: HTTP status code (int) or None when there was no answer.
    :param content_type: the Content-Type header value, or None.
    :param body: response body as bytes or str.
    :param url: the probed URL (used in ``reason``).
    :param require_content_type: when true, only ``application/health+json`` and
        ``application/json`` (the latter with a note) are accepted.
    :param name: display name of the endpoint, defaults to the URL.
    :returns: dict with ``name``, ``url``, ``http_status``, ``content_type``, ``status``,
        ``version``, ``release_id``, ``output``, ``latency_ms`` (None here),
        ``failed_checks``, ``warned_checks``, ``notes``, ``problems``, ``error``,
        ``healthy`` and ``reason``. Never raises on bad input: problems are reported.
    """
    result = _empty_result(url, name)
    result["http_status"] = http_status
    result["content_type"] = content_type
    problems = result["problems"]
    notes = result["notes"]

    media_type, charset = _media_type(content_type)
    if media_type == JSON_CONTENT_TYPE:
        notes.append(f"content type {JSON_CONTENT_TYPE} accepted in place of {HEALTH_CONTENT_TYPE}")
    elif media_type != HEALTH_CONTENT_TYPE:
        shown = media_type or "missing"
        if require_content_type:
            problems.append(f"content type {shown} is not {HEALTH_CONTENT_TYPE}")
            return _finish(result)
        notes.append(f"content type {shown} is not {HEALTH_CONTENT_TYPE}; parsed anyway")

    try:
        text = _decode_body(body, charset)
    except (UnicodeDecodeError, LookupError) as exc:
        problems.append(f"body is not valid {charset or 'utf-8'} text ({exc})")
        return _finish(result)
    if not text.strip():
        problems.append("empty body")
        return _finish(result)
    try:
        document = json.loads(text)
    except ValueError as exc:
        problems.append(f"invalid JSON ({exc})")
        return _finish(result)
    if not isinstance(document, dict):
        problems.append(f"body is {_json_type(document)}, not a JSON object")
        return _finish(result)

    raw_status = document.get("status")
    if raw_status is None:
        problems.append("body has no status")
    else:
        result["status"] = normalize_status(raw_status)
        if result["status"] is None:
            problems.append(f"unknown status {raw_status!r}")
    for field, key in (("version", "version"), ("release_id", "releaseId"), ("output", "output")):
        if document.get(key) is not None:
            result[field] = str(document[key])

    checks = parse_checks(document.get("checks"), notes)
    result["failed_checks"] = [check for check in checks if check["status"] == "fail"]
    result["warned_checks"] = [check for check in checks if check["status"] == "warn"]
    return _finish(result)


def _http_ok(http_status):
    return isinstance(http_status, int) and 200 <= http_status < 400


def _finish(result):
    """Recompute ``healthy`` and ``reason`` from the fields and problems of a result."""
    result["healthy"] = (
        result["error"] is None
        and not result["problems"]
        and _http_ok(result["http_status"])
        and result["status"] in ("pass", "warn")
    )
    result["reason"] = None if result["healthy"] else compose_reason(result)
    return result


def _check_line(check):
    output = check.get("output")
    detail = _one_line(output, _REASON_OUTPUT_LIMIT) if output else (check.get("status") or "no output")
    return f"{check.get('name')}: {detail}"


def compose_reason(result):
    """One line saying why an endpoint result is unhealthy, naming the URL first.

    Example: ``http://10.0.0.5:8001/health/ready: HTTP 503 status=fail
    (postgresql:connection: connection refused)``.
    """
    if result.get("error"):
        return f"{result.get('url')}: {result['error']}"
    head = []
    if result.get("http_status") is not None:
        head.append(f"HTTP {result['http_status']}")
    if result.get("status"):
        head.append(f"status={result['status']}")
    text = " ".join(head)
    problems = result.get("problems") or []
    if problems:
        text = ", ".join(([text] if text else []) + list(problems))
    details = [_check_line(check) for check in result.get("failed_checks") or []]
    if not details:
        details = [_check_line(check) for check in result.get("warned_checks") or []]
    if not details and result.get("output") and result.get("status") in ("fail", "warn"):
        details = [_one_line(result["output"], _REASON_OUTPUT_LIMIT)]
    if details:
        text = f"{text} ({'; '.join(details)})"
    return f"{result.get('url')}: {text or 'unhealthy'}"


def evaluate_expectations(result, expected_status=DEFAULT_EXPECTED_STATUS, expected_version=None, max_latency_ms=None):
    """Apply the caller's expectations to a parsed result; returns a new result dict.

    :param expected_status: health statuses accepted as healthy, a subset of pass/warn.
    :param expected_version: when set, the body's ``version`` must equal it (as strings).
    :param max_latency_ms: when set, ``latency_ms`` must not exceed it.
    :raises ValueError: on an invalid ``expected_status``.
    """
    accepted = validate_expected_status(expected_status)
    evaluated = dict(result)
    problems = list(result.get("problems") or [])
    evaluated["problems"] = problems
    if evaluated.get("error") is None and evaluated.get("status") is not None:
        if evaluated["status"] in ("pass", "warn") and evaluated["status"] not in accepted:
            problems.append(f"expected status {'/'.join(accepted)}")
        if expected_version is not None:
            expected = str(expected_version)
            if evaluated.get("version") is None:
                problems.append(f"no version in body, expected {expected}")
            elif evaluated["version"] != expected:
                problems.append(f"version {evaluated['version']} instead of {expected}")
    latency = evaluated.get("latency_ms")
    measured = evaluated.get("error") is None and latency is not None
    if measured and max_latency_ms is not None and latency > max_latency_ms:
        problems.append(f"latency {latency:.0f} ms over {_number(max_latency_ms)} ms")
    return _finish(evaluated)


def _number(value):
    return int(value) if float(value).is_integer() else value


def validate_expected_status(expected_status):
    """Return ``expected_status`` as a tuple after checking it is a non-empty subset of pass/warn."""
    if isinstance(expected_status, str):
        expected_status = [expected_status]
    try:
        statuses = tuple(expected_status)
    except TypeError as exc:
        raise TypeError(f"expected_status must be a list of pass/warn, got {expected_status!r}") from exc
    if not statuses:
        raise ValueError("expected_status must not be empty")
    for status in statuses:
        if status not in ("pass", "warn"):
            raise ValueError(f"expected_status item {status!r} is not pass or warn")
    return statuses


def build_endpoints(url=None, checks=None, endpoints=None):
    """Turn the module options into a list of ``{"name", "url"}`` dicts.

    Either ``url`` (base URL) with ``checks`` (paths, default ``DEFAULT_CHECKS``; an
    absolute http(s) URL is used as is), or ``endpoints`` (list of dicts with ``name``
    and ``url``, and ``any_version`` true for one whose version is not checked).

    :raises ValueError: when both or neither forms are given, or on malformed items.
    """
    if (url is None) == (endpoints is None):
        raise ValueError("give exactly one of url (with checks) or endpoints")
    if endpoints is not None:
        if checks is not None:
            raise ValueError("checks can only be used with url, not with endpoints")
        if not isinstance(endpoints, (list, tuple)) or not endpoints:
            raise ValueError("endpoints must be a non-empty list of {name, url} dicts")
        built = []
        for index, endpoint in enumerate(endpoints):
            if not isinstance(endpoint, dict) or not endpoint.get("url"):
                raise ValueError(f"endpoints item {index} ({endpoint!r}) needs a url")
            entry = {"name": str(endpoint.get("name") or endpoint["url"]), "url": str(endpoint["url"])}
            if endpoint.get("any_version"):
                entry["any_version"] = True
            built.append(entry)
        return built
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url must be a non-empty string")
    paths = DEFAULT_CHECKS if checks is None else checks
    if isinstance(paths, str) or not paths:
        raise ValueError("checks must be a non-empty list of paths")
    base = url.strip().rstrip("/")
    built = []
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"checks item {path!r} is not a path")
        path = path.strip()
        if _URL_UNSAFE.search(path):
            # Typically checks=["/a","/b"] in k=v task arguments, which Ansible passes as one
            # string and splits on commas, leaving brackets and quotes in the items.
            raise ValueError(
                f"checks item {path!r} is not a URL path (brackets, quotes or blanks); "
                "in k=v arguments write checks=/health/live,/health/ready"
            )
        if urlsplit(path).scheme in ("http", "https"):
            built.append({"name": path, "url": path})
        else:
            built.append({"name": path, "url": f"{base}/{path.lstrip('/')}"})
    return built


def describe_fetch_error(exc, timeout=None):
    """A short text for an exception raised while fetching (timeout, refused, TLS...)."""
    reason = exc.reason if isinstance(exc, URLError) and not isinstance(exc, HTTPError) else exc
    if isinstance(reason, (socket.timeout, TimeoutError)) or "timed out" in str(reason).lower():
        if timeout is not None:
            return f"timed out after {_number(timeout)} s"
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve host ({_one_line(reason)})"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error ({_one_line(reason)})"
    text = _one_line(reason) or type(reason).__name__
    return f"request failed ({text})"


def probe_endpoint(endpoint, fetch, timeout=5, clock=time.monotonic, require_content_type=True,
                   expected_status=DEFAULT_EXPECTED_STATUS, expected_version=None, max_latency_ms=None):
    """Fetch one endpoint once and return its evaluated result (see parse_health_response).

    :param endpoint: ``{"name", "url"}`` dict as built by build_endpoints.
    :param fetch: ``fetch(url, timeout) -> HttpResponse``; transport failures raise one of
        ``FETCH_ERRORS``, which become the result's ``error``.
    :param clock: monotonic clock in seconds, used for ``latency_ms``.
    """
    url = endpoint["url"]
    started = clock()
    try:
        response = fetch(url, timeout)
    except FETCH_ERRORS as exc:
        result = _empty_result(url, endpoint.get("name"))
        result["latency_ms"] = round((clock() - started) * 1000.0, 1)
        result["error"] = describe_fetch_error(exc, timeout)
        return _finish(result)
    latency_ms = round((clock() - started) * 1000.0, 1)
    result = parse_health_response(response.status, response.content_type, response.body, url=url,
                                   require_content_type=require_content_type, name=endpoint.get("name"))
    result["latency_ms"] = latency_ms
    return evaluate_expectations(result, expected_status=expected_status, expected_version=expected_version,
                                 max_latency_ms=max_latency_ms)


def validate_wait(endpoints, deadline=60, interval=2, timeout=5, hold=0, expected_status=DEFAULT_EXPECTED_STATUS):
    """Raise ValueError on what :func:`wait_for_health` cannot wait with; callers that change
    something before the wait check first."""
    if not endpoints:
        raise ValueError("no endpoints to probe")
    if deadline < 0:
        raise ValueError(f"deadline must be >= 0, got {deadline!r}")
    if hold < 0:
        raise ValueError(f"hold must be >= 0, got {hold!r}")
    if interval <= 0:
        raise ValueError(f"interval must be > 0, got {interval!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be > 0, got {timeout!r}")
    validate_expected_status(expected_status)


def wait_for_health(endpoints, fetch, deadline=60, interval=2, timeout=5, require_content_type=True,
                    expected_status=DEFAULT_EXPECTED_STATUS, expected_version=None, max_latency_ms=None,
                    hold=0, abort=None, clock=time.monotonic, sleep=time.sleep):
    """Probe all endpoints until every one is healthy in the same attempt, or the deadline passes.

    Each attempt probes every endpoint, so the returned ``checks`` are one consistent
    snapshot. No attempt starts after ``deadline`` seconds; a running attempt is not cut
    short, so ``elapsed`` can exceed the deadline by up to one attempt.

    With ``hold`` > 0 (a bake), healthy is not enough: the endpoints must stay healthy,
    probed every ``interval``, for ``hold`` seconds after the first healthy attempt. The
    first unhealthy attempt after that ends the wait at once, unhealthy.

    ``abort``, when given, is asked after every unhealthy attempt: a string it returns (the
    process behind the endpoints died, say) ends the wait at once, unhealthy, that string
    leading the reason; None lets the wait go on.

    :returns: dict with ``healthy`` (bool), ``checks`` (endpoint results of the last
        attempt), ``attempts``, ``elapsed`` (seconds), ``held`` (seconds the endpoints were
        healthy without a break, up to the last attempt) and ``reason`` (None when healthy,
        else the reasons of the unhealthy endpoints joined by ``"; "``).
    :raises ValueError: on an empty endpoint list, negative deadline/timeout/hold or a
        non-positive interval.
    """
    validate_wait(endpoints, deadline=deadline, interval=interval, timeout=timeout, hold=hold,
                  expected_status=expected_status)

    start = clock()
    attempts = 0
    healthy_since = None
    held = 0.0
    aborted = None
    while True:
        attempts += 1
        results = [
            probe_endpoint(endpoint, fetch, timeout=timeout, clock=clock, require_content_type=require_content_type,
                           expected_status=expected_status,
                           expected_version=None if endpoint.get("any_version") else expected_version,
                           max_latency_ms=max_latency_ms)
            for endpoint in endpoints
        ]
        healthy = all(result["healthy"] for result in results)
        now = clock()
        if healthy:
            if healthy_since is None:
                healthy_since = now
            held = now - healthy_since
            if held >= hold:
                break
            pause = hold - held
        else:
            # Unhealthy after having been healthy: the hold is broken, no second chance.
            remaining = deadline - (now - start)
            if healthy_since is not None or remaining <= 0:
                break
            aborted = abort() if abort else None
            if aborted:
                break
            pause = remaining
        sleep(min(interval, pause))
    return {
        "healthy": healthy,
        "checks": results,
        "attempts": attempts,
        "elapsed": round(clock() - start, 3),
        "held": round(held, 3),
        "reason": None if healthy else "; ".join(
            ([aborted] if aborted else []) + [result["reason"] for result in results if not result["healthy"]]),
    }


def container_watch(name, inspect):
    """Return an ``abort`` callable for :func:`wait_for_health` that watches the Docker
    container serving the endpoints, so a release that crashed is not waited for until the
    deadline.

    ``inspect()`` returns the container's ``(status, exit_code, restart_count)``, or None when
    there is no such container. It is looked at once now; the wait then ends when the
    container is gone, not running, or restarted since (under a restart policy a crash loop
    is "running" again between crashes).
    """
    first = inspect()
    baseline = first[2] if first else 0

    def abort():
        state = inspect()
        if state is None:
            return f"container {name} is gone"
        status, exit_code, restarts = state
        if status != "running":
            return f"container {name} is {status} (exit code {exit_code})"
        if restarts > baseline:
            return (f"container {name} restarted {restarts - baseline} time(s) while starting"
                    f" (last exit code {exit_code})")
        return None

    return abort


def open_url_fetcher(headers=None, validate_certs=True, use_proxy=True, http_agent="erp.ops.erp_health"):
    """Return a ``fetch(url, timeout) -> HttpResponse`` function built on Ansible's urls.

    This is ``open_url`` (a fresh ``Request`` per call, so no cookies leak between
    endpoints) with one TLS context built up front: open_url builds a new one per
    request, loading the CA store each time (tens of milliseconds), which would be
    counted in ``latency_ms`` and trip ``max_latency_ms`` on a fast local endpoint.

    HTTP error statuses (4xx/5xx) are answers, not exceptions: their body is read, since
    a failing health endpoint explains itself there. Redirects are not followed, so a
    3xx answer is judged on its own body as the draft specifies. Ansible's
    ``ConnectionError`` (proxy, TLS validation) is raised as ``URLError`` with it as the
    reason, so it is one of ``FETCH_ERRORS``.
    """
    # Imported here, not at the top: everything else in this file runs without Ansible.
    from ansible.module_utils.urls import ConnectionError as UrlConnectionError
    from ansible.module_utils.urls import Request, make_context

    request_headers = dict(headers or {})
    request_headers.setdefault("Accept", f"{HEALTH_CONTENT_TYPE}, {JSON_CONTENT_TYPE};q=0.9")
    context = make_context(validate_certs=validate_certs)

    def fetch(url, timeout):
        try:
            response = Request().open("GET", url, headers=request_headers, timeout=timeout,
                                      validate_certs=validate_certs, use_proxy=use_proxy, http_agent=http_agent,
                                      follow_redirects="none", context=context)
        except HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, HTTPException):
                # The error body is a bonus; the status code alone still answers.
                body = b""
            content_type = exc.headers.get("Content-Type") if exc.headers is not None else None
            return HttpResponse(exc.code, content_type, body)
        except UrlConnectionError as exc:
            raise URLError(exc) from exc
        with response:
            return HttpResponse(response.status, response.headers.get("Content-Type"), response.read())

    return fetch
