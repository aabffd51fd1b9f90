"""The single-host environment: the LB runs beside the only app host, and a release change
still fails no user request, because the new release boots in the other slot.

Runs after test_default.py (file order). switch.yml moves the host to 1.1.0 in the green
slot and back to 1.0.0 in the warm blue slot with the erp_deploy role's switch entry point,
the one deploy.yml and rollback.yml use, while erp-load (installed by prepare) sends
steady traffic to the public frontend from inside the host.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SCENARIO = Path(__file__).resolve().parents[1]
RESULT = "/run/erp-load.json"


def run_switch_playbook():
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    binary = Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run([str(binary), "-i", str(inventory), str(SCENARIO / "switch.yml")],
                          env=os.environ, capture_output=True, text=True, timeout=600, check=False)


def load_result(host, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if host.file(RESULT).exists:
            return json.loads(host.file(RESULT).content_string)
        time.sleep(1)
    raise AssertionError(f"erp-load wrote no {RESULT} within {timeout} s")


def test_switching_slots_there_and_back_under_traffic_fails_no_request(host, container):
    host.run(f"rm -f {RESULT} {RESULT}.stop")
    # Bounded by itself too (5 minutes), should the test die before it stops it.
    host.run_expect([0], f"systemd-run --unit=erp-load --collect /usr/local/bin/erp-load http://127.0.0.1 {RESULT} "
                         "--threads 4 --max-seconds 300")
    try:
        time.sleep(2)
        switch = run_switch_playbook()
        time.sleep(2)
    finally:
        host.run(f"touch {RESULT}.stop")
    result = load_result(host)
    assert switch.returncode == 0, switch.stdout[-4000:]
    assert result["failed"] == 0, result["errors"]
    assert result["ok"] > 200
    # Traffic really moved: both releases answered users during the run.
    assert set(result["versions"]) == {"1.0.0", "1.1.0"}
    # Back on blue, with green stopped but kept for a fast rollback.
    assert container("erp-app-blue")["State"]["Running"]
    green = container("erp-app-green")
    assert green["State"]["Status"] == "exited" and green["Config"]["Labels"]["org.erp.version"] == "1.1.0"
