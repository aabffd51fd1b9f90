"""deploy.yml run by ansible-navigator inside the execution environment AWX runs.

The image is the one `make ee` (scripts/build-ee.sh) builds from execution-environment.yml and
pushes to the lab registry; the module builds and pushes it first when the registry lacks the
collection version's tag. Navigator takes the container engine, host networking (the lab's
SSH ports are on 127.0.0.1) and the user from the committed ansible-navigator.yml and mounts
the checkout, so ansible.cfg, the lab inventory, its vault password file and SSH key are used
as on the controller. A release other than the one running goes to every app host: the
hosts' release state records it, the LB serves only it, and no vaulted value shows in the
output.
"""

from __future__ import annotations

import http.client
import os
import subprocess

import pytest
import yaml
from conftest import (
    QUICK,
    REPO,
    app_hosts,
    current_versions,
    ensure_release,
    lab_vault_values,
    recap,
    release_state,
    served_versions,
)

VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))["version"]
REGISTRY = f"127.0.0.1:{os.environ.get('LAB_REGISTRY_PORT', '5000')}"
IMAGE = f"{REGISTRY}/erp-ee:{VERSION}"
NAVIGATOR = str(REPO / ".venv" / "bin" / "ansible-navigator")
# The lab's reference releases (lab/labctl.py ERP_RELEASES).
RELEASES = ("1.0.0", "1.1.0")
# ARA's settings of the lab test run (conftest.lab_history): the run inside the image records
# into the same history as the other lab runs do.
PASSED_ENV = ("ARA_BASE_DIR", "ARA_API_CLIENT", "ERP_RECORD_HISTORY")


def registry_has_image() -> bool:
    """The lab registry holds the collection version's tag (a manifest answers)."""
    host, port = REGISTRY.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("HEAD", f"/v2/erp-ee/manifests/{VERSION}",
                           headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        status = connection.getresponse().status
    finally:
        connection.close()
    assert status in (200, 404), f"the lab registry answered HTTP {status} for {IMAGE}"
    return status == 200


@pytest.fixture(scope="module")
def ee_image() -> str:
    if not registry_has_image():
        proc = subprocess.run(
            [str(REPO / "scripts" / "build-ee.sh")], cwd=REPO, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=1800,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert registry_has_image(), f"scripts/build-ee.sh did not push {IMAGE}"
    return IMAGE


def navigator_run(image: str, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [NAVIGATOR, "run", *args, "--eei", image, "--pull-policy", "missing", "--ce", "docker",
               "--mode", "stdout", "--display-color", "false"]
    for name in PASSED_ENV:
        if name in os.environ:
            command += ["--penv", name]
    proc = subprocess.run(command, cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
    proc.output = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    return proc


def test_deploy_from_inside_the_image_moves_every_app_host_to_another_release(lab_hosts, ee_image):
    ensure_release(lab_hosts, "1.0.0", or_any=True)
    before = current_versions(lab_hosts)
    running = set(before.values())
    target = next(release for release in RELEASES if release not in running)

    proc = navigator_run(ee_image, "deploy.yml", "-l", "lab", "-e", f"erp_version={target}", *QUICK)
    assert proc.returncode == 0, proc.output[-4000:]

    stats = recap(proc)
    for host in app_hosts(lab_hosts):
        assert host.name in stats, f"{host.name} missing from the recap:\n{proc.output[-2000:]}"
        assert stats[host.name]["failed"] == 0 and stats[host.name]["unreachable"] == 0, stats
    assert current_versions(lab_hosts) == {name: target for name in before}
    for host in app_hosts(lab_hosts):
        assert release_state(host)["previous"]["version"] == before[host.name]
    assert served_versions() == {target}
    for name, value in lab_vault_values().items():
        assert value not in proc.output, f"{name} shows in the navigator output"
