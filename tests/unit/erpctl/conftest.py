# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""erpctl tests: a fake runner and a fake HTTP fetch stand in for ansible-runner and the hosts.

erpctl is normally installed into the venv (pip install -e erpctl); when it is not, its
source tree is put on the import path so these tests still run from a bare checkout.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

if importlib.util.find_spec("erpctl") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "erpctl" / "src"))

from erpctl.cli import main
from erpctl.session import Interrupt
from erpctl_fakes import FakeFetch, FakeLab, FakeRunner


@pytest.fixture
def repo(tmp_path):
    """A minimal erp.ops checkout: galaxy.yml, the inventory dir and the entry playbooks."""
    (tmp_path / "galaxy.yml").write_text("namespace: erp\nname: ops\n")
    for env in ("lab", "prod"):
        (tmp_path / "inventories" / env).mkdir(parents=True)
    (tmp_path / "playbooks").mkdir()
    for name in ("deploy.yml", "rollback.yml", "backup.yml"):
        (tmp_path / "playbooks" / name).write_text("---\n")
    return tmp_path


class TtyInput(io.StringIO):
    def isatty(self):
        return True


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    lab: FakeLab
    repo: object

    def report(self):
        runs = sorted((self.repo / "artifacts" / "erpctl").glob("*/report.json"))
        return json.loads(runs[-1].read_text())

    def audit(self):
        return [json.loads(line) for line in
                (self.repo / "artifacts" / "erpctl" / "audit.log").read_text().splitlines()]


@pytest.fixture
def lab():
    return FakeLab()


@pytest.fixture
def erpctl(repo, lab):
    """Run ``main(argv)`` against the fake lab; returns an Outcome."""

    def run(*argv, stdin=None, interrupt=None):
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), runner=FakeRunner(lab), fetch=FakeFetch(lab), stdin=stdin or io.StringIO(),
                    stdout=out, stderr=err, clock=lab.clock, sleep=lab.clock.sleep,
                    interrupt=interrupt or Interrupt(), environ={"ERPCTL_REPO": str(repo)})
        return Outcome(code, out.getvalue(), err.getvalue(), lab, repo)

    return run
