# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""What the erp.ops module tests share: a module's main() driven with patched module args,
a fake urls.Request answering from a script, a fake clock, exit/fail caught as results."""

from __future__ import annotations

import io
import json
from email.message import Message
from urllib.error import HTTPError

import pytest
from ansible.module_utils import basic, urls
from ansible.module_utils.testing import patch_module_args
from ansible_collections.erp.ops.plugins.module_utils import _health_module

HEALTH = "application/health+json"


class ModuleExit(Exception):
    def __init__(self, failed, result):
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result


def _headers(content_type):
    headers = Message()
    if content_type:
        headers["Content-Type"] = content_type
    return headers


class FakeResponse:
    def __init__(self, status, content_type, body):
        self.status = status
        self.headers = _headers(content_type)
        self._body = body

    def read(self):
        return self._body

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def answer(http_status, /, content_type=HEALTH, **fields):
    """What open_url does for one HTTP answer: return it, or raise HTTPError for >= 300."""
    raw = json.dumps(fields).encode()
    if http_status < 300:
        return FakeResponse(http_status, content_type, raw)
    return HTTPError("http://ignored", http_status, "error", _headers(content_type), io.BytesIO(raw))


DB_DOWN = answer(503, status="fail", version="1.4.2", checks={
    "postgresql:connection": [{"status": "fail", "output": "connection refused"}],
})


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRequests:
    """Stands in for ansible.module_utils.urls.Request: per URL a scripted list of answers
    (the last repeats); exceptions are raised as Request.open would."""

    def __init__(self, script):
        self.script = script
        self.calls = []

    def __call__(self):
        return self

    def open(self, method, url, **kwargs):
        assert method == "GET"
        self.calls.append((url, kwargs))
        answers = self.script[url]
        count = sum(1 for called, _kwargs in self.calls if called == url)
        item = answers[min(count, len(answers)) - 1]
        if isinstance(item, HTTPError):
            # a fresh copy each time: the body stream of an HTTPError can be read once
            item = HTTPError(url, item.code, item.msg, item.headers, io.BytesIO(item.fp.getvalue()))
            item.fp.seek(0)
        if isinstance(item, BaseException):
            raise item
        return item


def install_fake_time(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(_health_module, "time", fake)
    return fake


def catch_exits(monkeypatch):
    """exit_json/fail_json raise ModuleExit with the result instead of leaving the process."""
    def exit_json(self, **result):
        raise ModuleExit(False, result)

    def fail_json(self, msg, **result):
        result["msg"] = msg
        raise ModuleExit(True, result)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run_module(monkeypatch, main, args, script=None):
    """Run ``main()`` with ``args``; (ModuleExit, FakeRequests) of the run."""
    fake_requests = FakeRequests(script or {})
    monkeypatch.setattr(urls, "Request", fake_requests)
    with patch_module_args(args), pytest.raises(ModuleExit) as caught:
        main()
    return caught.value, fake_requests
