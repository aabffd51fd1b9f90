"""The run history as its users see it: ARA's web UI (``ara-manage runserver``) over a
recorded sqlite database, pages rendered by headless Chromium, and every recorded value read
back from that database.

Shared by tests/unit/plugins/callback/test_history.py (a run on localhost) and
tests/lab/test_history.py (deploy.yml runs against the lab).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

BIN = Path(sys.executable).parent


def database(base_dir: Path) -> Path:
    return Path(base_dir) / "ansible.sqlite"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "headless Chromium is missing: `make setup` installs the Debian package chromium"
    return found


class HistoryServer:
    """``ara-manage runserver`` on a free port of 127.0.0.1 over the database in ``base_dir``,
    as docs/history.md tells users to open it; its output goes to ``log``."""

    def __init__(self, base_dir: Path, log: Path):
        self.base_dir = Path(base_dir)
        self.log = Path(log)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> HistoryServer:
        assert database(self.base_dir).exists(), f"no run history in {self.base_dir}"
        env = dict(os.environ, ARA_BASE_DIR=str(self.base_dir))
        with self.log.open("w") as out:
            # --noreload: one process, no file watcher; nothing here changes while it serves.
            self.proc = subprocess.Popen([str(BIN / "ara-manage"), "runserver", "--noreload", f"127.0.0.1:{self.port}"],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"ara-manage runserver exited: {self.log.read_text()[-3000:]}"
            try:
                self.api("/api/v1/")
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.3)
        self.__exit__()
        raise AssertionError(f"ara-manage runserver did not answer within 60 s: {self.log.read_text()[-3000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def api(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:  # noqa: S310 (http://127.0.0.1 above)
            return json.load(response)

    def playbooks(self, **query: str) -> list[dict]:
        """Recorded playbook runs, newest first (``query``: ARA's filters, e.g. status)."""
        found, path = [], "/api/v1/playbooks?" + "&".join(f"{k}={v}" for k, v in {"limit": "100", **query}.items())
        while path:
            page = self.api(path)
            found.extend(page["results"])
            path = page["next"].removeprefix(self.url) if page.get("next") else None
        return found

    def browse(self, path: str, screenshot: Path) -> str:
        """The page at ``path`` rendered by headless Chromium: a PNG at ``screenshot``, and the
        text a reader sees (the rendered DOM without markup, whitespace collapsed)."""
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
            proc = subprocess.run(
                [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                 "--window-size=1400,2000", f"--user-data-dir={profile}", f"--screenshot={screenshot}", "--dump-dom",
                 self.url + path],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
            )
        assert proc.returncode == 0 and proc.stdout.strip(), f"chromium exited {proc.returncode}: {proc.stderr[-3000:]}"
        assert screenshot.exists(), f"chromium wrote no screenshot: {proc.stderr[-3000:]}"
        return visible_text(proc.stdout)


def visible_text(page: str) -> str:
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def recorded_texts(base_dir: Path):
    """Every value the history holds, as (table, column, text): ARA stores results, files,
    arguments and facts zlib-compressed, so each blob is decompressed first."""
    connection = sqlite3.connect(f"file:{database(base_dir)}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')  # noqa: S608 (names from sqlite_master)
            columns = [column[0] for column in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, bytes):
                        try:
                            value = zlib.decompress(value).decode("utf-8", "replace")
                        except zlib.error:
                            value = value.decode("utf-8", "replace")
                    if isinstance(value, str) and value:
                        yield table, column, value
    finally:
        connection.close()


def leaked(base_dir: Path, secrets: dict[str, str]) -> list[str]:
    """``table.column: name`` for each secret the history holds, as written or JSON-escaped
    (how a value inside a recorded result is stored)."""
    forms = {name: {value, json.dumps(value)[1:-1]} for name, value in secrets.items() if value}
    found = []
    for table, column, text in recorded_texts(base_dir):
        for name, variants in forms.items():
            if any(variant in text for variant in variants):
                found.append(f"{table}.{column}: {name}")
    return sorted(set(found))
