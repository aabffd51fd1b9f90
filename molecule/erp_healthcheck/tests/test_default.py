"""What a user of the health check sees on a host: metrics, journal entries, webhook calls.

The tests run in file order against one host whose release state names the blue slot as
live: it runs at first, is stopped, stays down past the repeat interval, comes back,
crashes, comes back; then a deploy's switch to the green slot and back raises no alarm.
Each run of the check takes the same flock as cron, so a cron run never interleaves with a
test's run; webhook calls are counted across runs, whichever made them. That cron runs the
check every minute is measured on the lab's hosts (tests/lab/test_health.py).
"""

import json
import re
import time

SCRIPT = "/usr/local/lib/erp-healthcheck/erp_healthcheck.py"
CONFIG = "/etc/erp/healthcheck.json"
LOCK = "/run/lock/erp-healthcheck.lock"
METRICS = "/var/lib/prometheus/node-exporter/erp_healthcheck.prom"
STATE = "/var/lib/erp-healthcheck/state.json"
CALLS = "/var/lib/hc-receiver/calls.jsonl"
RELEASE = "/var/lib/erp/release.json"
BLUE_SLOT_CHECKS = {"app_blue_container", "app_blue_live", "app_blue_ready", "app_blue_database", "app_serving"}


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
    for check in ("app_blue_container", "app_blue_live", "app_blue_ready", "app_blue_database", "app_serving",
                  "app_release_state", "db_container", "db_accepting", "db_writable", "disk:/", "memory"):
        assert metric(host, "erp_healthcheck_check_ok", check) == 1, check
    # the green slot is not live (and has no container): idle, not failing
    assert metric(host, "erp_healthcheck_check_idle", "app_green_container") == 1
    assert metric(host, "erp_healthcheck_check_ok", "app_green_container") is None
    assert metric(host, "erp_healthcheck_check_duration_seconds", "app_blue_ready") > 0
    assert host.file(METRICS).mode == 0o644
    leftovers = host.run("ls -A /var/lib/prometheus/node-exporter/").stdout.split()
    assert leftovers == ["erp_healthcheck.prom"]
    assert len(calls(host)) == before


def test_stopping_the_live_slot_flips_the_metric_and_calls_the_webhook_once(host):
    before = len(calls(host))
    # The release state names blue as live and no newer slot serves: stopping it is a failure
    # at once (the check's run is held until the stop is complete, under the lock).
    outcome = run_check(host, before="docker stop -t 15 erp-app-blue >/dev/null")
    assert outcome.rc == 1
    assert metric(host, "erp_healthcheck_check_ok", "app_serving") == 0
    assert metric(host, "erp_healthcheck_check_ok", "app_blue_container") == 0
    new = calls(host)[before:]
    assert len(new) == 1
    assert new[0]["status"] == "fail"
    assert {c["check"] for c in new[0]["changes"]} == BLUE_SLOT_CHECKS
    assert new[0]["text"].startswith("[molecule] ")
    assert ("FAILING app_blue_container: container erp-app-blue is exited (exit code 0), but the release state "
            "says slot blue is live") in new[0]["text"]
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
        assert {c["check"] for c in new[0]["changes"]} == BLUE_SLOT_CHECKS
        assert "exit code 137" in new[0]["text"]
    finally:
        host.run("docker update --restart=unless-stopped erp-app-blue && docker start erp-app-blue")
    wait_ready(host)
    run_check(host)
    assert metric(host, "erp_healthcheck_check_ok", "app_serving") == 1


GREEN = ("docker run -d --name erp-app-green --network erp --restart unless-stopped --stop-timeout 15 "
         "-p 127.0.0.1:8002:8000 -e ERP_DATABASE_URL=postgresql://erp:molecule-only-password@erp-db:5432/erp "
         "-e ERP_SECRET_KEY=molecule-only-secret erp-app:1.0.0")

# Stop the old slot as the erp_deploy role's switch entry point does (SIGTERM: readiness 503 while the
# app drains, then exit 0), running the check back to back until it has stopped, and once
# more after: every run under cron's lock, each exit code printed.
STOP_WHILE_CHECKING = """
docker stop -t 15 erp-app-OLD >/dev/null 2>&1 &
for i in $(seq 100); do
  /usr/bin/flock LOCK /usr/bin/python3 SCRIPT --config CONFIG; echo "rc=$?"
  [ "$(docker inspect -f '{{.State.Running}}' erp-app-OLD)" = true ] || break
  sleep 0.2
done
/usr/bin/flock LOCK /usr/bin/python3 SCRIPT --config CONFIG; echo "rc=$?"
wait
""".replace("LOCK", LOCK).replace("SCRIPT", SCRIPT).replace("CONFIG", CONFIG)


def record_live(host, slot):
    """What the erp_deploy role's switch entry point records once the load balancers send the
    new slot traffic, before the old slot stops (atomically, as the record module does)."""
    state = json.dumps({"current": {"version": "1.0.0", "slot": slot, "image": "erp-app:1.0.0"},
                        "previous": None, "history": []})
    host.run_expect([0], f"echo {quote(state)} > {RELEASE}.new && mv {RELEASE}.new {RELEASE}")


def test_switching_slots_as_a_deploy_does_raises_no_alarm(host):
    """The new slot booting, the switch recorded, the old slot draining and stopped: none of
    it fails a check or reaches the webhook, both ways."""
    before = len(calls(host))
    codes = []
    for old, new, port, start in (("blue", "green", 8002, GREEN), ("green", "blue", 8001,
                                                                   "docker start erp-app-blue")):
        host.run_expect([0], start)
        codes += [run_check(host).rc for _ in range(3)]  # the new slot boots
        wait_ready(host, port)
        record_live(host, new)
        codes.append(run_check(host).rc)
        stopping = host.run(STOP_WHILE_CHECKING.replace("OLD", old))
        codes += [int(code) for code in re.findall(r"^rc=(\d+)$", stopping.stdout, re.MULTILINE)]
        codes.append(run_check(host).rc)
        assert metric(host, "erp_healthcheck_check_ok", f"app_{new}_ready") == 1
        assert metric(host, "erp_healthcheck_check_idle", f"app_{old}_container") == 1
    assert len(codes) >= 12 and set(codes) == {0}, codes
    assert len(calls(host)) == before, calls(host)[before:]
