"""What Prometheus gets from the lab, scraped the way it scrapes prod.

Runs last, on a lab that went through everything before it: provisioned (node_exporter from
role base, the firewall from role hardening), on a release, the health check installed, the
backups taken and verified. This machine is the lab's monitoring network (its gateway
address; the hardening role's default monitoring network is the admin network), so it
scrapes each host's node_exporter on the host's internal address, as Prometheus does with
monitoring/prometheus.yml, and each app's live slot's /health/metrics. promtool accepts
every scrape (node_exporter's upstream metric names aside); every metric the alert rules in
monitoring/rules read from node_exporter is really served by some host (an alert on a
metric nobody serves never fires); node_exporter listens on the internal address only and
another host of the environment cannot reach it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml
from conftest import REPO, app_hosts, ensure_healthcheck, ensure_release, internal_addresses, playbook, release_state

RULES = sorted((REPO / "monitoring" / "rules").glob("*.yml"))
# Metrics the rules read that the lab cannot serve, and why.
NOT_IN_THE_LAB = {
    "erp_healthcheck_certificate_expiry_timestamp_seconds": "the lab serves no TLS (certificate checks are off)",
}
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
SLOT_PORTS = {"blue": 8001, "green": 8002}


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=15) as response:  # noqa: S310 (the lab's internal http URLs)
        assert response.status == 200, url
        return response.read().decode()


def promtool_problems(text: str) -> list[str]:
    """``promtool check metrics`` on a scrape: fails the test when promtool cannot parse it
    (exit 1), returns its lint problems (exit 3), one line each."""
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's 'prometheus' package (make setup does)"
    checked = subprocess.run([path, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode in (0, 3), f"promtool cannot parse the scrape: {checked.stdout}{checked.stderr}"
    return (checked.stdout + checked.stderr).splitlines()


def ours(problems: list[str]) -> list[str]:
    """The problems in the ERP's own metrics. node_exporter's upstream names break promtool's
    naming lint (node_netstat_Tcp_InSegs is camelCase): not this repository's to change."""
    return [line for line in problems if line.startswith("erp_")]


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )", text, re.M))


def node_metrics_the_rules_read() -> set[str]:
    """Names in the rules' expressions that node_exporter serves (its own node_* and the
    textfile metrics of erp_healthcheck and erp_backup), whole names only."""
    names = set()
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                names |= set(re.findall(r"\b((?:erp_healthcheck|erp_backup|node)_[a-z_]+)\b", rule["expr"]))
    return {name for name in names if not name.endswith("_")}


@pytest.fixture(scope="module")
def monitored_lab(lab_hosts):
    """The lab as the modules before this one leave it; a lab brought up for this module
    alone gets provisioned, a release, the health check and a verified backup first."""
    addresses = internal_addresses()
    try:
        for address in addresses.values():
            scrape(f"http://{address}:9100/metrics")
    except OSError:
        proc = playbook("provision.yml", "-l", "lab", timeout=1200)
        assert proc.returncode == 0, proc.output[-4000:]
    ensure_release(lab_hosts, or_any=True)
    ensure_healthcheck(lab_hosts)
    db = next(h for h in lab_hosts.values() if h.group == "erp_db")
    if db.ssh(f"test -e {TEXTFILE_DIR}/erp_backup_verify.prom", check=False).returncode != 0:
        for book in ("backup.yml", "backup_verify.yml"):
            proc = playbook(book, "-l", "lab", timeout=1200)
            assert proc.returncode == 0, proc.output[-4000:]
    return addresses


def test_every_host_s_node_exporter_serves_metrics_promtool_accepts(monitored_lab):
    served: set[str] = set()
    for name, address in monitored_lab.items():
        text = scrape(f"http://{address}:9100/metrics")
        assert not ours(promtool_problems(text)), name
        assert "\nnode_textfile_scrape_error 0\n" in text, f"{name}: a textfile the collector cannot read"
        assert "erp_healthcheck_last_run_timestamp_seconds" in text, f"{name}: no health check metrics"
        served |= metric_names(text)
    wanted = node_metrics_the_rules_read()
    assert "erp_backup_last_success_timestamp_seconds" in wanted  # the rules were read
    missing = wanted - served - set(NOT_IN_THE_LAB)
    assert not missing, f"the alert rules read metrics no host serves: {sorted(missing)}"


def test_every_app_slot_s_metrics_pass_promtool(monitored_lab, lab_hosts):
    for host in app_hosts(lab_hosts):
        port = SLOT_PORTS[release_state(host)["current"]["slot"]]
        text = scrape(f"http://{monitored_lab[host.name]}:{port}/health/metrics")
        assert promtool_problems(text) == [], host.name  # all of it is the ERP's own
        assert {"erp_build_info", "erp_http_requests_total"} <= metric_names(text), host.name


def test_node_exporter_is_internal_and_closed_to_the_environment_s_other_hosts(monitored_lab, lab_hosts):
    lb = next(h for h in lab_hosts.values() if h.group == "erp_lb")
    app = app_hosts(lab_hosts)[0]
    address = monitored_lab[app.name]
    listening = app.ssh("sudo ss -Htln 'sport = :9100' | awk '{print $4}'").stdout.split()
    assert listening == [f"{address}:9100"]
    # The same path from the LB host reaches the app's live slot (the LB is allowed there), so
    # a failure on 9100 is the firewall's doing, not a broken network.
    port = SLOT_PORTS[release_state(app)["current"]["slot"]]
    slot = lb.ssh(f"curl -s -o /dev/null -w '%{{http_code}}' -m 5 http://{address}:{port}/health/live", check=False)
    assert slot.stdout.strip() == "200", slot.stdout + slot.stderr
    metrics = lb.ssh(f"curl -s -o /dev/null -m 5 http://{address}:9100/metrics", check=False)
    assert metrics.returncode in (7, 28), f"node_exporter answered the LB host (curl exit {metrics.returncode})"
