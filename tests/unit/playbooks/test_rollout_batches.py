"""One batch rule: deploy.yml's rollout play and erpctl plan the same batches.

The rollout play of playbooks/deploy.yml is run as written (its hosts and serial keywords),
with its tasks replaced by one that prints each batch, on local hosts for 1..9 app hosts and
several specs; erpctl's stages for the same hosts and spec must be the same lists.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import yaml
from erpctl.stages import plan_stages

REPO = Path(__file__).resolve().parents[3]
SPECS = {"canary-half-rest": [1, "50%", "100%"], "pairs": [2], "third": ["34%"], "one-then-all": [1, "100%"],
         "default": None}


def erpctl_spec_text(spec) -> str:
    return ",".join(str(item) for item in (spec or [1, "50%", "100%"]))


def rollout_play() -> dict:
    plays = yaml.safe_load((REPO / "playbooks" / "deploy.yml").read_text())
    (play,) = [play for play in plays if play["name"] == "Roll out in batches"]
    return play


def test_deploy_and_erpctl_plan_the_same_batches_for_1_to_9_hosts(tmp_path):
    template = rollout_play()
    inventory = {"all": {"children": {}}}
    plays, expected = [], {}
    for label, spec in SPECS.items():
        for count in range(1, 10):
            case = f"{label}-{count}"
            hosts = [f"{case}-app{i}" for i in range(1, count + 1)]
            host_vars = {"ansible_connection": "local"}
            if spec is not None:
                host_vars["erp_rollout_batches"] = spec
            inventory["all"]["children"][re.sub(r"\W", "_", case)] = {"hosts": {h: host_vars for h in hosts}}
            play = copy.deepcopy(template)
            play.update(name=f"case {case}", become=False, vars={"_erp_rollout_hosts": hosts})
            play["tasks"] = [{"name": "Show the batch", "ansible.builtin.debug": {
                "msg": "BATCH " + case + " {{ ansible_play_batch | to_json }}"}, "run_once": True}]
            plays.append(play)
            expected[case] = [list(stage.hosts) for stage in plan_stages(hosts, erpctl_spec_text(spec))]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "batches.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "batches.yml")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                 ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    planned: dict[str, list] = {}
    for case, batch in re.findall(r'"msg": "BATCH (\S+) (\[.*?\])"', proc.stdout):
        planned.setdefault(case, []).append(json.loads(batch.replace('\\"', '"')))
    assert planned == expected
    # The rule the two share, in numbers: percentages round up, the last entry repeats.
    assert [len(b) for b in planned["canary-half-rest-3"]] == [1, 2]
    assert [len(b) for b in planned["canary-half-rest-9"]] == [1, 5, 3]
    assert [len(b) for b in planned["pairs-5"]] == [2, 2, 1]


def test_without_rollout_hosts_the_play_takes_the_environments_app_hosts_in_inventory_order(tmp_path):
    """The canary is the environment's first app host, as erpctl plans it, on every run."""
    hosts = [f"app{i}" for i in (3, 9, 1, 7, 2, 8, 4, 6, 5)]
    inventory = {"lab": {"children": {"erp_app": {"hosts": {h: {"ansible_connection": "local"} for h in hosts}}}}}
    play = rollout_play()
    play.update(become=False)
    play["tasks"] = [{"name": "Show the batch", "ansible.builtin.debug": {
        "msg": "BATCH {{ ansible_play_batch | to_json }}"}, "run_once": True}]
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    (tmp_path / "batches.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    expected = [list(stage.hosts) for stage in plan_stages(hosts, erpctl_spec_text(None))]
    for seed in ("1", "2", "3"):
        proc = subprocess.run(
            ["ansible-playbook", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "batches.yml"), "-l", "lab"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", PYTHONHASHSEED=seed,
                     ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        planned = [json.loads(b.replace('\\"', '"')) for b in re.findall(r'"msg": "BATCH (\[.*?\])"', proc.stdout)]
        assert planned == expected
