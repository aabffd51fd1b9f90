"""The built collection erp.ops holds collection content only.

`ansible-galaxy collection build` packs the repository root minus galaxy.yml's build_ignore.
The tarball must carry the plugins, roles, playbooks and metadata, and everything the roles
read from outside their own directory, and nothing of the environments (inventories, vaults,
the lab's vault password), the tests, the lab, the CLI or the repository's tooling.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COLLECTION_DIRS = ("plugins", "roles", "playbooks", "meta")
# What may sit at the top of the tarball: the collection directories, its docs and the two
# manifests ansible-galaxy writes.
TOP_LEVEL = {*COLLECTION_DIRS, "README.md", "CHANGELOG.md", "MANIFEST.json", "FILES.json"}
NOT_SHIPPED = ("inventories", "molecule", "erpctl", "lab", "tests", "scripts", "bench", "docs", "monitoring")


@pytest.fixture(scope="module")
def entries(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("build")
    meta = yaml.safe_load((REPO / "galaxy.yml").read_text(encoding="utf-8"))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-galaxy"), "collection", "build", str(REPO),
         "--output-path", str(out)],
        capture_output=True, text=True, env=env, cwd=out, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tarball = out / f"{meta['namespace']}-{meta['name']}-{meta['version']}.tar.gz"
    with tarfile.open(tarball) as tar:
        names = {name.removeprefix("./").rstrip("/") for name in tar.getnames()}
        files_json = json.load(tar.extractfile("FILES.json"))
    # FILES.json is what `ansible-galaxy collection install` verifies; it lists the same entries.
    assert {f["name"] for f in files_json["files"] if f["name"] != "."} == names - {"MANIFEST.json", "FILES.json"}
    return names


def repo_files(*tops: str) -> set[str]:
    found = set()
    for top in tops:
        for path in (REPO / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                found.add(path.relative_to(REPO).as_posix())
    return found


def test_only_collection_content_at_the_top(entries):
    top = {PurePosixPath(name).parts[0] for name in entries}
    assert top <= TOP_LEVEL, f"not collection content: {sorted(top - TOP_LEVEL)}"
    for name in NOT_SHIPPED:
        assert name not in top


def test_no_secret_and_no_environment(entries):
    for name in entries:
        base = PurePosixPath(name).name.lower()
        assert "vault" not in base, name
        assert "password" not in base, name
        assert not name.startswith("inventories"), name
        assert "group_vars" not in name and "host_vars" not in name, name
        assert not base.startswith("."), name


def test_collection_content_is_all_there(entries):
    for name in ("plugins/modules", "plugins/module_utils", "plugins/filter", "meta/runtime.yml",
                 "playbooks", "README.md"):
        assert name in entries
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir())
    assert roles
    for role in roles:
        entry_points = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for entry_point in entry_points["argument_specs"]:
            assert f"roles/{role}/tasks/{entry_point}.yml" in entries
    missing = repo_files(*COLLECTION_DIRS) - entries
    assert not missing, f"collection files left out of the build: {sorted(missing)}"


def test_what_roles_read_from_outside_themselves_is_shipped(entries):
    # A role reads `{{ role_path }}/../../<path>` from the collection root.
    outside = re.compile(r"role_path\s*}}/\.\./\.\./([^{\"'\s]+)")
    reads = set()
    for task_file in (REPO / "roles").glob("*/tasks/*.yml"):
        reads.update(m.group(1).rstrip("/") for m in outside.finditer(task_file.read_text(encoding="utf-8")))
    assert "plugins/module_utils" in reads  # the erp_healthcheck role installs module_utils on hosts
    for prefix in reads:
        assert prefix in entries, prefix
    vars_main = yaml.safe_load((REPO / "roles/erp_healthcheck/vars/main.yml").read_text(encoding="utf-8"))
    for name in vars_main["_erp_healthcheck_module_utils"]:
        assert f"plugins/module_utils/{name}" in entries
