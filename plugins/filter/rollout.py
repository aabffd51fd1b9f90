# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Rollout planning, rollout reports and load-balancer status filters: wrappers over plugins/module_utils.

deploy.yml's ``serial`` comes from ``rollout_batch_sizes``, erpctl's stages from the same
``plan_batches``, so both plan the same batches. The docs live beside this file as
<filter_name>.yml.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.module_utils._batches import DEFAULT_SPEC, plan_batches
from ansible_collections.erp.ops.plugins.module_utils._haproxy import server_rows, servers_by_backend


def _spec(spec):
    return DEFAULT_SPEC if spec in (None, "") else spec


def rollout_batches(hosts, spec=None):
    """Ordered hosts and a serial-like spec ([1, "50%", "100%"]) -> list of host batches."""
    try:
        return plan_batches(hosts, _spec(spec))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"rollout_batches: {exc}") from exc


def rollout_batch_error(hosts, spec=None):
    """What is wrong with planning these hosts under this spec; empty when nothing is."""
    try:
        plan_batches(hosts, _spec(spec))
    except (TypeError, ValueError) as exc:
        return str(exc)
    return ""


def rollout_batch_sizes(hosts, spec=None):
    """Ordered hosts and a spec ([1, "50%", "100%"]; none: the default) -> batch sizes for serial."""
    try:
        return [len(batch) for batch in plan_batches(hosts, _spec(spec))]
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"erp_rollout_batches: {exc}") from exc


def rollout_host_outcome(host):
    """One app host's facts after a deploy.yml run -> "<host>: where it stands" for the report:
    the outcome the run recorded (switched, reverted, NOT reverted, stopped answering), else
    the release it was found on."""
    name = host.get("inventory_hostname", "?")
    outcome = host.get("_erp_deploy_outcome")
    if outcome:
        return f"{name}: {' '.join(str(outcome).split())}"
    state = host.get("_erp_deploy_state")
    current = state.get("current") if isinstance(state, dict) else None
    if isinstance(current, dict) and current.get("version"):
        return f"{name}: unchanged, on {current['version']}"
    return f"{name}: unchanged" if isinstance(state, dict) else f"{name}: not reached by this run"


def haproxy_servers(text, flat=False):
    """HAProxy ``show stat`` CSV -> {backend: {server: {status, weight, sessions}}}, or with
    ``flat`` a list of {backend, server, status, weight, sessions}."""
    try:
        return server_rows(text) if flat else servers_by_backend(text)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"haproxy_servers: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "rollout_batches": rollout_batches,
            "rollout_batch_error": rollout_batch_error,
            "rollout_batch_sizes": rollout_batch_sizes,
            "rollout_host_outcome": rollout_host_outcome,
            "haproxy_servers": haproxy_servers,
        }
