# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""What erpctl tells the history callback (erp.ops.history) about each run it starts.

A real erpctl run recorded through ansible-runner: tests/unit/plugins/callback/test_history.py.
"""

from __future__ import annotations

import pytest
from erpctl.runner import history_env


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, "erpctl,erpctl:20261201-rollout"),
    ({"ERP_HISTORY_LABELS": "team-a, change-42"}, "team-a,change-42,erpctl,erpctl:20261201-rollout"),
    ({"ERP_HISTORY_LABELS": "erpctl,,"}, "erpctl,erpctl:20261201-rollout"),
])
def test_a_playbook_run_is_labelled_with_erpctl_and_its_command_after_the_callers_labels(environ, expected):
    assert history_env(environ, "20261201-rollout", adhoc=False) == {"ERP_HISTORY_LABELS": expected}


def test_the_callers_opt_out_is_left_to_reach_the_run():
    assert "ERP_RECORD_HISTORY" not in history_env({"ERP_RECORD_HISTORY": "0"}, "run", adhoc=False)


def test_ad_hoc_reads_are_not_recorded():
    assert history_env({"ERP_RECORD_HISTORY": "1"}, "run", adhoc=True) == {"ERP_RECORD_HISTORY": "0"}
