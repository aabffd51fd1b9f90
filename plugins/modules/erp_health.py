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
  - erp.ops.health_probe
attributes:
  check_mode:
    support: full
    details: The probe only reads, so check mode runs it unchanged.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
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
    msg: "{{ __erp_health_result.reason }}"
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
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._health_module import (  # noqa: E402
    PROBE_ARGUMENT_SPEC,
    PROBE_MUTUALLY_EXCLUSIVE,
    PROBE_REQUIRED_ONE_OF,
    wait_until_healthy,
    warn_about_warned_checks,
)


def main():
    module = AnsibleModule(
        argument_spec={
            **PROBE_ARGUMENT_SPEC,
            "container": {"type": "str"},
            "hold": {"type": "float", "default": 0},
            "fail_on_unhealthy": {"type": "bool", "default": True},
        },
        mutually_exclusive=PROBE_MUTUALLY_EXCLUSIVE,
        required_one_of=PROBE_REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    result = wait_until_healthy(module, hold=module.params["hold"], container=module.params["container"])
    if result["healthy"]:
        warn_about_warned_checks(module, result)
    elif module.params["fail_on_unhealthy"]:
        module.fail_json(msg=result["reason"], changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
