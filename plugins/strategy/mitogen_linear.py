# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)
"""Ansible's linear strategy over Mitogen: ANSIBLE_STRATEGY=mitogen_linear (docs/controller.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_linear
short_description: Ansible's linear strategy with Mitogen connections
description:
  - The builtin linear strategy (task by task, every host of a batch in step) whose SSH and
    become connections are Mitogen's. Each host keeps one Python interpreter for the whole run
    and modules are imported into it once, instead of a new interpreter and a 170 KB payload for
    every task.
  - The repository's default (ansible.cfg); C(ANSIBLE_STRATEGY=linear) or
    C(erpctl --strategy linear) runs plain Ansible instead.
  - Needs the C(mitogen) Python package pinned in requirements.txt (C(make setup) installs it).
author: erp.ops
"""

# Imports follow DOCUMENTATION, the layout Ansible's plugin documentation tools expect.
from ansible.errors import AnsibleError  # noqa: E402

try:
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except ImportError as exc:  # pragma: no cover - depends on the controller's packages
    raise AnsibleError(
        "strategy mitogen_linear needs the mitogen package (make setup installs it): " + str(exc)
    ) from exc

Base = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    """Linear, on Mitogen connections."""
