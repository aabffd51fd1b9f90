"""The command line paths that need neither FastAPI nor psycopg2."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from erp_app.__main__ import main


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health/live" else 503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_version_prints_json(monkeypatch, capsys):
    monkeypatch.setenv("ERP_VERSION", "1.1.0-fault-crash")
    monkeypatch.setenv("ERP_FAULT", "crash")
    assert main(["version"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "version": "1.1.0-fault-crash",
        "fault": "crash",
        "requires_schema": "0002",
    }


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_missing_config_exits_2_with_one_line(monkeypatch, capsys, command):
    monkeypatch.setenv("ERP_VERSION", "1.0.0")
    monkeypatch.delenv("ERP_DATABASE_URL", raising=False)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"erp-app {command}: ERP_DATABASE_URL is required")


def test_healthcheck_exit_codes(monkeypatch, capsys, local_server):
    monkeypatch.setenv("ERP_PORT", str(local_server))
    assert main(["healthcheck"]) == 0
    assert main(["healthcheck", "/health/ready"]) == 1
    assert "HTTP 503" in capsys.readouterr().out


def test_healthcheck_fails_when_nothing_listens(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    server.server_close()
    monkeypatch.setenv("ERP_PORT", str(port))
    assert main(["healthcheck"]) == 1
