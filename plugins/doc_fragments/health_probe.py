# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations


class ModuleDocFragment:
    """The probe options every module that waits on the ERP's health endpoints takes
    (erp.ops.erp_health, erp.ops.erp_warm_slot): one description, one argument spec
    (module_utils/_health_module.py)."""

    DOCUMENTATION = r"""
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
      any_version:
        description:
          - Accept any version from this endpoint, whatever O(expected_version) says (a load
            balancer's frontend, which serves old and new releases during a rollout).
        type: bool
        default: false
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
"""
