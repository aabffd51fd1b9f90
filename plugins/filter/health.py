# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Filters over health results, Prometheus text and rollout batches.

Each filter is a thin wrapper over plugins/module_utils, so the CLI and the modules use
the same logic; the wrappers only turn TypeError/ValueError into AnsibleFilterError.
The docs live beside this file as <filter_name>.yml, which is where ansible-doc looks
for the documentation of filters that share one Python file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.module_utils._batches import plan_batches
from ansible_collections.erp.ops.plugins.module_utils._health import (
    format_failed_checks,
    summarize_health,
)
from ansible_collections.erp.ops.plugins.module_utils._prometheus import (
    parse_samples,
    sample_to_dict,
)


def health_summary(results):
    """erp_health results (list, {host: result} dict or loop result) -> summary dict."""
    try:
        return summarize_health(results)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"health_summary: {exc}") from exc


def failed_checks(result):
    """An erp_health result -> ["<endpoint url>: <check>: <output>", ...]."""
    try:
        return format_failed_checks(result)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"failed_checks: {exc}") from exc


def prometheus_samples(text):
    """Prometheus text exposition -> [{name, labels, value, timestamp}, ...]."""
    try:
        return [sample_to_dict(sample) for sample in parse_samples(text)]
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"prometheus_samples: {exc}") from exc


def rollout_batches(hosts, spec):
    """Ordered hosts and a serial-like spec ([1, "50%", "100%"]) -> list of host batches."""
    try:
        return plan_batches(hosts, spec)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"rollout_batches: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "health_summary": health_summary,
            "failed_checks": failed_checks,
            "prometheus_samples": prometheus_samples,
            "rollout_batches": rollout_batches,
        }
