"""``erpctl rollout``: stage after stage through deploy.yml, a bake window with canary
analysis after each, and on any failure (or Ctrl-C) rollback.yml for every host touched."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from erpctl import analysis, canary, contract, lock
from erpctl.durations import format_duration
from erpctl.errors import ErpctlError, ExitCode
from erpctl.inventory import Inventory, app_base_url, lb_base_url
from erpctl.progress import redact_variables
from erpctl.release import HostRelease, read_releases, releases_from_stats
from erpctl.session import Session
from erpctl.stages import DEFAULT_STAGES, Stage, plan_stages, stages_text


@dataclass
class RolloutOptions:
    env: str
    version: str
    # --stages text; None: the environment's erp_rollout_batches, the batches deploy.yml uses.
    stages: str | None
    bake: float
    interval: float
    yes: bool = False
    dry_run: bool = False
    rollback_on_interrupt: bool = True
    thresholds: analysis.Thresholds = field(default_factory=analysis.Thresholds)
    extra_vars: dict = field(default_factory=dict)
    message: str | None = None


class StageCanceller:
    """cancel_callback for a stage: after Ctrl-C, stop at the next task boundary (the running
    task finishes on its hosts); a second Ctrl-C stops at once."""

    def __init__(self, session: Session, forward):
        self.session = session
        self.forward = forward
        self.boundary = False

    def event(self, event: dict) -> bool:
        if self.session.interrupt.requested and event.get("event") in ("playbook_on_task_start",
                                                                       "playbook_on_play_start",
                                                                       "playbook_on_stats"):
            self.boundary = True
        return self.forward(event)

    def cancel(self) -> bool:
        count = self.session.interrupt.count
        return count >= 2 or (count >= 1 and self.boundary)


def _run_label(stage: Stage, total: int) -> str:
    return f"stage {stage.number}/{total} {stage.name}"


def _plan_lines(stages: list[Stage], before: dict[str, HostRelease], opts: RolloutOptions) -> list[str]:
    lines = [f"plan: {opts.env} -> {opts.version}, {len(stages)} stage(s), bake {format_duration(opts.bake)} "
             "after each"]
    for stage in stages:
        hosts = ", ".join(f"{host} ({before[host].version or 'unknown'} -> {opts.version})" for host in stage.hosts)
        lines.append(f"  stage {stage.number} {stage.name}: {hosts}")
    return lines


class Rollout:
    def __init__(self, session: Session, inventory: Inventory, opts: RolloutOptions):
        self.s = session
        self.inv = inventory
        self.opts = opts
        self.report = session.report
        self.touched: list[str] = []
        self.before: dict[str, HostRelease] = {}
        self.last_old: analysis.GroupFigures | None = None
        self.outcome = "refused"
        self.message: str | None = None
        self.after: dict[str, HostRelease] = {}
        self.lb_hosts: list[str] = []
        # The run id of the deploy lock this rollout holds: its stages and its rollback work under it.
        self.lock_id: str | None = None

    # -- the steps
    def run(self) -> ExitCode:
        opts = self.opts
        self.inv.check_env(opts.env)
        app_hosts = self.inv.env_hosts(opts.env, contract.APP_GROUP)
        self.lb_hosts = self.inv.env_hosts(opts.env, contract.LB_GROUP)
        stages = plan_stages(app_hosts, self._stage_spec(app_hosts))
        if opts.bake > 0:
            # Every URL the bake will need, checked before anything changes.
            for host in app_hosts:
                app_base_url(host, self.inv.hostvars(host), next(iter(contract.DEFAULT_SLOT_PORTS)))
            for host in self.lb_hosts:
                lb_base_url(host, self.inv.hostvars(host))
        # The two reads before the plan are independent runs (a few seconds each, mostly
        # ansible's start-up): side by side, erpctl's own share of a rollout stays small.
        lock.require_lock_host(self.inv, opts.env)
        with ThreadPoolExecutor(max_workers=2) as pool:
            checked = pool.submit(lock.check, self.s.runner, opts.env, opts.version, self.s.run_dir,
                                  opts.extra_vars)
            self.before = read_releases(self.s.runner, opts.env, app_hosts, self.s.run_dir, "releases-before")
            lock_check = checked.result()
        down = [f"{host} ({rel.error})" for host, rel in self.before.items() if rel.unreachable]
        if down:
            raise ErpctlError(f"unreachable before the rollout, nothing changed: {'; '.join(down)}")
        self.report["plan"] = {
            "stages": [{"number": st.number, "name": st.name, "hosts": list(st.hosts)} for st in stages],
            "current": {host: (rel.current or {"error": rel.error}) for host, rel in self.before.items()},
            "target_version": opts.version,
            "bake_seconds": opts.bake,
            "thresholds": asdict(opts.thresholds),
        }
        for line in _plan_lines(stages, self.before, opts):
            self.s.progress.line(line)
        self.report["lock_check"] = {"host": lock_check.host, "holder": lock_check.holder, "error": lock_check.error}
        if lock_check.error:
            raise ErpctlError(f"refused before anything changed: {lock_check.error}" + self._lock_hint(lock_check))
        if opts.dry_run:
            return self._finish("dry-run", ExitCode.OK, "dry run: nothing changed")
        self.s.confirm(f"Roll out {opts.version} to {opts.env}?", opts.yes)

        run_id = lock.new_run_id()
        taken = lock.acquire(self.s.runner, opts.env, opts.version, opts.message, run_id, self.s.run_dir,
                             opts.extra_vars)
        if taken.error:
            raise ErpctlError(f"deploy lock of {opts.env} not taken: {taken.error}" + self._lock_hint(taken))
        self.report["lock"] = {"host": taken.host, "run": run_id}
        self.lock_id = run_id
        try:
            return self._stages(stages, run_id)
        finally:
            if not lock.release_own(self.s.runner, opts.env, run_id, self.s.run_dir, opts.extra_vars):
                self.s.progress.line(f"warning: could not release the deploy lock of {opts.env}; "
                                     "'erpctl lock release' removes it")

    @staticmethod
    def _lock_hint(state: lock.LockState) -> str:
        return "; 'erpctl lock release' breaks a stale lock" if state.held else ""

    def _stage_spec(self, app_hosts: list[str]) -> str:
        if self.opts.stages is not None:
            return self.opts.stages
        configured = self.inv.hostvars(app_hosts[0]).get(contract.VAR_ROLLOUT_BATCHES) if app_hosts else None
        return DEFAULT_STAGES if configured in (None, "", []) else stages_text(configured)

    def _stages(self, stages: list[Stage], lock_id: str) -> ExitCode:
        results = self.report.setdefault("stages", [])
        for stage in stages:
            label = _run_label(stage, len(stages))
            if self.s.interrupt.requested and not self.touched:
                return self._finish("interrupted", ExitCode.INTERRUPTED, "interrupted before the first stage; "
                                    "nothing changed")
            self.s.progress.set_phase(label, f"deploying {self.opts.version} to {', '.join(stage.hosts)}")
            self.touched.extend(host for host in stage.hosts if host not in self.touched)
            record = {"number": stage.number, "name": stage.name, "hosts": list(stage.hosts)}
            results.append(record)
            try:
                failure, handed_back = self._deploy(stage, label, lock_id, record)
                if self.s.interrupt.requested:
                    return self._interrupted(record)
                if failure is None:
                    failure = self._verify(stage, record, handed_back)
                if failure is None:
                    failure = self._bake(stage, label, record)
                    if self.s.interrupt.requested:
                        return self._interrupted(record)
            except ErpctlError as exc:
                # Hosts may already run the new release: a problem now is a failed stage, not a refusal.
                failure = exc.message
            except Exception as exc:  # whatever broke, the touched hosts go back
                failure = f"internal error: {type(exc).__name__}: {exc}"
            if failure is not None:
                record["outcome"] = "failed"
                self.report["failure"] = failure
                self.s.progress.line(f"{label} failed: {failure}")
                return self._rollback_after(failure, ExitCode.ROLLED_BACK)
            record["outcome"] = "passed"
        return self._finish("succeeded", ExitCode.OK, f"{self.opts.env} is on {self.opts.version}")

    def _extravars(self, stage: Stage, lock_id: str) -> dict:
        extravars = dict(self.opts.extra_vars)
        extravars.update({contract.VAR_VERSION: self.opts.version, contract.VAR_ROLLOUT_HOSTS: list(stage.hosts),
                          contract.VAR_ROLLOUT_BATCHES: ["100%"], contract.VAR_ROLLOUT_STAGE: stage.number,
                          contract.VAR_LOCK_ID: lock_id})
        return extravars

    def _deploy(self, stage: Stage, label: str, lock_id: str, record: dict) -> tuple[str | None, dict]:
        """deploy.yml for the stage: (why it failed or None, what it handed back with set_stats)."""
        canceller = StageCanceller(self.s, self.s.progress.event)
        started = self.s.clock()
        extravars = self._extravars(stage, lock_id)
        record["extravars"] = redact_variables(extravars)
        run = self.s.runner.playbook(playbook=contract.DEPLOY_PLAYBOOK, limit=self.opts.env,
                                     extravars=extravars, private_data_dir=self.s.run_dir,
                                     ident=f"stage-{stage.number}-deploy", event_handler=canceller.event,
                                     cancel_callback=canceller.cancel)
        record["deploy"] = {"status": run.status, "rc": run.rc, "failures": run.failures(),
                            "artifacts": run.artifacts, "seconds": round(self.s.clock() - started, 3)}
        if run.ok:
            return None, run.artifact_data
        if run.status == "canceled":
            return "deploy canceled", run.artifact_data
        detail = "; ".join(run.failures()) or f"runner status {run.status}, rc {run.rc} (see {run.artifacts}/stdout)"
        return f"deploy.yml failed: {detail}", run.artifact_data

    def _verify(self, stage: Stage, record: dict, handed_back: dict) -> str | None:
        """The switched hosts must be on the new version in their release state, as deploy.yml
        wrote it to each host's release.json and handed it back (no second read of the hosts:
        that would cost a run of its own per stage)."""
        app_hosts = self.inv.env_hosts(self.opts.env, contract.APP_GROUP)
        self.after = releases_from_stats(handed_back, app_hosts)
        wrong = []
        for host in stage.hosts:
            release = self.after[host]
            if release.error:
                wrong.append(f"{host}: {release.error}")
            elif release.version != self.opts.version:
                wrong.append(f"{host} reports {release.version}")
        record["verify"] = {host: (self.after[host].current or {"error": self.after[host].error})
                            for host in stage.hosts}
        return f"after deploy.yml: {'; '.join(wrong)}" if wrong else None

    def _targets(self) -> tuple[list[canary.Target], list[str]]:
        targets, notes = [], []
        for host in self.inv.env_hosts(self.opts.env, contract.APP_GROUP):
            switched = host in self.touched
            release = (self.after if switched else self.before).get(host)
            if release is None or not release.slot:
                notes.append(f"{host}: slot unknown, not probed")
                continue
            hostvars = self.inv.hostvars(host)
            targets.append(canary.Target(host, app_base_url(host, hostvars, release.slot),
                                         "new" if switched else "old",
                                         self.opts.version if switched else None))
        for host in self.lb_hosts:
            targets.append(canary.Target(host, lb_base_url(host, self.inv.hostvars(host)), "lb"))
        return targets, notes

    def _bake(self, stage: Stage, label: str, record: dict) -> str | None:
        thresholds = self.opts.thresholds
        if self.opts.bake <= 0:
            record["analysis"] = {"decision": {"verdict": analysis.SKIPPED, "proceed": True,
                                               "reasons": [], "notes": ["--bake 0: no analysis"]}}
            return None
        targets, notes = self._targets()
        if not any(target.group == "new" for target in targets):
            return "no switched host can be probed: " + "; ".join(notes)
        self.s.progress.set_phase(label, f"baking {format_duration(self.opts.bake)}, watching "
                                         f"{', '.join(t.host for t in targets)}")

        def on_poll(polls, elapsed, observation):
            unhealthy = sorted(observation.health_failures)
            self.s.progress.status(f"{label}: bake {format_duration(elapsed)}/{format_duration(self.opts.bake)}, "
                                   f"{polls} poll(s)" + (f", unhealthy: {', '.join(unhealthy)}" if unhealthy else ""))

        observation = canary.observe(targets, self.opts.bake, self.opts.interval, self.s.fetch, thresholds,
                                     clock=self.s.clock, sleep=self.s.sleep,
                                     should_stop=lambda: self.s.interrupt.requested, on_poll=on_poll)
        new, old, decision = canary.analyse(targets, observation, thresholds, self.last_old)
        if old is not None and old.requests >= thresholds.min_requests:
            self.last_old = old
        decision.notes.extend(notes)
        record["analysis"] = {"targets": [asdict(t) for t in targets], "polls": observation.polls,
                              "seconds": round(observation.elapsed, 3), "stopped": observation.stopped,
                              "new": new.as_dict(), "old": old.as_dict() if old else None,
                              "lb_failures": observation.lb_failures[:10], "decision": decision.as_dict()}
        self.s.progress.line(f"{label}: analysis {decision.verdict}: requests {new.requests:g}, error rate "
                             f"{analysis._pct(new.error_rate)}, p95 {analysis._ms(new.latency_p95)}"
                             + (f" (old: {analysis._pct(old.error_rate)}, {analysis._ms(old.latency_p95)})"
                                if old else ""))
        for note in decision.notes:
            self.s.progress.line(f"  note: {note}")
        if decision.proceed or self.s.interrupt.requested:
            return None
        return "canary analysis failed: " + "; ".join(decision.reasons)

    # -- endings
    def _interrupted(self, record: dict) -> ExitCode:
        record["outcome"] = "interrupted"
        self.report["failure"] = "interrupted (Ctrl-C)"
        if not self.opts.rollback_on_interrupt:
            hosts = ", ".join(self.touched)
            return self._finish("interrupted", ExitCode.INTERRUPTED,
                                f"interrupted; no rollback (--no-rollback-on-interrupt): {hosts} may run "
                                f"{self.opts.version}")
        self.s.progress.line(f"interrupted: rolling back {', '.join(self.touched)} (Ctrl-C again abandons the "
                             "rollback)")
        return self._rollback_after("interrupted (Ctrl-C)", ExitCode.INTERRUPTED)

    def _rollback_after(self, why: str, success_code: ExitCode) -> ExitCode:
        ok, detail = rollback_hosts(self.s, self.opts.env, self.touched, self.before, self.report,
                                    lock_id=self.lock_id)
        if ok:
            outcome = "interrupted" if success_code == ExitCode.INTERRUPTED else "rolled-back"
            return self._finish(outcome, success_code,
                                f"{why}; rolled back {', '.join(self.touched)}")
        return self._finish("failed", ExitCode.FAILED, f"{why}; ROLLBACK FAILED: {detail}")

    def _finish(self, outcome: str, code: ExitCode, message: str) -> ExitCode:
        self.outcome = outcome
        self.message = message
        return code


def rollback_hosts(session: Session, env: str, hosts: list[str], before: dict[str, HostRelease],
                   report: dict, lock_id: str | None = None) -> tuple[bool, str]:
    """rollback.yml for ``hosts``, one run per release they were on before (erp_version given
    so a host that was never switched stays where it is), then check what the hosts report.
    ``lock_id``: the deploy lock the caller holds (rollback.yml then works under it instead
    of taking the lock itself)."""
    groups: dict[str | None, list[str]] = {}
    for host in hosts:
        release = before.get(host)
        groups.setdefault(release.version if release else None, []).append(host)
    records = report.setdefault("rollback", [])
    start_count = session.interrupt.count
    problems = []
    for index, (version, group_hosts) in enumerate(groups.items(), start=1):
        if session.interrupt.count > start_count:
            break
        session.progress.set_phase(f"rollback {index}/{len(groups)}", f"{', '.join(group_hosts)} -> "
                                   f"{version or 'previous good release (from history)'}")
        extravars = {contract.VAR_ROLLBACK_HOSTS: group_hosts}
        if lock_id:
            extravars[contract.VAR_LOCK_ID] = lock_id
        if version:
            extravars[contract.VAR_VERSION] = version
        run = session.runner.playbook(playbook=contract.ROLLBACK_PLAYBOOK, limit=env, extravars=extravars,
                                      private_data_dir=session.run_dir, ident=f"rollback-{index}",
                                      event_handler=session.progress.event,
                                      cancel_callback=lambda: session.interrupt.count > start_count)
        records.append({"hosts": group_hosts, "version": version, "status": run.status, "rc": run.rc,
                        "failures": run.failures(), "artifacts": run.artifacts})
        if not run.ok:
            problems.append("; ".join(run.failures()) or f"rollback.yml {run.status} (rc {run.rc})")
    if session.interrupt.count > start_count:
        problems.append("rollback abandoned (Ctrl-C)")
    if problems:
        return False, "; ".join(problems)
    app_hosts = list(before) or hosts
    after = read_releases(session.runner, env, app_hosts, session.run_dir, "rollback-verify")
    wrong = []
    for host in hosts:
        expected = before.get(host)
        if expected is None or expected.version is None:
            continue  # nothing known to compare with: rollback.yml chose from the host's history
        got = after.get(host)
        if got is None or got.error or got.version != expected.version:
            wrong.append(f"{host} reports {got.error if got and got.error else (got.version if got else 'nothing')}, "
                         f"expected {expected.version}")
    if records:
        records[-1]["verify"] = {host: (after[host].current or {"error": after[host].error})
                                 for host in hosts if host in after}
    if wrong:
        return False, "after rollback.yml: " + "; ".join(wrong)
    return True, ""
