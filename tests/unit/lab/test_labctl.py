"""labctl's decisions that need no Docker: topology, input validation, port checks."""

from __future__ import annotations

import socket

import labctl
import pytest


def test_default_topology_is_lb_db_and_two_app_hosts(monkeypatch):
    for name in ("LAB_APP_HOSTS", "LAB_SSH_BASE_PORT", "LAB_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    hosts = labctl.topology()
    assert [(h.name, h.group, h.ssh_port) for h in hosts] == [
        ("lb1", "erp_lb", 2201), ("db1", "erp_db", 2202), ("app1", "erp_app", 2203), ("app2", "erp_app", 2204),
    ]
    assert hosts[0].http_port == 8080
    assert all(h.http_port is None for h in hosts[1:])


def test_app_hosts_scale_and_ports_follow_the_base(monkeypatch):
    monkeypatch.setenv("LAB_APP_HOSTS", "4")
    monkeypatch.setenv("LAB_SSH_BASE_PORT", "3300")
    hosts = labctl.topology()
    assert [h.name for h in hosts] == ["lb1", "db1", "app1", "app2", "app3", "app4"]
    assert [h.ssh_port for h in hosts] == [3300, 3301, 3302, 3303, 3304, 3305]
    assert hosts[4].container == "erplab-app3"
    assert hosts[4].volume == "erplab-app3-docker"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("LAB_APP_HOSTS", "two", "LAB_APP_HOSTS='two' is not a whole number"),
    ("LAB_APP_HOSTS", "0", "LAB_APP_HOSTS=0 must be at least 1"),
    ("LAB_APP_HOSTS", "12", "at most 9 app hosts"),
    ("LAB_SSH_BASE_PORT", "80", "LAB_SSH_BASE_PORT=80 must be at least 1024"),
])
def test_bad_settings_are_refused_with_the_setting_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(labctl.LabError, match=message):
        labctl.topology()


def test_a_port_taken_by_another_program_is_refused(monkeypatch):
    monkeypatch.setattr(labctl, "published_by_lab", lambda port: False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(labctl.LabError, match=f"port 127.0.0.1:{port} \\(SSH of lb1\\) is already taken"):
            labctl.check_port_free(port, "SSH of lb1")


def test_a_port_the_lab_itself_publishes_is_accepted(monkeypatch):
    monkeypatch.setattr(labctl, "published_by_lab", lambda port: True)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        labctl.check_port_free(listener.getsockname()[1], "SSH of lb1")


def test_every_release_and_fault_becomes_its_own_tag():
    tags = {tag: (version, fault) for tag, version, fault in labctl.erp_app_tags()}
    assert tags["1.0.0"] == ("1.0.0", "none")
    assert tags["1.1.0-fault-errors-500"] == ("1.1.0-fault-errors-500", "errors-500")
    assert tags["1.1.0-fault-migration-hangs"] == ("1.1.0-fault-migration-hangs", "migration-hangs")
    assert len(tags) == 2 + 7


@pytest.mark.parametrize(("argv", "code", "text"), [
    ([], 2, "name a command"),
    (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
])
def test_unknown_or_missing_commands_get_one_clear_line(capsys, argv, code, text):
    assert labctl.main(argv) == code
    assert text in capsys.readouterr().err


def test_missing_engine_is_reported_without_a_traceback(monkeypatch, capsys):
    monkeypatch.setattr(labctl.shutil, "which", lambda name: None)
    assert labctl.main(["status"]) == 1
    assert capsys.readouterr().err.strip() == "labctl: error: no docker command: run `make setup` first"


@pytest.mark.parametrize("name", ["Bad", "x", "lab_1", "a" * 21])
def test_a_lab_name_that_cannot_name_docker_objects_is_refused(monkeypatch, capsys, name):
    monkeypatch.setattr(labctl, "LAB_NAME", name)
    assert labctl.main(["status"]) == 2
    assert f"LAB_NAME={name!r} must be" in capsys.readouterr().err
