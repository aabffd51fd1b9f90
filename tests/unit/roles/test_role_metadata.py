"""Every role documents what it accepts: argument_specs, defaults and README agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[3] / "roles").iterdir() if p.is_dir())


def spec_options(role: Path) -> dict:
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_specified_and_every_option_is_prefixed(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = spec_options(role)
    assert sorted(defaults) == sorted(options), "defaults/main.yml and meta/argument_specs.yml disagree"
    assert all(name.startswith(f"{role.name}_") for name in options)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_documents_every_option(role):
    readme = (role / "README.md").read_text()
    missing = [name for name in spec_options(role) if f"`{name}`" not in readme]
    assert not missing, f"{role.name}/README.md does not document {missing}"
