"""What a user of the health check sees on a host: metrics, journal entries, webhook calls.

The tests run in file order against one host: the blue slot runs at first, is stopped,
stays down past the repeat interval, and comes back. Each run of the check takes the same
flock as cron, so a cron run never interleaves with a test's run.
"""

import json
import re
import shutil
import subprocess
import time

SCRIPT = "/usr/local/lib/erp-healthcheck/erp_healthcheck.py"
CONFIG = "/etc/erp/healthcheck.json"
LOCK = "/run/lock/erp-healthcheck.lock"
METRICS = "/var/lib/prometheus/node-exporter/erp_healthcheck.prom"
STATE = "/var/lib/erp-healthcheck/state.json"
CALLS = "/var/lib/hc-receiver/calls.jsonl"


def run_check(host, before=""):
    """One run under cron's lock (optionally after a shell snippet inside the lock)."""
    script = f"{before}\n/usr/bin/python3 {SCRIPT} --config {CONFIG}"
    return host.run(f"/usr/bin/flock {LOCK} /bin/sh -c {quote(script)}")


def quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def metric(host, name, check):
    text = host.file(METRICS).content_string
    found = re.search(rf'^{name}{{check="{re.escape(check)}"}} (\S+)$', text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def calls(host):
    if not host.file(CALLS).exists:
        return []
    return [json.loads(line)["body"] for line in host.file(CALLS).content_string.splitlines() if line.strip()]


def wait_ready(host, port=8001, attempts=60):
    url = f"http://127.0.0.1:{port}/health/ready"
    probe = ("/usr/bin/python3 -c 'import urllib.request,sys;"
             f"sys.exit(0 if urllib.request.urlopen(\"{url}\",timeout=2).status==200 else 1)'")
    for _ in range(attempts):
        if host.run(probe).rc == 0:
            return
        time.sleep(1)
    raise AssertionError(f"port {port} never became ready")


def test_check_is_installed_beside_the_shared_module_utils_and_scheduled_under_flock(host):
    assert host.file(SCRIPT).mode == 0o755
    assert host.file("/usr/local/lib/erp-healthcheck/_health.py").exists
    cron = host.file("/etc/cron.d/erp-healthcheck").content_string
    assert re.search(rf"^\* \* \* \* \* root /usr/bin/flock -n {LOCK} /usr/bin/python3 {SCRIPT} ", cron, re.MULTILINE)
    assert host.service("cron").is_running
    assert host.file("/etc/erp/healthcheck-webhook").mode == 0o600


def test_healthy_host_writes_every_check_ok_atomically_and_calls_nobody(host):
    before = len(calls(host))
    outcome = run_check(host)
    assert outcome.rc == 0, outcome.stdout + outcome.stderr
    for check in ("app_blue_container", "app_blue_live", "app_blue_ready", "app_blue_database",
                  "app_serving", "db_container", "db_accepting", "db_writable", "disk:/", "memory"):
        assert metric(host, "erp_healthcheck_check_ok", check) == 1, check
    # the green slot has no container: idle, not failing
    assert metric(host, "erp_healthcheck_check_idle", "app_green_container") == 1
    assert metric(host, "erp_healthcheck_check_ok", "app_green_container") is None
    assert metric(host, "erp_healthcheck_check_duration_seconds", "app_blue_ready") > 0
    assert host.file(METRICS).mode == 0o644
    leftovers = host.run("ls -A /var/lib/prometheus/node-exporter/").stdout.split()
    assert leftovers == ["erp_healthcheck.prom"]
    assert len(calls(host)) == before


def test_stopping_the_only_slot_flips_the_metric_and_calls_the_webhook_once(host):
    before = len(calls(host))
    # Stopped under the lock: a cron run must not see the slot mid-drain (ready already 503
    # while the container still runs), which is a different state from the one tested here.
    outcome = run_check(host, before="docker stop -t 15 erp-app-blue >/dev/null")
    assert outcome.rc == 1
    assert metric(host, "erp_healthcheck_check_ok", "app_serving") == 0
    assert metric(host, "erp_healthcheck_check_idle", "app_blue_container") == 1
    new = calls(host)[before:]
    assert len(new) == 1
    assert new[0]["status"] == "fail"
    assert [c["check"] for c in new[0]["changes"]] == ["app_serving"]
    assert new[0]["text"].startswith("[molecule] ")
    assert "FAILING app_serving" in new[0]["text"]
    # the state change is in the journal
    journal = host.run("journalctl -t erp-healthcheck --no-pager -n 50").stdout
    assert "app_serving: ok -> fail" in journal
    # unchanged state: no further call
    run_check(host)
    assert len(calls(host)) == before + 1


def test_an_ongoing_failure_is_announced_again_after_the_repeat_interval(host):
    before = len(calls(host))
    age = (f"/usr/bin/python3 -c \"import json;p='{STATE}';s=json.load(open(p));"
           "s['app_serving']['notified_at']-=2*3600;json.dump(s,open(p,'w'))\"")
    outcome = run_check(host, before=age)
    assert outcome.rc == 1
    new = calls(host)[before:]
    assert len(new) == 1
    assert [r["check"] for r in new[0]["repeats"]] == ["app_serving"]
    assert "STILL FAILING" in new[0]["text"]
    run_check(host)
    assert len(calls(host)) == before + 1


def test_starting_the_slot_again_sends_one_recovery_call(host):
    before = len(calls(host))
    host.run_expect([0], "docker start erp-app-blue")
    wait_ready(host)
    outcome = run_check(host)
    assert outcome.rc == 0, outcome.stdout + outcome.stderr
    assert metric(host, "erp_healthcheck_check_ok", "app_serving") == 1
    new = calls(host)[before:]
    assert len(new) == 1
    assert new[0]["status"] == "ok"
    assert "RECOVERED app_serving" in new[0]["text"]
    run_check(host)
    assert len(calls(host)) == before + 1


def test_a_crashed_slot_fails_its_container_check(host):
    before = len(calls(host))
    host.run_expect([0], "docker update --restart=no erp-app-blue && docker kill erp-app-blue")
    try:
        run_check(host)
        assert metric(host, "erp_healthcheck_check_ok", "app_blue_container") == 0
        new = calls(host)[before:]
        assert len(new) == 1
        assert {c["check"] for c in new[0]["changes"]} == {"app_blue_container", "app_blue_live", "app_blue_ready",
                                                            "app_blue_database", "app_serving"}
    finally:
        host.run("docker update --restart=unless-stopped erp-app-blue && docker start erp-app-blue")
    wait_ready(host)
    run_check(host)
    assert metric(host, "erp_healthcheck_check_ok", "app_serving") == 1


def test_cron_runs_the_check_every_minute(host):
    def last_run():
        text = host.file(METRICS).content_string
        return float(re.search(r"^erp_healthcheck_last_run_timestamp_seconds (\S+)$", text, re.MULTILINE).group(1))

    started = time.time()
    first = last_run()
    while time.time() - started < 75:
        if last_run() > first:
            return
        time.sleep(5)
    raise AssertionError("cron did not run the check within 75 s")


def test_metrics_written_on_the_host_and_the_apps_own_metrics_pass_promtool(host):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's 'prometheus' package (make setup does)"
    scraped = host.check_output("/usr/bin/python3 -c 'import urllib.request;"
                                "print(urllib.request.urlopen(\"http://127.0.0.1:8001/health/metrics\").read().decode())'")
    for text in (host.file(METRICS).content_string, scraped + "\n"):
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                                 timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
