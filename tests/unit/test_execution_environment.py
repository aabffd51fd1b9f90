"""execution-environment.yml is a valid ansible-builder definition that stays in step with the
repository: `ansible-builder create` writes its build context offline, and the Containerfile
installs the collection (the tarball scripts/build-ee.sh stages) and the pins of
requirements.txt and requirements.yml, on the lab's Debian base image. The image itself is
built and used by tests/lab/test_execution_environment.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EE_FILE = REPO / "execution-environment.yml"
EE_DIR = REPO / "execution-environment"
BUILDER = Path(sys.executable).parent / "ansible-builder"
# Test and development tools: the controller's venv has them, the image must not.
NOT_IN_IMAGE = {"ansible-lint", "molecule", "molecule-plugins", "pytest", "pytest-testinfra", "pytest-xdist",
                "yamllint", "ruff", "ansible-builder", "ansible-navigator"}


def load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def pins(path: Path) -> dict[str, str]:
    """{distribution name: the whole requirement line} of a pip requirements file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.split(r"[\[=<>!~; ]", line, maxsplit=1)[0]
            found[name.lower().replace("_", "-")] = line
    return found


@pytest.fixture(scope="module")
def definition() -> dict:
    return load(EE_FILE)


@pytest.fixture(scope="module")
def version() -> str:
    return load(REPO / "galaxy.yml")["version"]


def test_the_python_requirements_carry_the_pins_of_requirements_txt():
    controller = pins(REPO / "requirements.txt")
    image = pins(EE_DIR / "requirements.txt")
    assert image, "no requirement in execution-environment/requirements.txt"
    for name, line in image.items():
        assert controller.get(name) == line, f"{line!r} differs from requirements.txt ({controller.get(name)!r})"
    assert not NOT_IN_IMAGE & image.keys()


def test_ansible_and_ansible_runner_are_the_pinned_packages(definition):
    controller = pins(REPO / "requirements.txt")
    deps = definition["dependencies"]
    assert deps["ansible_core"]["package_pip"] == controller["ansible"]
    assert deps["ansible_runner"]["package_pip"] == controller["ansible-runner"]


def test_the_collections_are_this_one_and_those_of_requirements_yml():
    image = load(EE_DIR / "requirements.yml")["collections"]
    assert image[0] == {"name": "collection/erp-ops.tar.gz", "type": "file"}
    assert image[1:] == load(REPO / "requirements.yml")["collections"]


def test_image_tags_follow_the_collection_version(definition, version):
    assert definition["options"]["tags"] == [f"erp-ee:{version}"]
    navigator = load(REPO / "ansible-navigator.yml")["ansible-navigator"]["execution-environment"]
    assert navigator["image"] == f"127.0.0.1:5000/erp-ee:{version}"
    assert "--network=host" in navigator["container-options"]


def test_the_build_script_stages_what_the_definition_copies(definition):
    script = (REPO / "scripts" / "build-ee.sh").read_text(encoding="utf-8")
    for entry in definition["additional_build_files"]:
        assert Path(entry["src"]).parent == Path("execution-environment/stage")
        assert Path(entry["src"]).name in script


@pytest.fixture(scope="module")
def context(tmp_path_factory) -> Path:
    """`ansible-builder create` of a copy of the definition, with stand-ins for the staged
    files (the real ones need `make ee`)."""
    work = tmp_path_factory.mktemp("ee")
    shutil.copy(EE_FILE, work / EE_FILE.name)
    shutil.copytree(EE_DIR, work / EE_DIR.name, ignore=shutil.ignore_patterns("stage"))
    stage = work / "execution-environment" / "stage"
    stage.mkdir()
    (stage / "erp-ops.tar.gz").write_bytes(b"")
    (stage / "pip-ca-bundle.crt").write_text("", encoding="utf-8")
    out = work / "context"
    proc = subprocess.run(
        [str(BUILDER), "create", "--file", str(work / EE_FILE.name), "--context", str(out),
         "--output-filename", "Containerfile"],
        capture_output=True, text=True, cwd=work, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_create_writes_a_context_with_the_collection_and_the_requirements(context):
    build = context / "_build"
    assert (build / "collection" / "erp-ops.tar.gz").is_file()
    assert (build / "pip" / "pip-ca-bundle.crt").is_file()
    assert (build / "requirements.txt").read_text(encoding="utf-8") == (EE_DIR / "requirements.txt").read_text(
        encoding="utf-8")
    assert load(build / "requirements.yml") == load(EE_DIR / "requirements.yml")


def test_the_containerfile_installs_the_collection_and_the_pins_on_the_lab_base(context):
    text = (context / "Containerfile").read_text(encoding="utf-8")
    controller = pins(REPO / "requirements.txt")
    assert 'ARG EE_BASE_IMAGE="debian:bookworm-slim"' in text
    assert f'ARG ANSIBLE_INSTALL_REFS="{controller["ansible"]} {controller["ansible-runner"]}"' in text
    assert re.search(r"ansible-galaxy collection install .*-r requirements\.yml "
                     r'--collections-path "/usr/share/ansible/collections"', text)
    assert "introspect --user-pip=requirements.txt" in text
    assert "WORKDIR /runner" in text
    assert 'ENTRYPOINT ["/opt/builder/bin/entrypoint", "dumb-init"]' in text


def test_the_build_time_pip_settings_leave_the_image_before_it_is_done(context):
    lines = (context / "Containerfile").read_text(encoding="utf-8").splitlines()
    final = lines.index("FROM base AS final")
    last_pip = max(i for i, line in enumerate(lines) if "pip install" in line)
    removed = lines.index("RUN rm -f /etc/pip.conf")
    assert final < last_pip < removed < lines.index("RUN rm -rf /output")
    assert not any(line.startswith("ENV PIP_CERT") or line.startswith("ENV PIP_INDEX_URL") for line in lines)
