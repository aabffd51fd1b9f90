# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""erpctl's AnsibleRunner with the real ansible-runner and ansible-playbook, on localhost.

One erpctl command runs several playbooks and ad hoc modules in one private data dir (one
artifacts tree per command): each run must get exactly its own variables and options,
nothing left behind by the run before it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from erpctl.runner import AnsibleRunner

PLAYBOOK = """\
- name: Show what this run got
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Check the variables are this run's own
      ansible.builtin.assert:
        that:
          - (api_token | default('none')) == ('s3cret' if run == 1 else 'none')
          - first_only is undefined or run == 1
"""


@pytest.fixture
def project(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "ansible.cfg").write_text("[defaults]\nstdout_callback = ansible.builtin.default\n")
    (repo / "hosts").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (repo / "show.yml").write_text(PLAYBOOK)
    return repo


def command(artifacts: str) -> list[str]:
    return json.loads((Path(artifacts) / "command").read_text())["command"]


def test_each_run_in_a_shared_private_data_dir_gets_only_its_own_variables_and_options(project, tmp_path):
    runner = AnsibleRunner(project, str(project / "hosts"))
    run_dir = tmp_path / "run"
    first = runner.playbook(playbook="show.yml", limit="localhost", private_data_dir=run_dir, ident="first",
                            extravars={"run": 1, "first_only": True,
                                       "api_token": "s3cret"})
    assert first.ok, first.failures()
    adhoc = runner.adhoc(module="ansible.builtin.ping", module_args="", host_pattern="localhost",
                         private_data_dir=run_dir, ident="adhoc", become=False)
    assert adhoc.ok, adhoc.failures()
    second = runner.playbook(playbook="show.yml", limit="localhost", private_data_dir=run_dir, ident="second",
                             extravars={"run": 2})
    assert second.ok, second.failures()
    # Neither the first run's secret-vars file (deleted after it) nor its variables.
    assert not any(arg.startswith("@") or "s3cret" in arg or "first_only" in arg for arg in command(second.artifacts))
    assert "--become" not in command(adhoc.artifacts)


# A module that says whether it runs inside a Mitogen interpreter (which imports mitogen).
RUNTIME_MODULE = """\
import sys
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec={})
module.exit_json(changed=False, mitogen="mitogen" in sys.modules)
"""

RUNTIME_PLAYBOOK = """\
- name: Say which connection layer ran the module
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Ask the module
      which_runtime:
      register: runtime

    - name: Check it is the one asked for
      ansible.builtin.assert:
        that: runtime.mitogen == (want == 'mitogen')
"""


@pytest.mark.parametrize(("strategy", "want"), [("mitogen_linear", "mitogen"), ("linear", "plain")])
def test_the_strategy_option_picks_mitogen_or_plain_ansible(project, tmp_path, strategy, want):
    repo_plugins = Path(__file__).resolve().parents[3] / "plugins" / "strategy"
    # The repository's default (Mitogen) in the project's ansible.cfg; the option overrides it.
    (project / "ansible.cfg").write_text(
        f"[defaults]\nstdout_callback = ansible.builtin.default\nstrategy_plugins = {repo_plugins}\n"
        "strategy = mitogen_linear\nlibrary = library\n")
    (project / "library").mkdir()
    (project / "library" / "which_runtime.py").write_text(RUNTIME_MODULE)
    (project / "runtime.yml").write_text(RUNTIME_PLAYBOOK)
    runner = AnsibleRunner(project, str(project / "hosts"), strategy=strategy)
    run = runner.playbook(playbook="runtime.yml", limit="localhost", private_data_dir=tmp_path / "run",
                          ident="runtime", extravars={"want": want})
    assert run.ok, run.failures()
