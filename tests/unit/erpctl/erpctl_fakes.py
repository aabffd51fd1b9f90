# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""A fake environment for erpctl: a runner that simulates deploy.yml, rollback.yml and the
ad hoc modules erpctl uses, and an HTTP fetch answering /health and /health/metrics the way
the reference app would for the release each slot runs."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field

from ansible_collections.erp.ops.plugins.module_utils._health import HttpResponse
from erpctl.runner import HostOutcome, RunResult

from erpctl import contract

BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf")
OTHER_SLOT = {"blue": "green", "green": "blue"}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


@dataclass
class FakeHost:
    name: str
    address: str
    version: str = "1.0.0"
    slot: str = "blue"
    history: list = field(default_factory=list)
    lock: str | None = None  # the deploy lock file's text (lb1)
    release_file: bool = True
    # what the slot that is not current runs (the warm old release after a switch)
    other: str | None = None

    def document(self):
        return {"current": {"version": self.version, "image": f"registry:5000/erp-app@sha256:{self.version}",
                            "slot": self.slot, "time": "2026-11-27T10:00:00Z", "by": "ops", "rollout": "r0"},
                "history": self.history}


class FakeLab:
    """Two (or more) app hosts, one LB, one DB; inventory and behaviour of the playbooks."""

    def __init__(self, app_hosts=2, env="lab", clock=None, requests_per_poll=100):
        self.env = env
        self.clock = clock or FakeClock()
        self.apps = {f"app{i}": FakeHost(f"app{i}", f"10.0.0.{10 + i}") for i in range(1, app_hosts + 1)}
        self.lb = FakeHost("lb1", "10.0.0.2")  # holds the deploy lock
        self.calls = []  # (kind, name, limit/pattern, extravars/args)
        self.fail_deploy = {}  # stage host -> message
        self.fail_rollback = False
        self.deploy_reports_wrong_version = False
        self.stats_missing = False  # deploy.yml hands back no release states
        self.interrupt_on_stage = None  # (stage number, Interrupt): press Ctrl-C during that deploy
        self.interrupt_presses = 1
        self.unreachable = set()
        self.requests_per_poll = requests_per_poll
        self.lb_unhealthy = False
        self.fetches = {}
        self.extra_hostvars = {}
        self.deploy_count = 0
        self.fetch_explodes = False
        self.interrupt_on_rollback = None  # an Interrupt: press Ctrl-C during rollback.yml
        self.registry = None  # versions the registry has (None: every version)
        self.registry_down = False
        self.serves_instead = {}  # host -> the version its /health reports whatever runs

    # -- inventory -------------------------------------------------------------------
    def inventory_dict(self):
        hostvars = {name: {"erp_internal_address": host.address, **self.extra_hostvars.get(name, {})}
                    for name, host in self.apps.items()}
        hostvars["lb1"] = {"erp_internal_address": "10.0.0.2"}
        hostvars["db1"] = {"erp_internal_address": "10.0.0.3"}
        return {"_meta": {"hostvars": hostvars}, "all": {"children": ["ungrouped", self.env]},
                "erp_app": {"hosts": list(self.apps)}, "erp_lb": {"hosts": ["lb1"]}, "erp_db": {"hosts": ["db1"]},
                self.env: {"children": ["erp_lb", "erp_db", "erp_app"]}}


class FakeRunner:
    def __init__(self, lab: FakeLab):
        self.lab = lab

    def inventory(self, sources):
        self.lab.calls.append(("inventory", None, None, None))
        return self.lab.inventory_dict()

    # -- playbooks -------------------------------------------------------------------
    def _emit(self, handler, cancel, events):
        for event in events:
            if handler is not None:
                handler(event)
            if cancel is not None and cancel():
                return True
        return False

    def playbook(self, *, playbook, limit, extravars, private_data_dir, ident, event_handler=None,
                 cancel_callback=None):
        lab = self.lab
        lab.calls.append(("playbook", playbook, limit, json.loads(json.dumps(extravars))))
        hosts = {}
        if playbook == contract.DEPLOY_PLAYBOOK:
            targets = extravars[contract.VAR_ROLLOUT_HOSTS]
            lab.deploy_count += 1
            task = {"event": "playbook_on_task_start", "event_data": {"task": "Start the new slot"}}
            if lab.interrupt_on_stage and lab.interrupt_on_stage[0] == lab.deploy_count:
                for _ in range(lab.interrupt_presses):
                    lab.interrupt_on_stage[1].press()
            canceled = self._emit(event_handler, cancel_callback, [task])
            for host in targets:
                app = lab.apps[host]
                if host in lab.fail_deploy:
                    message = lab.fail_deploy[host]
                    self._emit(event_handler, cancel_callback, [
                        {"event": "runner_on_failed", "event_data": {"host": host, "task": "Gate on health",
                                                                     "res": {"msg": message}}}])
                    hosts[host] = HostOutcome("failed", {"msg": message}, "Gate on health", message)
                    # like deploy.yml's rescue: the failing host went back to its old slot
                    continue
                app.other, app.version = app.version, extravars[contract.VAR_VERSION]
                if lab.deploy_reports_wrong_version:
                    app.version = app.other
                app.slot = OTHER_SLOT[app.slot]
                app.history.append({"version": app.version, "slot": app.slot, "outcome": "deployed",
                                    "time": f"2026-11-27T12:00:0{lab.deploy_count}Z"})
                hosts[host] = HostOutcome("ok", {"changed": True}, "Start the new slot")
                canceled = self._emit(event_handler, cancel_callback, [
                    {"event": "runner_on_ok", "event_data": {"host": host, "task": "Start the new slot",
                                                             "res": {"changed": True}}}]) or canceled
            # deploy.yml's set_stats: every app host's release state as written in this run
            handed_back = {contract.STATS_RELEASE_STATES: {name: app.document() for name, app in lab.apps.items()
                                                           if app.release_file and not lab.stats_missing}}
            stats = {"event": "playbook_on_stats", "event_data": {"artifact_data": handed_back}}
            canceled = self._emit(event_handler, cancel_callback, [stats]) or canceled
            status = "canceled" if canceled else ("failed" if any(o.status != "ok" for o in hosts.values())
                                                  else "successful")
            return RunResult(status, 1 if status != "successful" else 0, hosts, f"{private_data_dir}/{ident}",
                             handed_back)
        if playbook == contract.ROLLBACK_PLAYBOOK:
            refused = self._lock_refusal(extravars, private_data_dir, ident)
            if refused is not None:
                return refused
            if lab.interrupt_on_rollback is not None:
                lab.interrupt_on_rollback.press()
                if cancel_callback():
                    return RunResult("canceled", 254, {}, f"{private_data_dir}/{ident}")
            for host in extravars[contract.VAR_ROLLBACK_HOSTS]:
                app = lab.apps[host]
                if lab.fail_rollback:
                    hosts[host] = HostOutcome("failed", {}, "Switch back", "old slot did not become ready")
                    continue
                wanted = extravars.get(contract.VAR_VERSION) or app.other or app.version
                if app.version != wanted:
                    app.slot = OTHER_SLOT[app.slot]
                    app.version, app.other = wanted, app.version
                hosts[host] = HostOutcome("ok", {"changed": True}, "Switch back")
            self._emit(event_handler, None, [{"event": "playbook_on_task_start",
                                              "event_data": {"task": "Switch back"}}])
            status = "failed" if lab.fail_rollback else "successful"
            return RunResult(status, 2 if lab.fail_rollback else 0, hosts, f"{private_data_dir}/{ident}")
        if playbook == contract.LOCK_PLAYBOOK:
            return self._lock_playbook(extravars, private_data_dir, ident)
        if playbook == contract.BACKUP_PLAYBOOK:
            return RunResult("successful", 0, {"db1": HostOutcome("ok")}, f"{private_data_dir}/{ident}")
        raise AssertionError(f"unexpected playbook {playbook}")

    def _lock_refusal(self, extravars, private_data_dir, ident):
        """rollback.yml's lock check: refused while a run other than erp_lock_id's holds it."""
        if self.lab.lb.lock is None:
            return None
        holder = json.loads(self.lab.lb.lock)
        if holder.get("run") == extravars.get(contract.VAR_LOCK_ID):
            return None
        message = f"Deploy lock of lab held by {holder.get('by')} since {holder.get('time')}"
        return RunResult("failed", 2, {"lb1": HostOutcome("failed", {"msg": message}, "Refuse", message)},
                         f"{private_data_dir}/{ident}")

    def _lock_playbook(self, extravars, private_data_dir, ident):
        """lock.yml as the erp_deploy role's lock_manage runs it: the registry asked from the
        first app host (check, acquire with erp_version), then the lock on lb1."""
        lab = self.lab
        action = extravars[contract.VAR_LOCK_ACTION]
        version = extravars.get(contract.VAR_VERSION)
        artifacts = f"{private_data_dir}/{ident}"

        def failed(host, message, handed_back=None):
            return RunResult("failed", 2, {host: HostOutcome("failed", {"msg": message}, "Refuse", message)},
                             artifacts, handed_back or {})

        if action in ("check", "acquire") and version:
            if lab.registry_down:
                return failed("app1", f"registry:5000/erp-app:{version} is unknown: the registry did not answer "
                                      "(Status code was -1 and not [200, 401, 404]: Request failed: <urlopen error "
                                      "[Errno 111] Connection refused>) (http://registry:5000, asked from app1); "
                                      "nothing changed")
            if lab.registry is not None and version not in lab.registry:
                return failed("app1", f"registry:5000/erp-app:{version} is not in the registry "
                                      "(http://registry:5000, asked from app1); nothing changed")
        if "lb1" in lab.unreachable:
            return RunResult("failed", 4, {"lb1": HostOutcome("unreachable", {}, "Read the deploy lock",
                                                              "ssh: connect to host: Connection refused")},
                             artifacts)
        holder = json.loads(lab.lb.lock) if lab.lb.lock is not None else None
        changed = False
        if action in ("check", "acquire") and holder is not None:
            return failed("lb1", f"Deploy lock held by {holder.get('by')} since {holder.get('time')} (version "
                                 f"{holder.get('version')}: {holder.get('message')}) on lb1; wait, or break a stale "
                                 "lock", {contract.STATS_LOCK: {"host": "lb1", "action": action, "holder": holder,
                                                                "changed": False}})
        if action == "acquire":
            lab.lb.lock = json.dumps({"by": "ops@ctl", "time": "2026-11-27T10:00:00Z", "version": version or "",
                                      "message": extravars.get(contract.VAR_DEPLOY_MESSAGE, ""),
                                      "run": extravars.get(contract.VAR_LOCK_RUN) or "20261127T100000Z-1",
                                      "controller": "ctl", "pid": int(extravars.get(contract.VAR_LOCK_PID) or 0)})
            changed = True
        if action == "release" and holder is not None:
            run = extravars.get(contract.VAR_LOCK_RUN)
            if not run or holder.get("run") == run:
                lab.lb.lock = None
                changed = True
        handed_back = {contract.STATS_LOCK: {"host": "lb1", "action": action, "holder": holder, "changed": changed}}
        return RunResult("successful", 0, {"lb1": HostOutcome("ok", {}, "Show the lock")}, artifacts, handed_back)

    # -- ad hoc ----------------------------------------------------------------------
    def adhoc(self, *, module, module_args, host_pattern, private_data_dir, ident, become=True):
        lab = self.lab
        lab.calls.append(("adhoc", module, host_pattern, module_args))
        if host_pattern == f"{lab.env}:&{contract.APP_GROUP}":
            targets = lab.apps
        else:
            assert host_pattern in (*lab.apps, "lb1"), host_pattern
            targets = {host_pattern: lab.apps.get(host_pattern) or lab.lb}
        hosts = {}
        for name, app in targets.items():
            if name in lab.unreachable:
                hosts[name] = HostOutcome("unreachable", {}, module, "ssh: connect to host: Connection refused")
                continue
            hosts[name] = self._module(app, module, module_args)
        status = "successful" if all(o.status == "ok" for o in hosts.values()) else "failed"
        return RunResult(status, 0 if status == "successful" else 2, hosts, f"{private_data_dir}/{ident}")

    def _module(self, app, module, module_args):
        if module == "ansible.builtin.slurp":
            path = json.loads(module_args)["src"] if module_args.startswith("{") else module_args.split("=", 1)[1]
            assert path == contract.RELEASE_FILE, f"erpctl reads {path} itself: it must go through a playbook"
            if not app.release_file:
                return HostOutcome("failed", {}, module, f"file not found: {path}")
            content = json.dumps(app.document())
            return HostOutcome("ok", {"content": base64.b64encode(content.encode()).decode(), "encoding": "base64"})
        raise AssertionError(f"unexpected module {module}")


class FakeFetch:
    """Answers like the reference app: health by release, metrics growing with each scrape."""

    def __init__(self, lab: FakeLab):
        self.lab = lab
        self.scrapes = {}

    def _app_at(self, address, port):
        for app in self.lab.apps.values():
            if app.address == address:
                current_port = contract.DEFAULT_SLOT_PORTS[app.slot]
                if int(port) == current_port:
                    return app, app.version
                return app, app.other
        return None, None

    def __call__(self, url, timeout):
        if self.lab.fetch_explodes:
            raise RuntimeError("bug in the probe")
        match = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
        address, port, path = match.groups()
        if address == "10.0.0.2":
            status = 503 if self.lab.lb_unhealthy else 200
            body = {"status": "fail" if self.lab.lb_unhealthy else "pass"}
            return HttpResponse(status, "application/health+json", json.dumps(body).encode())
        app, version = self._app_at(address, port)
        if app is None or version is None or app.name in self.lab.unreachable:
            raise ConnectionRefusedError(111, "Connection refused")
        if path == contract.HEALTH_PATH:
            failing = "never-ready" in version
            shown = self.lab.serves_instead.get(app.name, version)
            body = {"status": "fail" if failing else "pass", "version": shown,
                    "checks": {"process:readiness": [{"status": "fail" if failing else "pass",
                                                      "output": "faulted" if failing else None}]}}
            return HttpResponse(503 if failing else 200, "application/health+json", json.dumps(body).encode())
        if path == contract.METRICS_PATH:
            key = (app.name, version)
            self.scrapes[key] = self.scrapes.get(key, 0) + 1
            return HttpResponse(200, "text/plain; version=0.0.4", metrics(version, self.scrapes[key],
                                                                          self.lab.requests_per_poll).encode())
        raise AssertionError(url)


def metrics(version, scrape, per_scrape):
    """Exposition text of an app after ``scrape`` scrapes of ``per_scrape`` user requests each."""
    total = scrape * per_scrape
    error_share = 0.3 if "errors-500" in version else 0.0
    errors = round(total * error_share)
    latency = 0.8 if "slow" in version else 0.02
    lines = [
        "# TYPE erp_http_requests_total counter",
        f'erp_http_requests_total{{method="GET",route="/api/invoices",status="200"}} {total - errors}',
        f'erp_http_requests_total{{method="GET",route="/health/ready",status="200"}} {scrape * 1000}',
    ]
    if errors:
        lines.append(f'erp_http_requests_total{{method="GET",route="/api/invoices",status="500"}} {errors}')
    lines.append("# TYPE erp_http_request_duration_seconds histogram")
    for bound in BUCKETS:
        count = total if bound == "+Inf" or float(bound) >= latency else 0
        lines.append(f'erp_http_request_duration_seconds_bucket{{route="/api/invoices",le="{bound}"}} {count}')
    lines.append(f'erp_http_request_duration_seconds_count{{route="/api/invoices"}} {total}')
    lines.append(f'erp_http_request_duration_seconds_sum{{route="/api/invoices"}} {total * latency}')
    lines.append(f'erp_build_info{{version="{version}",schema="0002"}} 1')
    # a crash-looping build restarts between scrapes: a new start time, counters from zero
    lines.append(f"erp_process_start_time_seconds {1000 + scrape if 'crashloop' in version else 1000}")
    return "\n".join(lines) + "\n"
