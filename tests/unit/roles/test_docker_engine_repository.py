"""Docker's apt repository is unreachable from these machines, so the role's repository
tasks run here in check mode against this controller: what they would write is read from
the diff, and nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
ARMOURED_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFit2ioBEADhWpZ8\n-----END PGP PUBLIC KEY BLOCK-----\n"

PLAYBOOK = """
- name: Render Docker's repository configuration
  hosts: localhost
  connection: local
  gather_facts: true
  tasks:
    - name: Repository tasks of the role
      ansible.builtin.include_role:
        name: docker_engine
        tasks_from: repository.yml
"""


def render(tmp_path: Path, **extra_vars: str) -> dict[str, str]:
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAYBOOK)
    # The controller's own interpreter: the module runs here, beside ansible itself.
    (tmp_path / "vars.json").write_text(json.dumps({"ansible_python_interpreter": sys.executable, **extra_vars}))
    # Plain Ansible: this Python has no python3-apt, so the apt module restarts itself in the
    # system's Python, which Mitogen cannot run (docs/controller.md).
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_ROLES_PATH=str(REPO / "roles"), ANSIBLE_STRATEGY="linear")
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "--check", "--diff", str(playbook),
         "-e", f"@{tmp_path / 'vars.json'}"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    written = {}
    for play in json.loads(proc.stdout)["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get("localhost", {})
            dest = result.get("invocation", {}).get("module_args", {}).get("dest")
            diffs = result.get("diff") if isinstance(result.get("diff"), list) else []
            if dest and diffs and isinstance(diffs[0].get("after"), str):
                written[dest] = diffs[0]["after"]
    return written


def parse_deb822(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, str]:
    return render(tmp_path_factory.mktemp("docker-repo"), docker_engine_source="docker",
                  docker_engine_repository_key=ARMOURED_KEY)


def test_source_is_a_signed_deb822_entry_for_this_release_and_architecture(rendered):
    source = parse_deb822(rendered["/etc/apt/sources.list.d/docker.sources"])
    arch = {"x86_64": "amd64", "aarch64": "arm64"}[os.uname().machine]
    codename = next(line.split("=")[1] for line in Path("/etc/os-release").read_text().splitlines()
                    if line.startswith("VERSION_CODENAME="))
    assert source == {
        "Types": "deb",
        "URIs": "https://download.docker.com/linux/debian",
        "Suites": codename,
        "Components": "stable",
        "Architectures": arch,
        "Signed-By": "/etc/apt/keyrings/docker.asc",
    }


def test_inline_key_is_written_to_the_keyring_the_source_trusts(rendered):
    assert rendered["/etc/apt/keyrings/docker.asc"] == ARMOURED_KEY


def test_mirror_url_and_channel_come_from_the_inventory(tmp_path):
    written = render(tmp_path, docker_engine_source="docker", docker_engine_repository_key=ARMOURED_KEY,
                     docker_engine_repository_url="https://mirror.example.com/docker-ce/debian",
                     docker_engine_repository_channel="test")
    source = parse_deb822(written["/etc/apt/sources.list.d/docker.sources"])
    assert source["URIs"] == "https://mirror.example.com/docker-ce/debian"
    assert source["Components"] == "test"
