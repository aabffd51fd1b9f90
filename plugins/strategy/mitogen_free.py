# Copyright: the erp.ops authors. GPL-3.0-or-later.
"""Ansible's free strategy over Mitogen: ANSIBLE_STRATEGY=mitogen_free (docs/controller.md)."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mitogen_free
short_description: Ansible's free strategy with Mitogen connections
description:
  - The builtin free strategy (each host runs its tasks at its own pace) whose SSH and
    become connections are Mitogen's. Each host keeps one Python interpreter for the whole run
    and modules are imported into it once, instead of a new interpreter and a 170 KB payload for
    every task.
  - The plays that run each host at its own pace use it when the run chose Mitogen
    (C(ANSIBLE_STRATEGY=mitogen_linear)).
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
        "strategy mitogen_free needs the mitogen package (make setup installs it): " + str(exc)
    ) from exc

Base = ansible_mitogen.loaders.strategy_loader.get("free", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, Base):
    """Free, on Mitogen connections."""
