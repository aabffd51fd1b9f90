"""Every role documents what it accepts: argument_specs, defaults and README agree."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[3] / "roles").iterdir() if p.is_dir())


def spec_options(role: Path) -> dict:
    """Options of every entry point (main, and each tasks_from a playbook includes)."""
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    options = {}
    for entry_point in specs["argument_specs"].values():
        options.update(entry_point.get("options") or {})
    return options


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_default_is_specified_and_every_option_is_prefixed(role):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    options = spec_options(role)
    unspecified = sorted(set(defaults) - set(options))
    assert not unspecified, f"defaults/main.yml has options no entry point specifies: {unspecified}"
    # An option without a default is an entry point's input: its caller must give it.
    undefaulted = sorted(name for name, spec in options.items() if name not in defaults and not spec.get("required"))
    assert not undefaulted, f"options neither in defaults/main.yml nor required: {undefaulted}"
    assert all(name.startswith(f"{role.name}_") for name in options)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_readme_documents_every_option(role):
    readme = (role / "README.md").read_text()
    missing = [name for name in spec_options(role) if f"`{name}`" not in readme]
    assert not missing, f"{role.name}/README.md does not document {missing}"
