"""`erpctl rollout` against the lab, as an operator runs it, under user traffic.

A good release goes stage by stage (canary, then the rest) to every app host; every faulty
build ends with every app host back on the release it ran before, whether deploy.yml itself
failed the stage or erpctl's bake caught it; the build that passes every health check but
answers a share of requests with HTTP 500 is caught by the canary analysis before the second
stage. Short bakes keep the module within minutes; the decision thresholds are erpctl's
defaults. User traffic is paced (conftest.PACED): plenty for the analysis and to see any
failed request, without starving the rollouts of the lab's two cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import (
    PACED,
    REPO,
    Load,
    app_hosts,
    current_versions,
    ensure_release,
    lab_vault_values,
    release_state,
    served_versions,
)

ERPCTL = shutil.which("erpctl", path=str(REPO / ".venv" / "bin")) or "erpctl"
# The stage's deploy.yml: no converge (the module fixture did it), short health deadline.
QUICK_STAGE = ["-e", "erp_deploy_converge=false", "-e", "erp_deploy_health_deadline=15",
               "-e", "erp_deploy_bake_seconds=2", "-e", "erp_deploy_bake_interval=2"]


def erpctl(*args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([ERPCTL, *args, "--json"], cwd=REPO, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout,
                          env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")))
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"erpctl printed no JSON report (exit {proc.returncode}): {proc.stderr[-3000:]}") from None
    return proc, report


def rollout(version: str, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    return erpctl("rollout", "--env", "lab", "--version", version, "--stages", "canary,100%", "--yes",
                  "--interval", "2s", *args, *QUICK_STAGE)


def lock_is_free(lab_hosts) -> bool:
    lb = next(h for h in lab_hosts.values() if h.group == "erp_lb")
    return lb.ssh("test -e /var/lib/erp/deploy.lock", check=False).returncode != 0


@pytest.fixture(scope="module")
def on_1_0_0(lab_hosts):
    ensure_release(lab_hosts, "1.0.0")
    return lab_hosts


def test_a_good_release_goes_stage_by_stage_to_every_host(on_1_0_0):
    with Load(rate=PACED) as load:
        proc, report = rollout("1.1.0", "--bake", "20s", "--message", "lab e2e")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert report["outcome"] == "succeeded" and report["exit_code"] == 0
    stages = report["stages"]
    assert [(s["name"], s["outcome"]) for s in stages] == [("canary", "passed"), ("100%", "passed")]
    assert len(stages[0]["hosts"]) == 1 and stages[0]["hosts"][0] not in stages[1]["hosts"]
    # The canary was analysed against the hosts still on 1.0.0, on real user traffic.
    assert stages[0]["analysis"]["decision"]["verdict"] == "pass"
    assert stages[0]["analysis"]["old"]["requests"] > 0
    assert set(current_versions(on_1_0_0).values()) == {"1.1.0"}
    assert served_versions() == {"1.1.0"}
    assert load.failed == [], load.failed[:5]
    assert lock_is_free(on_1_0_0)
    # Each stage ran deploy.yml for its own hosts only: one deployed history entry each.
    for host in app_hosts(on_1_0_0):
        deployed = [e for e in release_state(host)["history"] if e["version"] == "1.1.0"]
        assert deployed[-1]["outcome"] == "deployed"
    run_dir = Path(report["run_dir"])
    assert (run_dir / "report.json").is_file()
    assert (run_dir / "artifacts" / "stage-1-deploy" / "stdout").is_file()
    audit = (REPO / "artifacts" / "erpctl" / "audit.log").read_text().splitlines()
    assert json.loads(audit[-1])["outcome"] == "succeeded"
    # No vault value in the progress output, the report or the runner artifacts (the env
    # file with the database password was written during the run).
    leaked = {name for name, value in lab_vault_values().items()
              if value in proc.stderr or value in proc.stdout
              or any(value in path.read_text(errors="replace") for path in run_dir.rglob("*") if path.is_file())}
    assert not leaked, f"secrets leaked: {sorted(leaked)}"


# Each faulty build, from 1.1.0: where it may be caught, all in the canary stage.
FAULTS = {
    "crash": ("deploy.yml failed",),
    "never-ready": ("deploy.yml failed",),
    "database-fails": ("deploy.yml failed",),
    "slow-ready": ("deploy.yml failed",),
    # Turns bad 20 s after it first was ready: by deploy.yml's own bake when the stage's run
    # outlasts that (a slow machine), else by erpctl's bake, which outlasts it.
    "fails-after-ready": ("deploy.yml failed", "canary analysis failed"),
    # Healthy, but answers a share of user requests with HTTP 500: only the analysis sees it.
    "errors-500": ("canary analysis failed",),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_faulty_build_is_rolled_back_everywhere(on_1_0_0, fault):
    before = current_versions(on_1_0_0)
    bake = "35s" if fault == "fails-after-ready" else "20s"
    with Load(rate=PACED) as load:
        proc, report = rollout(f"1.1.0-fault-{fault}", "--bake", bake)
    assert proc.returncode == 1, proc.stderr[-4000:]
    assert report["outcome"] == "rolled-back"
    assert report["failure"].startswith(FAULTS[fault]), report["failure"]
    # Stopped in the canary stage: the second stage never started.
    assert [s["outcome"] for s in report["stages"]] == ["failed"]
    assert current_versions(on_1_0_0) == before
    assert served_versions() == set(before.values())
    assert lock_is_free(on_1_0_0)
    if fault == "errors-500":
        decision = report["stages"][0]["analysis"]["decision"]
        assert decision["verdict"] == "fail" and any("error rate" in r for r in decision["reasons"])
    else:
        # Health-gated: users never saw the broken build.
        assert load.failed == [], load.failed[:5]
