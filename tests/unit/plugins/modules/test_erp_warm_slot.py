# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""erp_warm_slot's main() against a scripted `docker` and scripted health answers: a warm
slot is started and gated, anything else is left alone, a slot that does not become
healthy is stopped again."""

from __future__ import annotations

import pytest
from ansible.module_utils import basic
from ansible_collections.erp.ops.plugins.modules import erp_warm_slot
from module_fakes import answer, catch_exits, install_fake_time, run_module

BASE = "http://10.0.0.5:8001"
IMAGE = "registry:5000/erp-app@sha256:" + "a" * 64
READY = {BASE + "/health/ready": [answer(200, status="pass", version="1.0.0")]}
ARGS = {"container": "erp-app-blue", "image": IMAGE, "url": BASE, "checks": ["/health/ready"],
        "expected_version": "1.0.0", "deadline": 10, "interval": 0.2}


class FakeDocker:
    """run_command for `docker ...`: answers by subcommand from a script, records argv."""

    def __init__(self, inspect_answers, start=(0, "", ""), stop=(0, "", "")):
        self.inspect_answers = list(inspect_answers)
        self.answers = {"start": start, "stop": stop}
        self.calls = []

    def __call__(self, module, argv, **_kwargs):
        self.calls.append(argv[1:])
        if argv[1] == "inspect":
            return self.inspect_answers.pop(0) if len(self.inspect_answers) > 1 else self.inspect_answers[0]
        return self.answers[argv[1]]

    def subcommands(self):
        return [call[0] for call in self.calls]


@pytest.fixture(autouse=True)
def exits(monkeypatch):
    catch_exits(monkeypatch)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, **_kw: f"/usr/bin/{name}")


@pytest.fixture
def fake_time(monkeypatch):
    return install_fake_time(monkeypatch)


def run(monkeypatch, docker, args=None, script=None, check_mode=False):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, argv, **kwargs: docker(self, argv, **kwargs))
    module_args = dict(args or ARGS)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    return run_module(monkeypatch, erp_warm_slot.main, module_args, READY if script is None else script)


def test_a_stopped_warm_slot_is_started_and_gated(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} exited\n", ""), (0, "running 0 0\n", "")])
    outcome, requests = run(monkeypatch, docker)
    assert outcome.failed is False
    assert outcome.result["changed"] is True
    assert outcome.result["warm"] is True and outcome.result["started"] is True
    assert outcome.result["healthy"] is True
    assert docker.subcommands()[:2] == ["inspect", "start"]
    assert docker.calls[1] == ["start", "erp-app-blue"]
    assert "stop" not in docker.subcommands()
    assert [url for url, _kwargs in requests.calls] == [BASE + "/health/ready"]
    # only the image and the state are read: the whole configuration holds the DB password
    assert docker.calls[0][-2:] == ["{{.Config.Image}} {{.State.Status}}", "erp-app-blue"]


def test_a_warm_slot_that_runs_already_is_only_gated(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} running\n", ""), (0, "running 0 0\n", "")])
    outcome, _requests = run(monkeypatch, docker)
    assert outcome.result["changed"] is False
    assert outcome.result["started"] is False and outcome.result["healthy"] is True
    assert "start" not in docker.subcommands()


@pytest.mark.parametrize("inspect, reason", [
    ((1, "", "Error: No such container: erp-app-blue\n"), "no container erp-app-blue"),
    ((0, "registry:5000/erp-app:1.1.0 exited\n", ""),
     f"erp-app-blue was created from registry:5000/erp-app:1.1.0, not {IMAGE}"),
])
def test_a_slot_that_is_not_warm_is_left_alone(monkeypatch, fake_time, inspect, reason):
    docker = FakeDocker([inspect])
    outcome, requests = run(monkeypatch, docker)
    assert outcome.failed is False
    assert outcome.result["changed"] is False
    assert outcome.result["warm"] is False and outcome.result["started"] is False
    assert outcome.result["healthy"] is None
    assert outcome.result["reason"] == reason
    assert docker.subcommands() == ["inspect"]
    assert requests.calls == []


def test_a_started_slot_that_does_not_become_healthy_is_stopped_again(monkeypatch, fake_time):
    # started, then the container exits while the gate waits
    docker = FakeDocker([(0, f"{IMAGE} exited\n", ""), (0, "running 0 0\n", ""), (0, "exited 3 0\n", "")])
    failing = {BASE + "/health/ready": [answer(503, status="fail", version="1.0.0")]}
    outcome, _requests = run(monkeypatch, docker, script=failing)
    assert outcome.failed is True
    assert outcome.result["msg"].startswith("erp-app-blue did not become healthy: container erp-app-blue is exited")
    assert outcome.result["warm"] is True
    assert docker.calls[-1] == ["stop", "erp-app-blue"]


def test_a_slot_that_ran_already_is_not_stopped_when_unhealthy(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} running\n", ""), (0, "running 0 0\n", "")])
    failing = {BASE + "/health/ready": [answer(200, status="pass", version="1.1.0")]}
    outcome, _requests = run(monkeypatch, docker, args={**ARGS, "deadline": 1}, script=failing)
    assert outcome.failed is True
    assert "version 1.1.0 instead of 1.0.0" in outcome.result["msg"]
    assert "stop" not in docker.subcommands()


def test_check_mode_neither_starts_nor_probes(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} exited\n", "")])
    outcome, requests = run(monkeypatch, docker, check_mode=True)
    assert outcome.failed is False
    assert outcome.result["changed"] is True
    assert outcome.result["warm"] is True and outcome.result["healthy"] is None
    assert docker.subcommands() == ["inspect"]
    assert requests.calls == []


def test_docker_refusing_fails_with_its_answer(monkeypatch, fake_time):
    docker = FakeDocker([(1, "", "permission denied while trying to connect\n")])
    outcome, _requests = run(monkeypatch, docker)
    assert outcome.failed is True
    assert outcome.result["msg"] == "docker inspect erp-app-blue failed: permission denied while trying to connect"


def test_start_failing_fails_with_the_engine_answer(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} exited\n", "")], start=(1, "", "Error: port is already allocated\n"))
    outcome, _requests = run(monkeypatch, docker)
    assert outcome.failed is True
    assert outcome.result["msg"] == "docker start erp-app-blue failed: Error: port is already allocated"


def test_bad_probe_options_fail_before_the_container_is_touched(monkeypatch, fake_time):
    docker = FakeDocker([(0, f"{IMAGE} exited\n", "")])
    outcome, requests = run(monkeypatch, docker, args={**ARGS, "interval": 0})
    assert outcome.failed is True
    assert outcome.result["msg"] == "interval must be > 0, got 0.0"
    assert docker.calls == [] and requests.calls == []
