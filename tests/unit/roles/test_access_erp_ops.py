"""erp-ops, the deployer's sudo right: fixed verbs on the ERP's own containers, never a raw
docker command (which is root and shows every secret)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "access" / "files" / "erp-ops"
_loader = importlib.machinery.SourceFileLoader("erp_ops", str(SCRIPT))
_spec = importlib.util.spec_from_loader("erp_ops", _loader)
erp_ops = importlib.util.module_from_spec(_spec)
_loader.exec_module(erp_ops)

ENGINE = "erp-app-blue\tapp\nerp-app-green\tapp\nerp-lb\tlb\nerp-db\tdatabase\n"


class Engine:
    """A stand-in for /usr/bin/docker: records each argv, answers `ps` with the ERP containers."""

    def __init__(self, listing: str = ENGINE, rc: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.listing, self.rc = listing, rc

    def __call__(self, *argv: str, capture: bool = True) -> subprocess.CompletedProcess:
        self.calls.append(list(argv))
        if argv[:2] == ("ps", "-a") and capture:
            return subprocess.CompletedProcess(argv, self.rc, self.listing, "engine down" if self.rc else "")
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.mark.parametrize(("argv", "docker"), [
    (["status"], ["ps", "-a", "--filter", "label=org.erp.role", "--format",
                  "table {{.Names}}\t{{.Image}}\t{{.Status}}"]),
    (["logs", "erp-app-blue"], ["logs", "--tail", "200", "erp-app-blue"]),
    (["logs", "erp-db", "--tail", "50", "--since", "2h"], ["logs", "--tail", "50", "--since", "2h", "erp-db"]),
    (["logs", "erp-lb", "--since", "2026-12-07T10:00:00Z"],
     ["logs", "--tail", "200", "--since", "2026-12-07T10:00:00Z", "erp-lb"]),
    (["restart", "erp-app-green"], ["restart", "erp-app-green"]),
    (["restart", "erp-lb"], ["restart", "erp-lb"]),
])
def test_each_verb_runs_one_fixed_docker_command(argv, docker):
    engine = Engine()
    assert erp_ops.main(argv, run=engine) == 0
    assert engine.calls[-1] == docker


@pytest.mark.parametrize(("argv", "says"), [
    (["logs", "someone-elses"], "'someone-elses' is not an ERP container here (these are: erp-app-blue, "),
    (["restart", "erp-db"], "erp-db (database) is not restarted with erp-ops: ask a DBA or an admin"),
    (["logs", "erp-lb", "--tail", "0"], "--tail must be between 1 and 10000; got 0"),
    (["logs", "erp-lb", "--since", "1h; rm -rf /"], "--since must be a duration (10m, 2h, 1d) or an ISO time"),
])
def test_anything_else_is_refused_with_the_reason_and_runs_nothing(argv, says, capsys):
    engine = Engine()
    assert erp_ops.main(argv, run=engine) == 2
    assert says in capsys.readouterr().err
    assert all(call[:2] == ["ps", "-a"] for call in engine.calls)


@pytest.mark.parametrize("argv", [["run", "--privileged", "-v", "/:/host", "debian"], ["inspect", "erp-db"],
                                  ["exec", "erp-db", "sh"], ["status", "--format", "{{json .}}"]])
def test_raw_docker_commands_are_not_verbs(argv):
    engine = Engine()
    with pytest.raises(SystemExit) as refused:
        erp_ops.main(argv, run=engine)
    assert refused.value.code == 2
    assert engine.calls == []


def test_an_engine_that_does_not_answer_is_named(capsys):
    assert erp_ops.main(["logs", "erp-lb"], run=Engine(rc=1)) == 2
    assert "the Docker engine did not answer: engine down" in capsys.readouterr().err
