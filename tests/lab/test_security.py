"""The security perimeter as an outside user meets it, through the public load balancer.

Health, metrics and statistics endpoints are for the internal network only: every spelling
of their paths a client can send (percent-encoding, case, dot segments, runs of slashes,
trailing characters) is refused by the public frontend, while the same spellings the
application would route do answer on the internal frontend, from the load balancer's host.
"""

from __future__ import annotations

import http.client
import os
import subprocess

import pytest
from conftest import LB_PORT, REPO, ensure_release, internal_addresses

INTERNAL_PORT = "8404"
INTERNAL = ("/health", "/health/live", "/health/ready", "/health/database", "/health/metrics")
# Each spelling of an internal path, as sent on the wire (no client-side normalisation).
SPELLINGS = [line for line in (REPO / "tests" / "internal_path_spellings.txt").read_text().splitlines()
             if line and not line.startswith("#")]
# What only an internal endpoint answers with.
INTERNAL_MARKERS = ("erp_http_requests_total", "erp_build_info", '"database"', "Statistics Report", "haproxy_")


def get(port: str, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def perimeter(lab_hosts):
    """The lab serving a release, its load balancer converged from the erp_lb role."""
    ensure_release(lab_hosts, or_any=True)
    proc = subprocess.run(
        ["ansible", "erp_lb", "-l", "lab", "-b", "-m", "ansible.builtin.include_role", "-a", "name=erp_lb"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return lab_hosts


@pytest.mark.parametrize("path", SPELLINGS)
def test_no_spelling_of_an_internal_path_is_answered_by_the_public_frontend(perimeter, path):
    status, body = get(LB_PORT, path)
    assert status in (400, 404), (path, status, body[:200])
    assert not any(marker in body for marker in INTERNAL_MARKERS), (path, body[:300])


def test_the_spellings_the_application_routes_do_reach_it_internally(perimeter):
    """The corpus means something: the application itself answers encoded spellings."""
    internal = internal_addresses()["lb1"]
    for path in ("/health/metrics", "/%68ealth/metrics", "/%68%65%61%6c%74%68/ready"):
        status, body = get(INTERNAL_PORT, path, internal)
        assert status == 200, (path, status, body[:200])


def test_the_public_frontend_still_serves_the_erp(perimeter):
    # A query string is not the path: dots and encodings there are the application's business.
    for path in ("/version", "/api/customers?limit=1", "/api/customers?q=%2e%2e&limit=1"):
        status, body = get(LB_PORT, path)
        assert status == 200, (path, status, body[:200])
    for path in INTERNAL:
        assert get(LB_PORT, path)[0] == 404
