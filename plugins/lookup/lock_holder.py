# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: lock_holder
short_description: The process a deploy lock lives as long as, and whether it still runs
version_added: 1.0.0
description:
  - Runs on the controller, where the holder of a deploy lock runs.
  - C(identity) returns what a lock records about its holder, as a dict of controller (host
    name), user, pid, started (the process's start time in clock ticks since boot) and boot_id.
    The process is I(pid) when given (0 names none, a lock held until released), else this
    run's ansible-playbook.
  - C(state) returns the state of the holder of the lock document I(holder), one of alive,
    gone (taken on this controller and that process no longer runs, because the controller
    booted since or no process has that pid and start time), elsewhere (taken on another
    controller, whose processes cannot be seen from here) and until-released (the lock names no
    process). Only a gone holder's lock is ever broken without an operator.
options:
  _terms:
    description: C(identity) or C(state).
    required: true
    type: list
    elements: str
  pid:
    description: For C(identity), the process to name instead of this run's ansible-playbook.
    type: int
  holder:
    description: For C(state), the lock document as read from the lock host.
    type: dict
author:
  - ERP operations team (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Show whether the lock's holder still runs
  ansible.builtin.debug:
    msg: "{{ lookup('erp.ops.lock_holder', 'state', holder=__lock.content | b64decode | from_json) }}"
"""

RETURN = r"""
_raw:
  description: The identity dict or the state string, one per term.
  type: list
  elements: raw
"""

# Imports after the documentation, as ansible-test's sanity checks want for plugins
# (import-before-documentation), hence E402 on the imports.
from ansible.errors import AnsibleLookupError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._lock_holder import (  # noqa: E402
    Controller,
    run_process_pid,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        controller = Controller()
        values = []
        for term in terms:
            if term == "identity":
                pid = self.get_option("pid")
                values.append(controller.identity(run_process_pid() if pid is None else int(pid)))
            elif term == "state":
                holder = self.get_option("holder")
                if not isinstance(holder, dict):
                    raise AnsibleLookupError("lock_holder: 'state' needs holder=<the lock document>")
                values.append(controller.holder_state(holder))
            else:
                raise AnsibleLookupError(f"lock_holder: no term {term!r}; known: identity, state")
        return values
