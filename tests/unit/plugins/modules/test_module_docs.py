# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Every module of the collection renders with ansible-doc (doc fragments resolved), and
documents exactly the options its argument spec takes, with the same types and defaults."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils import basic

REPO = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))


class SpecSeen(Exception):
    pass


def argument_spec(name, monkeypatch):
    """The argument spec the module's main() builds its AnsibleModule with."""
    def capture(self, argument_spec, **_kwargs):
        raise SpecSeen(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", capture)
    module = importlib.import_module(f"ansible_collections.erp.ops.plugins.modules.{name}")
    with pytest.raises(SpecSeen) as seen:
        module.main()
    return seen.value.args[0]


@pytest.fixture(scope="module")
def docs():
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    # ansible-doc of the interpreter running the tests (the repository's virtualenv).
    ansible_doc = str(Path(sys.executable).parent / "ansible-doc")
    proc = subprocess.run([ansible_doc, "--json", *(f"erp.ops.{name}" for name in MODULES)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_the_collection_has_its_modules():
    assert {"erp_health", "erp_warm_slot", "erp_release_record"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_the_argument_spec(name, docs, monkeypatch):
    documented = docs[f"erp.ops.{name}"]["doc"]["options"]
    spec = argument_spec(name, monkeypatch)
    assert sorted(documented) == sorted(spec)
    for option, entry in spec.items():
        assert documented[option].get("type", "str") == entry.get("type", "str"), option
        assert documented[option].get("default") == entry.get("default"), option
        assert bool(documented[option].get("required")) == bool(entry.get("required")), option
    assert docs[f"erp.ops.{name}"]["examples"].strip()
    assert docs[f"erp.ops.{name}"]["return"]
