"""Helpers for the one-host stack: its internal address and HTTP seen from the host."""

import json
import shlex

import pytest

# Run on the host with its own python3 (the host image has no curl): prints the status
# (0 when no connection could be made) on the first line, then the body.
_FETCH = """
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=10) as response:
        status, body = response.status, response.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
except OSError as error:
    status, body = 0, str(error).encode()
print(status)
sys.stdout.write(body.decode(errors="replace"))
"""


@pytest.fixture(scope="module")
def address(host):
    """The host's private address (erp_internal_address: the default route's interface)."""
    return host.interface.default("inet").addresses[0]


@pytest.fixture
def http(host):
    def get(url):
        out = host.check_output(f"python3 -c {shlex.quote(_FETCH)} {shlex.quote(url)}")
        status, _, body = out.partition("\n")
        return int(status), body

    return get


@pytest.fixture
def container(host):
    def inspect(name):
        return json.loads(host.check_output(f"docker inspect {shlex.quote(name)}"))[0]

    return inspect
