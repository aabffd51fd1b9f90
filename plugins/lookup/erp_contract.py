# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: erp_contract
short_description: The names every role, playbook and erpctl share, defined once
version_added: 1.0.0
description:
  - Returns values of the collection contract in plugins/module_utils/_contract.py, namely
    environments, inventory groups, slot names and ports, container names, state file
    paths, health endpoints and the default rollout batches.
  - Role defaults start from these values, so an inventory that changes one (for example
    erp_app_slot_ports) changes it for that role only, where the role documents it.
options:
  _terms:
    description: >-
      Names of the values, among environments, lb_group, app_group, db_group, slot_ports, slots,
      app_containers, lb_container, db_container, lb_backend, lb_internal_port, state_dir,
      release_file, lock_file, audit_log, health_checks, rollout_batches.
    required: true
    type: list
    elements: str
author:
  - ERP operations team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Show the slots' ports
  ansible.builtin.debug:
    msg: "{{ lookup('erp.ops.erp_contract', 'slot_ports') }}"
"""

RETURN = r"""
_raw:
  description: The value of each name asked for, as a copy that the caller may change.
  type: list
  elements: raw
"""

# Imports after the documentation, as ansible-test's sanity checks want for plugins
# (import-before-documentation), hence E402 on the imports.
import copy  # noqa: E402

from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._contract import CONTRACT  # noqa: E402


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        values = []
        for term in terms:
            if term not in CONTRACT:
                raise AnsibleLookupError(f"erp_contract: no value named {term!r}; known: {', '.join(sorted(CONTRACT))}")
            values.append(copy.deepcopy(CONTRACT[term]))
        return values
