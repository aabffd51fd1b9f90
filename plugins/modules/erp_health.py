#!/usr/bin/python
# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: erp_health
short_description: Wait until the ERP's application/health+json endpoints report healthy
version_added: 1.0.0
description:
  - Probes one or more health endpoints that answer in the C(application/health+json) format
    of the IETF draft-inadarei-api-health-check, and retries until every endpoint is healthy
    in the same attempt or O(deadline) expires.
  - An endpoint is healthy when it answers HTTP 2xx-3xx, its body is a JSON object whose
    C(status) is in O(expected_status) (aliases C(ok)/C(up) mean C(pass), C(error)/C(down)
    mean C(fail)), and the optional O(expected_version) and O(max_latency_ms) hold.
    HTTP 4xx/5xx answers are read too, because a failing endpoint explains itself in its body.
  - The module is a read-only probe. It never reports a change, and it runs in check mode
    exactly as in normal mode.
  - Redirects are not followed; a 3xx answer is judged on its own body.
author:
  - ERP operations team (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The probe only reads, so check mode runs it unchanged.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  url:
    description:
      - Base URL of the application, for example V(http://127.0.0.1:8001).
      - Each path in O(checks) is appended to it.
      - Mutually exclusive with O(endpoints); one of the two is required.
    type: str
  checks:
    description:
      - Endpoint paths probed below O(url). An absolute C(http://) or C(https://) URL is used as is.
      - When omitted with O(url), V(/health/live), V(/health/ready) and V(/health/database) are probed.
      - Cannot be combined with O(endpoints).
    type: list
    elements: str
  endpoints:
    description:
      - Explicit endpoints to probe, instead of O(url) and O(checks).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Display name of the endpoint in the results. Defaults to its URL.
        type: str
      url:
        description:
          - Full URL of the endpoint.
        type: str
        required: true
  expected_status:
    description:
      - Health statuses accepted as healthy. Use V([pass]) to treat C(warn) as unhealthy.
    type: list
    elements: str
    choices: [pass, warn]
    default: [pass, warn]
  expected_version:
    description:
      - When set, the C(version) field of every endpoint's body must equal this string.
      - Use it after a deploy to wait until the new release answers.
    type: str
  max_latency_ms:
    description:
      - When set, an endpoint answering slower than this many milliseconds is unhealthy.
    type: float
  deadline:
    description:
      - Seconds to keep retrying until every endpoint is healthy.
      - No attempt starts after the deadline, but a running attempt is not cut short, so the
        module can take up to one attempt (endpoints x O(timeout)) longer.
      - V(0) probes exactly once.
    type: float
    default: 60
  container:
    description:
      - Name of the Docker container on the target host that serves the endpoints.
      - While waiting for health, the wait ends at once, unhealthy, when that container is
        gone, not running, or restarted since the task began (a release that crashes at
        start is not waited for until the deadline). Its state leads the RV(reason).
      - Needs the C(docker) command on the target host, and rights to use it.
    type: str
  hold:
    description:
      - Seconds the endpoints must stay healthy after they first are (a bake), probed every
        O(interval). The first unhealthy attempt in that time ends the task at once, unhealthy.
      - V(0) returns as soon as every endpoint is healthy.
    type: float
    default: 0
  interval:
    description:
      - Seconds to wait between attempts.
    type: float
    default: 2
  timeout:
    description:
      - Timeout of each HTTP request, in seconds.
    type: float
    default: 5
  require_content_type:
    description:
      - When V(true), an answer must be C(application/health+json); C(application/json) is
        accepted with a note in the endpoint's RV(checks[].notes).
      - When V(false), any content type is parsed as JSON.
    type: bool
    default: true
  validate_certs:
    description:
      - Whether to validate TLS certificates of C(https://) endpoints.
    type: bool
    default: true
  use_proxy:
    description:
      - Whether to use a proxy from the environment (C(http_proxy), C(https_proxy)).
    type: bool
    default: true
  headers:
    description:
      - Extra HTTP request headers, for example a token for a protected health endpoint.
    type: dict
  fail_on_unhealthy:
    description:
      - When V(true), the task fails if the endpoints are not healthy by the deadline.
      - When V(false), the task succeeds and RV(healthy) tells the result, for callers that
        decide themselves (a canary gate, a rollback).
    type: bool
    default: true
notes:
  - Endpoints are probed one after the other from the host the task runs on; use
    C(delegate_to) to probe from the controller or a load balancer.
  - A component check whose status is C(warn) on a healthy endpoint is reported as a warning.
seealso:
  - module: ansible.builtin.uri
  - name: Health Check Response Format for HTTP APIs
    description: The IETF draft this module implements.
    link: https://datatracker.ietf.org/doc/html/draft-inadarei-api-health-check
"""

EXAMPLES = r"""
- name: Wait for the new release to be ready on the green slot
  erp.ops.erp_health:
    url: "http://127.0.0.1:{{ erp_app_green_port }}"
    expected_version: "{{ erp_app_version }}"
    deadline: 120

- name: Probe only readiness, strict about warnings and latency
  erp.ops.erp_health:
    url: http://127.0.0.1:8001
    checks:
      - /health/ready
    expected_status:
      - pass
    max_latency_ms: 500
    deadline: 0

- name: Probe explicit endpoints from the controller and decide later
  erp.ops.erp_health:
    endpoints:
      - name: app
        url: "http://{{ ansible_host }}:8001/health/ready"
      - name: through the load balancer
        url: "http://{{ erp_lb_vip }}/health/ready"
    fail_on_unhealthy: false
  delegate_to: localhost
  register: __erp_health_result

- name: Show what failed
  ansible.builtin.debug:
    msg: "{{ __erp_health_result | erp.ops.failed_checks }}"
  when: not __erp_health_result.healthy

- name: Bake for two minutes, stopping at the first unhealthy probe
  erp.ops.erp_health:
    url: "http://{{ ansible_host }}:8001"
    deadline: 0
    hold: 120
    interval: 5
"""

RETURN = r"""
healthy:
  description: Whether every endpoint was healthy in the last attempt.
  returned: always
  type: bool
  sample: false
reason:
  description:
    - One line per unhealthy endpoint (joined by C(; )) naming its URL, what the application
      answered and the failing checks with their output. V(null) when healthy.
  returned: always
  type: str
  sample: "http://10.0.0.5:8001/health/ready: HTTP 503 status=fail (postgresql:connection: connection refused)"
attempts:
  description: Number of attempts made.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds spent probing.
  returned: always
  type: float
  sample: 4.213
held:
  description: Seconds the endpoints stayed healthy without a break, up to the last attempt (see O(hold)).
  returned: always
  type: float
  sample: 120.004
checks:
  description: Per-endpoint results of the last attempt, in probe order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Endpoint name (the path, or O(endpoints[].name)).
      type: str
      sample: /health/ready
    url:
      description: Probed URL.
      type: str
      sample: http://10.0.0.5:8001/health/ready
    healthy:
      description: Whether this endpoint met every expectation.
      type: bool
      sample: false
    http_status:
      description: HTTP status code, V(null) when no answer was received.
      type: int
      sample: 503
    content_type:
      description: Content-Type header of the answer.
      type: str
      sample: application/health+json
    status:
      description: Normalized health status (C(pass), C(warn), C(fail)), V(null) when missing or unknown.
      type: str
      sample: fail
    version:
      description: The body's C(version) field.
      type: str
      sample: 1.4.2
    release_id:
      description: The body's C(releaseId) field.
      type: str
      sample: 1.4.2-7
    output:
      description: The body's top-level C(output) field.
      type: str
    latency_ms:
      description: Time to the full answer (or to the failure), in milliseconds.
      type: float
      sample: 12.7
    failed_checks:
      description: Component checks with status C(fail).
      type: list
      elements: dict
      sample:
        - name: "postgresql:connection"
          status: fail
          output: connection refused
          component_id: db1
    warned_checks:
      description: Component checks with status C(warn), same shape as RV(checks[].failed_checks).
      type: list
      elements: dict
    notes:
      description: Oddities that did not make the endpoint unhealthy (accepted content type, unknown check statuses).
      type: list
      elements: str
    problems:
      description: Why the endpoint is unhealthy beyond its HTTP status and health status.
      type: list
      elements: str
      sample:
        - version 1.4.1 instead of 1.4.2
    error:
      description: Transport error (timeout, connection refused, TLS), V(null) when an answer was received.
      type: str
      sample: connection refused
    reason:
      description: One-line reason when unhealthy, V(null) otherwise.
      type: str
"""

# Ansible requires the documentation blocks above every import (validate-modules
# import-before-documentation), hence E402 on the imports.
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._health import (  # noqa: E402
    build_endpoints,
    container_watch,
    open_url_fetcher,
    wait_for_health,
)


def docker_inspector(module, name):
    """``inspect()`` for container_watch: the container's status, exit code and restart count
    from ``docker inspect``, None when the engine knows no such container."""
    docker = module.get_bin_path("docker", required=True)
    template = "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}"

    def inspect():
        rc, out, err = module.run_command([docker, "inspect", "--type", "container", "--format", template, name])
        if rc != 0:
            if "no such" in err.lower():
                return None
            module.fail_json(msg=f"docker inspect {name} failed: {err.strip()}")
        status, exit_code, restarts = out.split()
        return status, int(exit_code), int(restarts)

    return inspect


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str"},
            "checks": {"type": "list", "elements": "str"},
            "endpoints": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "name": {"type": "str"},
                    "url": {"type": "str", "required": True},
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
            "container": {"type": "str"},
            "hold": {"type": "float", "default": 0},
            "interval": {"type": "float", "default": 2},
            "timeout": {"type": "float", "default": 5},
            "require_content_type": {"type": "bool", "default": True},
            "validate_certs": {"type": "bool", "default": True},
            "use_proxy": {"type": "bool", "default": True},
            "headers": {"type": "dict"},
            "fail_on_unhealthy": {"type": "bool", "default": True},
        },
        mutually_exclusive=[("url", "endpoints"), ("checks", "endpoints")],
        required_one_of=[("url", "endpoints")],
        supports_check_mode=True,
    )
    params = module.params

    try:
        endpoints = build_endpoints(url=params["url"], checks=params["checks"], endpoints=params["endpoints"])
        fetch = open_url_fetcher(headers=params["headers"], validate_certs=params["validate_certs"],
                                 use_proxy=params["use_proxy"])
        result = wait_for_health(
            endpoints,
            fetch,
            deadline=params["deadline"],
            interval=params["interval"],
            timeout=params["timeout"],
            require_content_type=params["require_content_type"],
            expected_status=params["expected_status"],
            expected_version=params["expected_version"],
            max_latency_ms=params["max_latency_ms"],
            hold=params["hold"],
            abort=container_watch(params["container"], docker_inspector(module, params["container"]))
            if params["container"] else None,
            clock=time.monotonic,
            sleep=time.sleep,
        )
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=str(exc))

    if result["healthy"]:
        for endpoint in result["checks"]:
            for check in endpoint["warned_checks"]:
                module.warn(f"{endpoint['url']}: {check['name']}: {check['output'] or 'warn'}")
    elif params["fail_on_unhealthy"]:
        module.fail_json(msg=result["reason"], changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
