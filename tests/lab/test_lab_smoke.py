"""The lab is a set of real hosts: reachable over SSH, each with its own engine and the registry."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest
from conftest import REPO


def test_topology_has_one_lb_one_db_and_the_app_hosts(lab_hosts):
    groups = sorted(host.group for host in lab_hosts.values())
    app_hosts = int(os.environ.get("LAB_APP_HOSTS", "2"))
    assert groups == sorted(["erp_lb", "erp_db"] + ["erp_app"] * app_hosts)


def test_every_host_answers_an_ansible_ping_over_ssh(lab_hosts):
    proc = subprocess.run(
        ["ansible", "lab", "-m", "ansible.builtin.ping", "-e", "ansible_python_interpreter=/usr/bin/python3"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(proc.stdout)["stats"]
    assert sorted(results) == sorted(lab_hosts)
    assert all(stats["unreachable"] == 0 and stats["failures"] == 0 for stats in results.values())


def test_each_host_is_its_own_machine_with_systemd_and_its_own_name(lab_hosts):
    for name, host in lab_hosts.items():
        assert host.ssh("hostname").stdout.strip() == name
        assert host.ssh("systemctl is-system-running", check=False).stdout.strip() in ("running", "degraded")
        assert host.ssh("ps -o comm= -p 1").stdout.strip() == "systemd"


def test_root_of_each_host_runs_its_own_docker_engine(lab_hosts):
    for host in lab_hosts.values():
        info = json.loads(host.ssh("sudo docker info --format '{{json .}}'").stdout)
        assert info["Name"] == host.name
        assert info["Driver"] == "overlay2"
        assert info["LiveRestoreEnabled"] is True
        assert host.ssh("systemctl is-enabled docker").stdout.strip() == "enabled"


def test_a_container_starts_and_stops_inside_a_host_engine_from_the_lab_registry(lab_hosts):
    app1, app2 = lab_hosts["app1"], lab_hosts["app2"]
    app1.ssh("sudo docker rm -f lab-smoke-db", check=False)
    app1.ssh("sudo docker run -d --name lab-smoke-db -e POSTGRES_PASSWORD=smoke registry:5000/postgres:15")
    try:
        ready = app1.ssh(
            "for i in $(seq 60); do sudo docker exec lab-smoke-db pg_isready -q && exit 0; sleep 1; done; exit 1",
            check=False,
        )
        assert ready.returncode == 0, "postgres inside app1's engine never accepted connections"
        answer = app1.ssh("sudo docker exec lab-smoke-db psql -U postgres -tAc 'select 6*7'").stdout.strip()
        assert answer == "42"
        # Another host's engine is another engine: it does not see app1's container.
        assert "lab-smoke-db" not in app2.ssh("sudo docker ps -a --format '{{.Names}}'").stdout
        app1.ssh("sudo docker stop -t 20 lab-smoke-db")
        state = app1.ssh("sudo docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' lab-smoke-db").stdout
        assert state.split() == ["exited", "0"]
    finally:
        app1.ssh("sudo docker rm -f lab-smoke-db", check=False)


@pytest.mark.parametrize("tag", ["1.0.0", "1.1.0"] + [
    f"1.1.0-fault-{fault}"
    for fault in ("crash", "never-ready", "database-fails", "slow-ready", "fails-after-ready", "errors-500",
                  "migration-hangs")
])
def test_releases_and_faulty_builds_are_in_the_lab_registry(tag):
    port = os.environ.get("LAB_REGISTRY_PORT", "5000")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/erp-app/tags/list", timeout=10) as response:
        tags = json.load(response)["tags"]
    assert tag in tags


def test_the_app_image_in_the_registry_reports_its_release(lab_hosts):
    app2 = lab_hosts["app2"]
    version = app2.ssh("sudo docker run --rm registry:5000/erp-app:1.1.0 version").stdout.strip()
    assert "1.1.0" in version


@pytest.mark.parametrize(("repository", "tag"), [("debian", "bookworm-slim"), ("postgres", "15")])
def test_base_and_database_images_are_in_the_lab_registry(repository, tag):
    port = os.environ.get("LAB_REGISTRY_PORT", "5000")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/{repository}/tags/list", timeout=10) as response:
        assert tag in json.load(response)["tags"]


# Under Mitogen a module runs inside the interpreter Mitogen keeps on the host, which has
# imported mitogen; under plain Ansible each module is a fresh Python that has not.
RUNTIME_MODULE = """\
import sys
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec={})
module.exit_json(changed=False, mitogen="mitogen" in sys.modules)
"""

RUNTIME_PLAYBOOK = """\
- name: Ask every lab host which connection layer runs its modules
  hosts: lab
  gather_facts: false
  become: true
  tasks:
    - name: Ask the module
      which_runtime:
      register: runtime

    - name: Report it
      ansible.builtin.debug:
        msg: "runtime={{ 'mitogen' if runtime.mitogen else 'plain' }}"
"""


@pytest.mark.parametrize(("strategy", "want"), [(None, "mitogen"), ("linear", "plain")])
def test_playbooks_run_over_mitogen_by_default_and_plain_on_request(lab_hosts, tmp_path, strategy, want):
    (tmp_path / "which_runtime.py").write_text(RUNTIME_MODULE)
    (tmp_path / "runtime.yml").write_text(RUNTIME_PLAYBOOK)
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LIBRARY=str(tmp_path))
    env.pop("ANSIBLE_STRATEGY", None)
    if strategy:
        env["ANSIBLE_STRATEGY"] = strategy
    proc = subprocess.run(["ansible-playbook", str(tmp_path / "runtime.yml"), "-l", "lab"], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count(f"runtime={want}") == len(lab_hosts), proc.stdout[-2000:]
