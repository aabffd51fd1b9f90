"""The hosts' health checks on the lab, as the on-call person notices them.

In file order: healthcheck.yml installs the scheduled check on every host; health.yml
reports the environment healthy; stopping an app host's live slot reaches a webhook
receiver (a small HTTP server of this test, on the lab network's gateway address, the
controller as the lab hosts reach it) once, and its start once more; incident.yml on a lab
with a crashed slot writes a bundle that names it and holds no vault value. That a deploy
and a rollback switching slots raise no alarm is proven in tests/lab/test_deploy.py, where
the check runs over and over during the upgrade and the rollback. Each test puts back what
it changed (containers started, webhook removed from the hosts by applying healthcheck.yml
without it), so the lab is left as it was found, with the health check installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import (
    HEALTHCHECK_SCRIPT,
    app_hosts,
    ensure_release,
    lab_vault_values,
    playbook,
    release_state,
)

NETWORK = os.environ.get("LAB_NAME", "erplab")
SCRIPT = HEALTHCHECK_SCRIPT
METRICS = "/var/lib/prometheus/node-exporter/erp_healthcheck.prom"
WEBHOOK_FILE = "/etc/erp/healthcheck-webhook"
# What the health check promises: a stopped slot shows in the metric and at the webhook within
# two minutes.
ALERT_WITHIN = 120


# ---------------------------------------------------------------------------------------
# Helpers


def metrics(host) -> dict[str, float]:
    """The host's textfile metrics, ``{'name{labels}': value}``."""
    text = host.ssh(f"sudo cat {METRICS}", check=False).stdout
    return {series: float(value) for series, value in re.findall(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", text, re.M)}


def check_ok(host, check: str) -> float | None:
    return metrics(host).get(f'erp_healthcheck_check_ok{{check="{check}"}}')


def last_run(host) -> float:
    return metrics(host).get("erp_healthcheck_last_run_timestamp_seconds", 0.0)


def wait_for(condition, timeout: float, interval: float = 3.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def wait_for_cron_runs(hosts, runs: int = 1, timeout: float = 200) -> None:
    """Wait until cron ran the check ``runs`` more times on every host."""
    for _ in range(runs):
        before = {host.name: last_run(host) for host in hosts}
        wait_for(lambda before=before: all(last_run(h) > before[h.name] for h in hosts), timeout, 5,
                 "a scheduled run of the health check on " + ", ".join(h.name for h in hosts))


def run_check_now(hosts) -> None:
    """One run of the installed check on each host, exactly as its cron line runs it (waiting
    for a run already going instead of skipping): state, metrics and webhook calls included.
    For the tests' own bookkeeping; what cron's timing promises is measured on cron itself."""
    for host in hosts:
        line = host.ssh("grep -m1 ' root /usr/bin/flock -n ' /etc/cron.d/erp-healthcheck").stdout
        command = line.split(" root ", 1)[1].strip().replace("/usr/bin/flock -n ", "/usr/bin/flock ", 1)
        host.ssh("sudo sh -c " + shlex.quote(command))


def settle(host) -> None:
    """Record the host healthy again in the check's state, so the recovery from a test's own
    fault is not announced to a webhook a later test installs."""
    run_check_now([host])
    assert metrics(host)["erp_healthcheck_checks_failed"] == 0, metrics(host)


def lab_gateway() -> str:
    """The controller's address on the lab network: what the lab hosts reach it by."""
    proc = subprocess.run(["docker", "network", "inspect", NETWORK, "--format",
                           "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
                          capture_output=True, text=True, timeout=30, check=True)
    address = proc.stdout.strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+", address), f"lab network {NETWORK} has no IPv4 gateway: {address!r}"
    return address


class Receiver:
    """The alert webhook's far end: records every POSTed JSON body, answers 200."""

    def __init__(self, address: str):
        self.calls: list[dict] = []
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                calls.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                              "body": json.loads(body), "at": time.monotonic()})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer((address, 0), Handler)
        self.url = f"http://{address}:{self.server.server_port}/hooks/erp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()


def apply_healthcheck(*extra: str) -> None:
    proc = playbook("healthcheck.yml", "-l", "lab", *extra)
    assert proc.returncode == 0, proc.output[-4000:]


def live_slot(host) -> str:
    return release_state(host)["current"]["slot"]


def wait_until_ready(host, slot: str, timeout: float = 90) -> None:
    def ready():
        report = json.loads(host.ssh(f"sudo /usr/bin/python3 {SCRIPT} --dry-run", check=False).stdout)
        return any(c["name"] == f"app_{slot}_ready" and c["status"] == "ok" for c in report["checks"])
    wait_for(ready, timeout, 2, f"{host.name}: slot {slot} ready")


# ---------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def lab(lab_hosts):
    """The lab on one release (whichever the modules before left) with the health check
    installed by healthcheck.yml."""
    ensure_release(lab_hosts, or_any=True)
    apply_healthcheck()
    yield lab_hosts
    # Leave the lab as found: every app slot of the current release running, no webhook.
    for host in app_hosts(lab_hosts):
        host.ssh(f"sudo docker start erp-app-{live_slot(host)}", check=False)
    apply_healthcheck()


def test_healthcheck_playbook_installs_the_scheduled_check_on_every_host(lab):
    for host in lab.values():
        cron = host.ssh("cat /etc/cron.d/erp-healthcheck").stdout
        assert re.search(rf"^\* \* \* \* \* root /usr/bin/flock -n \S+ /usr/bin/python3 {SCRIPT} ", cron, re.M), cron
        assert host.ssh("systemctl is-active cron").stdout.strip() == "active"
        assert host.ssh(f"test -e {WEBHOOK_FILE}", check=False).returncode != 0
    # cron runs it: each host's metrics are written again within a minute and show no failure
    wait_for_cron_runs(list(lab.values()))
    for host in lab.values():
        values = metrics(host)
        assert values["erp_healthcheck_checks_failed"] == 0, {k: v for k, v in values.items() if v == 0}
        assert time.time() - values["erp_healthcheck_last_run_timestamp_seconds"] < 90
    for host in app_hosts(lab):
        slot = live_slot(host)
        assert check_ok(host, "app_serving") == 1
        assert check_ok(host, f"app_{slot}_ready") == 1
        assert check_ok(host, "app_release_state") == 1
    lb = next(h for h in lab.values() if h.group == "erp_lb")
    assert check_ok(lb, "lb_backend_erp_app") == 1
    db = next(h for h in lab.values() if h.group == "erp_db")
    assert check_ok(db, "db_writable") == 1


def test_health_report_says_healthy_through_the_lb_and_per_host(lab):
    proc = playbook("health.yml", "-l", "lab")
    assert proc.returncode == 0, proc.output[-4000:]
    assert "healthy" in proc.stdout and "PROBLEMS:" not in proc.stdout
    assert re.search(r"TASK \[Ask the load balancer for readiness\][^\n]*\nok: \[lb1\]", proc.stdout), proc.stdout
    for host in lab.values():
        assert re.search(rf"{host.name}: [1-9]\d* ok, 0 failing, \d+ idle", proc.stdout), proc.stdout[-3000:]


def test_stopping_the_live_slot_alerts_once_and_starting_it_recovers_once(lab):
    app1 = lab["app1"]
    slot = live_slot(app1)
    container = f"erp-app-{slot}"
    with Receiver(lab_gateway()) as receiver:
        try:
            apply_healthcheck("-e", f"erp_healthcheck_webhook_url={receiver.url}")
            assert app1.ssh(f"sudo stat -c %a {WEBHOOK_FILE}").stdout.strip() == "600"
            run_check_now(list(lab.values()))
            assert receiver.calls == [], "a healthy lab must not call the webhook"

            app1.ssh(f"sudo docker stop {container}")
            stopped = time.monotonic()
            wait_for(lambda: check_ok(app1, f"app_{slot}_container") == 0, ALERT_WITHIN - 5, 5,
                     f"metric of {container} failing")
            assert check_ok(app1, "app_serving") == 0
            wait_for(lambda: receiver.calls, stopped + ALERT_WITHIN - time.monotonic(), 1, "the alert")
            alert = receiver.calls[0]
            assert alert["at"] - stopped < ALERT_WITHIN
            assert alert["path"] == "/hooks/erp" and alert["content_type"] == "application/json"
            body = alert["body"]
            assert body["host"] == "app1" and body["environment"] == "lab" and body["status"] == "fail"
            assert body["text"].startswith("[lab] app1: ")
            assert f"FAILING app_{slot}_container: container {container} is exited (exit code 0)" in body["text"]
            assert "app_serving" in {change["check"] for change in body["changes"]}

            # The state stays failed: the next runs call nobody (repeat interval 60 min).
            run_check_now([app1])
            run_check_now([app1])
            assert check_ok(app1, f"app_{slot}_container") == 0
            assert len(receiver.calls) == 1, [c["body"]["text"] for c in receiver.calls]

            # The schedule was proven by the alert: the recovery is the next check's, run now.
            app1.ssh(f"sudo docker start {container}")
            wait_until_ready(app1, slot)
            run_check_now([app1])
            wait_for(lambda: len(receiver.calls) > 1, 30, 1, "the recovery call")
            recovery = receiver.calls[1]["body"]
            assert recovery["host"] == "app1" and recovery["status"] == "ok"
            assert f"RECOVERED app_{slot}_container" in recovery["text"]
            run_check_now([app1])
            assert check_ok(app1, "app_serving") == 1
            assert len(receiver.calls) == 2, [c["body"]["text"] for c in receiver.calls]
        finally:
            app1.ssh(f"sudo docker start {container}", check=False)
            apply_healthcheck()
    assert app1.ssh(f"test -e {WEBHOOK_FILE}", check=False).returncode != 0
    wait_until_ready(app1, slot)
    settle(app1)


def test_incident_bundle_names_the_crashed_slot_and_holds_no_vault_value(lab, tmp_path):
    app2 = lab["app2"]
    slot = live_slot(app2)
    container = f"erp-app-{slot}"
    policy = app2.ssh(f"sudo docker inspect -f '{{{{.HostConfig.RestartPolicy.Name}}}}' {container}").stdout.strip()
    app2.ssh(f"sudo docker update --restart=no {container} >/dev/null && sudo docker kill {container}")
    try:
        proc = playbook("incident.yml", "-l", "lab", "-e", f"incident_artifacts_dir={tmp_path}")
    finally:
        app2.ssh(f"sudo docker update --restart={policy or 'no'} {container} >/dev/null && "
                 f"sudo docker start {container}", check=False)
    assert proc.returncode == 0, proc.output[-4000:]
    assert re.search(rf"container {container} \([^)]*\): Exited \(137\)", proc.stdout), proc.stdout[-3000:]

    (bundle,) = tmp_path.glob("incident-*.tar.gz")
    with tarfile.open(bundle) as archive:
        members = {}
        for member in archive.getmembers():
            if member.isfile():
                host, name = member.name.split("/")[-2:]
                members[f"{host}/{name}"] = archive.extractfile(member).read().decode("utf-8", "replace")
    summary = members["app2/summary.txt"]
    assert re.search(rf"container {container} \([^)]*\): Exited \(137\)", summary), summary
    assert f"health check app_{slot}_container: container {container} is exited (exit code 137)" in summary
    assert "container " not in members["app1/summary.txt"]
    assert {"app2/containers.txt", f"app2/logs-{container}.txt", "app2/var_lib_erp_release.json",
            "db1/database.txt", "lb1/haproxy-show-stat.csv"} <= set(members)
    assert re.search(rf"^erp_app,app2_{slot},.*DOWN", members["lb1/haproxy-show-stat.csv"], re.M)

    secrets = lab_vault_values()
    leaked = [(member, name) for member, text in members.items() for name, value in secrets.items() if value in text]
    assert not leaked
    assert not [name for name, value in secrets.items() if value in proc.output]
    wait_until_ready(app2, slot)
    settle(app2)
