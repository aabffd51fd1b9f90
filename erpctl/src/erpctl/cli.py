"""``erpctl``: the command line. Bad input is one line on stderr and exit code 3, never a
traceback; every run that reaches the hosts leaves a report and an audit line."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path

import yaml

from erpctl import __version__
from erpctl.errors import EXIT_CODES_HELP, ErpctlError, ExitCode
from erpctl.repo import add_collections_path, find_repo

_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_ENV_RE = re.compile(r"[A-Za-z0-9_]+")


class _Parser(argparse.ArgumentParser):
    """argparse that raises ErpctlError (exit 3) instead of printing usage and exiting 2."""

    def error(self, message):
        raise ErpctlError(f"{self.prog}: {message} (see {self.prog} --help)")


# The runs' strategies erpctl offers (ANSIBLE_STRATEGY; docs/controller.md).
STRATEGIES = ("mitogen_linear", "linear")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", required=True, help="environment: an inventory group (lab, dev, staging, prod)")
    parser.add_argument("--json", action="store_true", help="print the JSON report on stdout (progress on stderr)")
    parser.add_argument("--inventory", help="inventory source (default: <repo>/inventories/<env>)")
    parser.add_argument("--vault-id", action="append", default=[], metavar="ID@SOURCE",
                        help="passed to ansible (a password file or client script; runner cannot prompt); repeatable")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="Ansible strategy of every run: mitogen_linear (ansible.cfg's default, Mitogen) or "
                             "linear (plain Ansible)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="erpctl", description="Staged ERP rollouts through ansible-runner, with canary analysis.",
                     epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"erpctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, help_text):
        return sub.add_parser(name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    rollout = command("rollout", "roll a release out stage by stage, with canary analysis and automatic rollback")
    _add_common(rollout)
    rollout.add_argument("--version", dest="release", required=True, metavar="VERSION", help="release to deploy")
    rollout.add_argument("--stages", default=None,
                         help="stages: canary (one host), host counts, percentages of all app hosts; the last "
                              "repeats (default: the environment's erp_rollout_batches, as deploy.yml batches; "
                              "canary,50%%,100%% where it sets none)")
    rollout.add_argument("--bake", default="60s", help="bake window after each stage, e.g. 60s, 2m, 1m30s; 0 skips "
                                                       "the analysis (default: %(default)s)")
    rollout.add_argument("--interval", default="5s", help="health poll interval during the bake (default: %(default)s)")
    rollout.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    rollout.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    rollout.add_argument("--no-rollback-on-interrupt", action="store_true",
                         help="on Ctrl-C stop without rolling back the touched hosts")
    rollout.add_argument("--message", help="why: recorded in the deploy lock and the report")
    rollout.add_argument("-e", "--extra-var", action="append", default=[], metavar="NAME=VALUE",
                         help="extra variable for deploy.yml (value parsed as YAML); repeatable")
    analysis = rollout.add_argument_group("canary analysis")
    analysis.add_argument("--error-rate-max", type=float, default=0.02,
                          help="highest 5xx share of user requests on the new release (default: %(default)s)")
    analysis.add_argument("--latency-p95-max-ratio", type=float, default=1.5,
                          help="highest p95 latency of the new release as a multiple of the old (default: %(default)s)")
    analysis.add_argument("--latency-p95-floor", type=float, default=0.05, metavar="SECONDS",
                          help="p95 below this is never judged (default: %(default)s)")
    analysis.add_argument("--min-requests", type=int, default=50,
                          help="user requests the new release must serve in the bake window to be judged "
                               "(default: %(default)s)")
    analysis.add_argument("--on-insufficient-traffic", choices=("fail", "pass"), default="fail",
                          help="below --min-requests: fail (roll back) or pass (proceed on health alone) "
                               "(default: %(default)s)")
    analysis.add_argument("--max-health-failures", type=int, default=0,
                          help="unhealthy polls of the new release or the LB tolerated (default: %(default)s)")

    rollback = command("rollback", "put app hosts back on the previous good release (or --to)")
    _add_common(rollback)
    rollback.add_argument("--to", help="release to return to (default: previous good release from history)")
    rollback.add_argument("--hosts", help="comma-separated app hosts (default: every app host of the environment)")
    rollback.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    status = command("status", "host, slot, version, digest, health and last deploy of every app host")
    _add_common(status)
    history = command("history", "release history from the hosts' own records")
    _add_common(history)
    backup = command("backup", "run playbooks/backup.yml for the environment")
    _add_common(backup)

    lock = command("lock", "show or break the environment's deploy lock")
    lock.add_argument("action", choices=("status", "release"))
    _add_common(lock)
    lock.add_argument("--yes", action="store_true", help="do not ask before breaking the lock")
    return parser


def _positive_duration(text: str, option: str, allow_zero: bool) -> float:
    from erpctl.durations import parse_duration

    seconds = parse_duration(text, option)
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ErpctlError(f"{option}: must be {'at least 0' if allow_zero else 'more than 0'}, got {text!r}")
    return seconds


def _extra_vars(items: list[str]) -> dict:
    from erpctl import contract

    reserved = {contract.VAR_VERSION, contract.VAR_ROLLOUT_HOSTS, contract.VAR_ROLLOUT_BATCHES,
                contract.VAR_ROLLOUT_STAGE, contract.VAR_LOCK_ID}
    extra = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ErpctlError(f"--extra-var: expected NAME=VALUE, got {item.split('=')[0]!r}=...")
        if name in reserved:
            raise ErpctlError(f"--extra-var: {name} is set by erpctl itself")
        try:
            extra[name] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            extra[name] = value
    return extra


def _rollout_options(args):
    from erpctl import analysis
    from erpctl.rollout import RolloutOptions
    from erpctl.stages import parse_stage_spec

    if not _VERSION_RE.fullmatch(args.release):
        raise ErpctlError(f"--version: {args.release!r} is not an image tag (letters, digits, '.', '_', '-')")
    if args.stages is not None:
        parse_stage_spec(args.stages)
    bake = _positive_duration(args.bake, "--bake", allow_zero=True)
    interval = _positive_duration(args.interval, "--interval", allow_zero=False)
    if not 0 <= args.error_rate_max <= 1:
        raise ErpctlError(f"--error-rate-max: must be within 0..1, got {args.error_rate_max}")
    if args.latency_p95_max_ratio < 1:
        raise ErpctlError(f"--latency-p95-max-ratio: must be at least 1, got {args.latency_p95_max_ratio}")
    if args.latency_p95_floor < 0:
        raise ErpctlError(f"--latency-p95-floor: must be at least 0, got {args.latency_p95_floor}")
    if args.min_requests < 0 or args.max_health_failures < 0:
        raise ErpctlError("--min-requests and --max-health-failures must be at least 0")
    thresholds = analysis.Thresholds(error_rate_max=args.error_rate_max,
                                     latency_p95_max_ratio=args.latency_p95_max_ratio,
                                     latency_p95_floor=args.latency_p95_floor, min_requests=args.min_requests,
                                     on_insufficient_traffic=args.on_insufficient_traffic,
                                     max_health_failures=args.max_health_failures)
    return RolloutOptions(env=args.env, version=args.release, stages=args.stages, bake=bake, interval=interval,
                          yes=args.yes, dry_run=args.dry_run, rollback_on_interrupt=not args.no_rollback_on_interrupt,
                          thresholds=thresholds, extra_vars=_extra_vars(args.extra_var), message=args.message)


def _make_confirm(session, yes: bool):
    return lambda question: session.confirm(question, yes)


def _check_playbooks(repo: Path, names: list[str]) -> None:
    missing = [name for name in names if not (repo / name).is_file()]
    if missing:
        raise ErpctlError(f"{', '.join(missing)} not found in {repo}")


def _dispatch(args, session, inventory_sources, opts):
    from erpctl import commands, contract
    from erpctl.inventory import load_inventory
    from erpctl.rollout import Rollout

    needed = {"rollout": [contract.DEPLOY_PLAYBOOK, contract.ROLLBACK_PLAYBOOK],
              "rollback": [contract.ROLLBACK_PLAYBOOK], "backup": [contract.BACKUP_PLAYBOOK]}
    _check_playbooks(session.repo, needed.get(args.command, []))
    inv = load_inventory(session.runner, inventory_sources)
    if args.command == "rollout":
        rollout = Rollout(session, inv, opts)
        code = rollout.run()
        return code, rollout.outcome, rollout.message
    if args.command == "rollback":
        hosts = [host.strip() for host in args.hosts.split(",") if host.strip()] if args.hosts else None
        code, message = commands.rollback(session, inv, args.env, args.to, hosts, _make_confirm(session, args.yes))
    elif args.command == "status":
        code, message = commands.status(session, inv, args.env)
    elif args.command == "history":
        code, message = commands.history(session, inv, args.env)
    elif args.command == "backup":
        code, message = commands.backup(session, inv, args.env)
    elif args.action == "status":
        code, message = commands.lock_status(session, inv, args.env)
    else:
        code, message = commands.lock_release(session, inv, args.env, _make_confirm(session, args.yes))
    outcome = {ExitCode.OK: "succeeded", ExitCode.INTERRUPTED: "interrupted"}.get(code, "failed")
    return code, outcome, message


def _outcome_line(code: ExitCode, message: str | None) -> str:
    word = {ExitCode.OK: "ok", ExitCode.ROLLED_BACK: "ROLLED BACK", ExitCode.FAILED: "FAILED",
            ExitCode.REFUSED: "refused", ExitCode.INTERRUPTED: "interrupted"}[code]
    return f"erpctl: {word}: {message}" if message else f"erpctl: {word}"


def main(argv: list[str] | None = None, *, runner=None, fetch=None, stdin=None, stdout=None, stderr=None,
         clock=None, sleep=None, interrupt=None, environ=None, cwd=None) -> int:
    """Entry point; every collaborator can be injected (tests pass a fake runner and fetch)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    environ = os.environ if environ is None else environ
    try:
        args = build_parser().parse_args(argv)
        repo = find_repo(environ, cwd)
        try:
            importable = importlib.util.find_spec("ansible_collections.erp.ops.plugins.module_utils") is not None
        except ModuleNotFoundError:
            importable = False
        if not importable:
            add_collections_path(repo)
        opts = _rollout_options(args) if args.command == "rollout" else None
        if getattr(args, "env", None) is not None and not _ENV_RE.fullmatch(args.env):
            raise ErpctlError(f"--env: {args.env!r} is not an inventory group name")
        for vault_id in args.vault_id:
            if vault_id.endswith("@prompt"):
                raise ErpctlError(f"--vault-id {vault_id}: ansible-runner cannot prompt; give a password file or a "
                                  "client script")
    except ErpctlError as exc:
        stderr.write(f"erpctl: {exc.message}\n")
        return int(exc.code)
    return _run(args, argv, repo, opts, runner=runner, fetch=fetch, stdin=stdin, stdout=stdout, stderr=stderr,
                clock=clock, sleep=sleep, interrupt=interrupt)


def _run(args, argv, repo, opts, *, runner, fetch, stdin, stdout, stderr, clock, sleep, interrupt) -> int:
    import time

    from erpctl import report as reports
    from erpctl.progress import Progress, secret_values
    from erpctl.session import Interrupt, Session

    command = args.command if args.command != "lock" else f"lock-{args.action}"
    started = reports.utc_now()
    run_dir = reports.new_run_dir(repo, command, started)
    record = reports.new_report(command, args.env, argv, run_dir, started)
    secrets = secret_values(opts.extra_vars) if opts else []
    if opts:
        record["version"] = opts.version
        record["extravars"] = dict(opts.extra_vars)
    progress_stream = stderr if args.json else stdout
    tty = bool(getattr(progress_stream, "isatty", lambda: False)()) and os.environ.get("TERM") != "dumb"
    clock = clock or time.monotonic
    progress = Progress(progress_stream, tty=tty, secrets=secrets, clock=clock)
    interrupt = interrupt or Interrupt()
    code, outcome, message = ExitCode.FAILED, "failed", None
    restore = None
    try:
        from erpctl.inventory import env_inventory_source

        source = env_inventory_source(repo, args.env, args.inventory)
        if runner is None:
            from erpctl.runner import AnsibleRunner

            runner = AnsibleRunner(repo, source, args.vault_id, strategy=args.strategy)
        if fetch is None:
            from erpctl._shared import health

            fetch = health.open_url_fetcher(use_proxy=False, http_agent=f"erpctl/{__version__}")
        session = Session(repo=repo, runner=runner, run_dir=run_dir, progress=progress, fetch=fetch, report=record,
                          started=started, inventory_sources=[source],
                          stdin=stdin, out=stdout, err=stderr, clock=clock, sleep=sleep, interrupt=interrupt,
                          secrets=secrets, json_output=args.json)
        if sleep is None and threading_main():
            restore = interrupt.install()
        code, outcome, message = _dispatch(args, session, session.inventory_sources, opts)
    except ErpctlError as exc:
        code, outcome, message = exc.code, "refused" if exc.code == ExitCode.REFUSED else "failed", exc.message
    except KeyboardInterrupt:
        code, outcome, message = ExitCode.INTERRUPTED, "interrupted", "interrupted (Ctrl-C)"
    except Exception as exc:
        (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        code, outcome = ExitCode.FAILED, "failed"
        message = f"internal error: {type(exc).__name__}: {exc} (traceback in {run_dir / 'error.txt'})"
    finally:
        if restore is not None:
            restore()
        progress.close()
    reports.finish_report(record, outcome, code, message, started)
    reports.write_report(run_dir, record, secrets)
    reports.append_audit(repo, record, secrets)
    if args.json:
        stdout.write(reports.render(record, secrets) + "\n")
    line = _outcome_line(ExitCode(code), message)
    stream = stderr if code != ExitCode.OK or args.json else stdout
    # status, history and lock status said it all in their table or line
    if code == ExitCode.OK and command in ("status", "history", "lock-status") and not args.json:
        line = None
    if line:
        from erpctl.progress import redact

        stream.write(redact(line, secrets) + "\n")
    return int(code)


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
