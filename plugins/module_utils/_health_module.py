# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The AnsibleModule side of the health wait, shared by the modules that wait on the ERP's
health endpoints (erp_health, erp_warm_slot): the probe options' argument spec (documented
once in doc_fragments/health_probe.py), the wait driven by those options, and the Docker
container watch through the ``docker`` command."""

from __future__ import annotations

import time

from ansible_collections.erp.ops.plugins.module_utils._health import (
    build_endpoints,
    container_watch,
    open_url_fetcher,
    validate_wait,
    wait_for_health,
)

PROBE_ARGUMENT_SPEC = {
    "url": {"type": "str"},
    "checks": {"type": "list", "elements": "str"},
    "endpoints": {
        "type": "list",
        "elements": "dict",
        "options": {
            "name": {"type": "str"},
            "url": {"type": "str", "required": True},
            "any_version": {"type": "bool", "default": False},
        },
    },
    "expected_status": {
        "type": "list",
        "elements": "str",
        "choices": ["pass", "warn"],
        "default": ["pass", "warn"],
    },
    "expected_version": {"type": "str"},
    "max_latency_ms": {"type": "float"},
    "deadline": {"type": "float", "default": 60},
    "interval": {"type": "float", "default": 2},
    "timeout": {"type": "float", "default": 5},
    "require_content_type": {"type": "bool", "default": True},
    "validate_certs": {"type": "bool", "default": True},
    "use_proxy": {"type": "bool", "default": True},
    "headers": {"type": "dict"},
}
PROBE_MUTUALLY_EXCLUSIVE = [("url", "endpoints"), ("checks", "endpoints")]
PROBE_REQUIRED_ONE_OF = [("url", "endpoints")]


def docker_command(module, *args, missing_ok=False):
    """Run ``docker <args>`` on the target; its stdout. None when ``missing_ok`` and the
    engine knows no such object; any other failure fails the task with the engine's answer."""
    docker = module.get_bin_path("docker", required=True)
    rc, out, err = module.run_command([docker, *args])
    if rc != 0:
        if missing_ok and "no such" in err.lower():
            return None
        module.fail_json(msg=f"docker {args[0]} {args[-1]} failed: {err.strip()}")
    return out


def docker_inspector(module, name):
    """``inspect()`` for container_watch: the container's status, exit code and restart count
    from ``docker inspect``, None when the engine knows no such container."""
    template = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"

    def inspect():
        out = docker_command(module, "inspect", "--type", "container", "--format", template, name, missing_ok=True)
        if out is None:
            return None
        status, exit_code, restarts = out.split()
        return status, int(exit_code), int(restarts)

    return inspect


def check_probe_options(module, hold=0):
    """Fail the task on probe options the wait cannot use, for a module that changes
    something before it waits (nothing is changed yet when this fails)."""
    params = module.params
    try:
        endpoints = build_endpoints(url=params["url"], checks=params["checks"], endpoints=params["endpoints"])
        validate_wait(endpoints, deadline=params["deadline"], interval=params["interval"], timeout=params["timeout"],
                      hold=hold, expected_status=params["expected_status"])
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=str(exc))


def wait_until_healthy(module, hold=0, container=None):
    """Wait on the endpoints the module's probe options name (PROBE_ARGUMENT_SPEC), watching
    ``container`` when given; wait_for_health's result. Bad option values fail the task."""
    params = module.params
    try:
        endpoints = build_endpoints(url=params["url"], checks=params["checks"], endpoints=params["endpoints"])
        fetch = open_url_fetcher(headers=params["headers"], validate_certs=params["validate_certs"],
                                 use_proxy=params["use_proxy"])
        return wait_for_health(
            endpoints,
            fetch,
            deadline=params["deadline"],
            interval=params["interval"],
            timeout=params["timeout"],
            require_content_type=params["require_content_type"],
            expected_status=params["expected_status"],
            expected_version=params["expected_version"],
            max_latency_ms=params["max_latency_ms"],
            hold=hold,
            abort=container_watch(container, docker_inspector(module, container)) if container else None,
            clock=time.monotonic,
            sleep=time.sleep,
        )
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=str(exc))


def warn_about_warned_checks(module, result):
    """A healthy endpoint's component checks in ``warn`` become task warnings."""
    for endpoint in result["checks"]:
        for check in endpoint["warned_checks"]:
            module.warn(f"{endpoint['url']}: {check['name']}: {check['output'] or 'warn'}")
