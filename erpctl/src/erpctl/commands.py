"""The commands other than rollout: status, history, rollback, lock, backup."""

from __future__ import annotations

from erpctl import contract, lock
from erpctl.errors import ErpctlError, ExitCode
from erpctl.inventory import Inventory, app_base_url
from erpctl.release import read_releases
from erpctl.rollout import rollback_hosts
from erpctl.session import Session


def _short(digest) -> str:
    """``registry:5000/erp-app@sha256:c20c40d8e502...`` -> ``sha256:c20c40d8e502``."""
    text = str(digest or "-").rpartition("@")[2]
    return text[:19] if text.startswith("sha256:") else text


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def _health(session: Session, host: str, hostvars: dict, slot: str | None) -> str:
    from erpctl._shared import health

    if not slot:
        return "unknown slot"
    try:
        url = app_base_url(host, hostvars, slot) + contract.HEALTH_PATH
    except ErpctlError as exc:
        return exc.message
    result = health.probe_endpoint({"name": host, "url": url}, session.fetch, timeout=3, clock=session.clock)
    if result["healthy"]:
        return result["status"] or "pass"
    return f"fail: {result['reason']}"


def status(session: Session, inv: Inventory, env: str) -> tuple[ExitCode, str]:
    inv.check_env(env)
    hosts = inv.env_hosts(env, contract.APP_GROUP)
    releases = read_releases(session.runner, env, hosts, session.run_dir, "status")
    rows = [["HOST", "SLOT", "VERSION", "DIGEST", "HEALTH", "LAST DEPLOY"]]
    report_hosts = {}
    for host in hosts:
        release = releases[host]
        if release.error:
            rows.append([host, "-", "-", "-", "-", release.error])
            report_hosts[host] = {"error": release.error}
            continue
        current = release.current
        health_text = _health(session, host, inv.hostvars(host), current.get("slot"))
        rows.append([host, current.get("slot") or "-", current.get("version") or "-", _short(current.get("image")),
                     health_text, f"{current.get('time') or '-'} by {current.get('by') or '-'}"])
        report_hosts[host] = {**current, "health": health_text}
    for line in _table(rows):
        _print(session, line)
    session.report["hosts"] = report_hosts
    versions = {r.version for r in releases.values() if not r.error}
    unreadable = [host for host, r in releases.items() if r.error]
    if unreadable:
        return ExitCode.FAILED, f"no release state from {', '.join(unreadable)}"
    return ExitCode.OK, f"{env}: {', '.join(sorted(versions))}"


def _print(session: Session, line: str) -> None:
    if not session.json_output:
        session.out.write(line + "\n")


def history(session: Session, inv: Inventory, env: str) -> tuple[ExitCode, str]:
    inv.check_env(env)
    hosts = inv.env_hosts(env, contract.APP_GROUP)
    releases = read_releases(session.runner, env, hosts, session.run_dir, "history")
    rows = [["TIME", "HOST", "VERSION", "OUTCOME", "BY", "SLOT", "DIGEST", "ROLLOUT"]]
    entries = []
    for host in hosts:
        release = releases[host]
        if release.error:
            continue
        for entry in release.history:
            entries.append({"host": host, **entry})
    entries.sort(key=lambda entry: str(entry.get("time") or ""), reverse=True)
    for entry in entries:
        rows.append([entry.get("time") or "-", entry["host"], entry.get("version") or "-",
                     entry.get("outcome") or "-", entry.get("by") or "-", entry.get("slot") or "-",
                     _short(entry.get("image")), entry.get("rollout") or "-"])
    for line in _table(rows):
        _print(session, line)
    session.report["history"] = entries
    errors = {host: r.error for host, r in releases.items() if r.error}
    session.report["errors"] = errors
    if errors:
        for host, error in errors.items():
            session.err.write(f"erpctl: {host}: {error}\n")
        return ExitCode.FAILED, f"no history from {', '.join(errors)}"
    return ExitCode.OK, f"{len(entries)} release(s) on {len(hosts)} host(s)"


def rollback(session: Session, inv: Inventory, env: str, to: str | None, only_hosts: list[str] | None,
             confirm) -> tuple[ExitCode, str]:
    inv.check_env(env)
    hosts = inv.env_hosts(env, contract.APP_GROUP)
    if only_hosts:
        unknown = [host for host in only_hosts if host not in hosts]
        if unknown:
            raise ErpctlError(f"--hosts: {', '.join(unknown)} not app hosts of {env} ({', '.join(hosts)})")
        hosts = [host for host in hosts if host in only_hosts]
    target = to or "the previous good release from each host's history"
    confirm(f"Roll back {', '.join(hosts)} of {env} to {target}?")
    session.report["rollback_target"] = to
    if to:
        # An explicit target: one run, and every host must report it afterwards.
        from erpctl.release import HostRelease

        before = {host: HostRelease(host, {"version": to}) for host in hosts}
    else:
        before = {}
    ok, detail = rollback_hosts(session, env, hosts, before, session.report)
    if ok:
        return ExitCode.OK, f"rolled back {', '.join(hosts)} to {target}"
    return ExitCode.FAILED, f"rollback failed: {detail}"


def lock_status(session: Session, inv: Inventory, env: str) -> tuple[ExitCode, str]:
    inv.check_env(env)
    lock.require_lock_host(inv, env)
    state = lock.status(session.runner, env, session.run_dir)
    session.report["lock"] = {"host": state.host, "holder": state.holder, "error": state.error}
    if state.error:
        return ExitCode.FAILED, f"deploy lock of {env} unreadable: {state.error}"
    text = f"deploy lock of {env}: {state.describe()}"
    _print(session, text)
    return ExitCode.OK, text


def lock_release(session: Session, inv: Inventory, env: str, confirm) -> tuple[ExitCode, str]:
    inv.check_env(env)
    lock.require_lock_host(inv, env)
    state = lock.status(session.runner, env, session.run_dir)
    if state.error:
        return ExitCode.FAILED, f"deploy lock of {env} unreadable: {state.error}"
    if not state.held:
        return ExitCode.OK, f"deploy lock of {env} is free"
    session.report["lock"] = {"host": state.host, "holder": state.holder}
    confirm(f"Break the deploy lock of {env} ({state.describe()})?")
    released = lock.force_release(session.runner, env, session.run_dir)
    if released.error is None and released.changed:
        return ExitCode.OK, f"deploy lock of {env} released (was {state.describe()})"
    return ExitCode.FAILED, f"deploy lock of {env} not released: {released.error or 'lock.yml changed nothing'}"


def backup(session: Session, inv: Inventory, env: str) -> tuple[ExitCode, str]:
    inv.check_env(env)
    session.progress.set_phase(f"backup of {env}", contract.BACKUP_PLAYBOOK)
    run = session.runner.playbook(playbook=contract.BACKUP_PLAYBOOK, limit=env, extravars={},
                                  private_data_dir=session.run_dir, ident="backup",
                                  event_handler=session.progress.event,
                                  cancel_callback=lambda: session.interrupt.count > 0)
    session.report["backup"] = {"status": run.status, "rc": run.rc, "failures": run.failures(),
                                "artifacts": run.artifacts}
    if session.interrupt.requested:
        return ExitCode.INTERRUPTED, "backup interrupted"
    if run.ok:
        return ExitCode.OK, f"backup of {env} done"
    return ExitCode.FAILED, "backup failed: " + ("; ".join(run.failures()) or f"runner status {run.status}")
