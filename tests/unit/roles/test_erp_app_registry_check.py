"""erp_app's registry_check against registries on this machine, run by ansible-playbook on
localhost: one with token auth (a bearer challenge, a token service), as most private
registries have; one with basic auth. The login is the engine's own (the client config
docker_login writes), and every answer is one line. A basic-auth registry and one that is
down are also tried on the lab's hosts (tests/lab/test_failure_paths.py).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LOGIN = "ops:right-password"
TOKEN = "pull-token-for-erp-app"  # noqa: S105 (the fake registry's)
TAGS = {"1.0.0"}

PLAYBOOK = """
- name: Ask the registry
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check the release
      ansible.builtin.include_role:
        name: erp_app
        tasks_from: registry_check
"""


class Registry(BaseHTTPRequestHandler):
    """A registry API: token auth (scheme "bearer") or basic auth (scheme "basic")."""

    scheme = "bearer"

    def log_message(self, *args):
        pass

    def _answer(self, status: int, headers: dict | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _basic_ok(self) -> bool:
        return self.headers.get("Authorization", "") == "Basic " + base64.b64encode(LOGIN.encode()).decode()

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path.startswith("/token?"):
            wanted = "service=fake-registry&scope=repository%3Aerp-app%3Apull"
            if self.path != f"/token?{wanted}" or not self._basic_ok():
                return self._answer(401)
            return self._answer(200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN}).encode())
        if not self.path.startswith("/v2/erp-app/manifests/"):
            return self._answer(404)
        if self.scheme == "bearer" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            challenge = f'Bearer realm="http://127.0.0.1:{port}/token",service="fake-registry"'
            return self._answer(401, {"WWW-Authenticate": challenge})
        if self.scheme == "basic" and not self._basic_ok():
            return self._answer(401, {"WWW-Authenticate": 'Basic realm="fake"'})
        return self._answer(200 if self.path.rsplit("/", 1)[1] in TAGS else 404)

    do_HEAD = do_GET


@pytest.fixture(params=["bearer", "basic"])
def registry(request):
    handler = type("Handler", (Registry,), {"scheme": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def check(tmp_path: Path, registry: str, version: str, login: str | None) -> subprocess.CompletedProcess:
    logins = tmp_path / "config.json"
    if login is not None:
        logins.write_text(json.dumps({"auths": {registry: {"auth": base64.b64encode(login.encode()).decode()}}}))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    extra = {"erp_app_version": version, "erp_registry": registry, "erp_registry_url": f"http://{registry}",
             "_erp_app_registry_logins_file": str(logins)}
    (tmp_path / "extra.json").write_text(json.dumps(extra))
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(tmp_path / "play.yml"), "-e", f"@{tmp_path / 'extra.json'}"],
        cwd=REPO, capture_output=True, text=True, timeout=180,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                 ANSIBLE_STRATEGY="linear", ERP_RECORD_HISTORY="0"),
    )


def test_a_release_the_registry_has_passes_with_the_engine_s_login(tmp_path, registry):
    proc = check(tmp_path, registry, "1.0.0", LOGIN)
    assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.parametrize(("version", "login", "says"), [
    ("9.9.9", LOGIN, "erp-app:9.9.9 is not in the registry"),
    ("1.0.0", "ops:wrong-password",
     "erp-app:1.0.0 cannot be checked: the registry refused the engine's login (HTTP 401)"),
    ("1.0.0", None, "erp-app:1.0.0 cannot be checked: the registry requires a login the engine does not have"),
])
def test_each_refusal_is_one_line_and_holds_no_login(tmp_path, registry, version, login, says):
    proc = check(tmp_path, registry, version, login)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert says in output, output[-3000:]
    assert "asked from localhost); nothing changed" in output
    assert "Traceback" not in output
    for secret in ("right-password", "wrong-password", TOKEN,
                   base64.b64encode(LOGIN.encode()).decode(), base64.b64encode(b"ops:wrong-password").decode()):
        assert secret not in output


def test_a_registry_that_does_not_answer_is_named(tmp_path):
    proc = check(tmp_path, "127.0.0.1:9", "1.0.0", None)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "erp-app:1.0.0 is unknown: the registry did not answer (" in output and "Connection refused" in output
