# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""The rollout_batches filter: a thin wrapper over plugins/module_utils/_batches.

The erpctl CLI plans its stages with the same ``plan_batches``; the wrapper only turns
TypeError/ValueError into AnsibleFilterError. The docs live beside this file as
rollout_batches.yml, which is where ansible-doc looks for the documentation of filters
whose name differs from their Python file's.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.erp.ops.plugins.module_utils._batches import plan_batches


def rollout_batches(hosts, spec):
    """Ordered hosts and a serial-like spec ([1, "50%", "100%"]) -> list of host batches."""
    try:
        return plan_batches(hosts, spec)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f"rollout_batches: {exc}") from exc


class FilterModule:
    def filters(self):
        return {
            "rollout_batches": rollout_batches,
        }
