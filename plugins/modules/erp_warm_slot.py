#!/usr/bin/python
# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: erp_warm_slot
short_description: Start an ERP slot's kept container of an earlier release and wait until it is healthy
version_added: 1.0.0
description:
  - The fast path of a rollback. A deploy stops the replaced slot's container and keeps it;
    while that container is still the one created from the release's image, starting it as
    it was left (no configuration rendered, no image pulled, no container re-created) brings
    the release back in about the time the application takes to boot.
  - When the container O(container) exists and was created from exactly O(image), the module
    starts it unless it runs already, then waits until its health endpoints are healthy (the
    probe options are those of M(erp.ops.erp_health)), watching the container so that one
    that exits or restarts ends the wait at once.
  - When there is no such container, or it was created from another image, nothing is done
    and RV(warm) is V(false); the caller runs the slot from the image instead.
  - When the container it started does not become healthy, the module stops it again, so the
    host is left as it was, and fails with the reason.
  - Only the container's image reference and state are read, never its whole configuration
    (its environment holds the database password).
author:
  - ERP operations team (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - erp.ops.health_probe
attributes:
  check_mode:
    support: full
    details: Reports whether the slot is warm and would be started; neither starts nor probes it.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  container:
    description:
      - Name of the slot's Docker container on the target host.
    type: str
    required: true
  image:
    description:
      - The image reference the container must have been created from (its C(.Config.Image)),
        as the host's release history records it, for example
        V(registry.example.com/erp-app@sha256:4f1c...).
    type: str
    required: true
requirements:
  - The C(docker) command on the target host, and rights to use it.
notes:
  - Endpoints are probed from the target host; give the slot's own address in O(url).
seealso:
  - module: erp.ops.erp_health
"""

EXAMPLES = r"""
- name: Start the previous release's slot when it is warm, and gate it
  erp.ops.erp_warm_slot:
    container: erp-app-blue
    image: "{{ _erp_state.previous.image }}"
    url: "http://{{ erp_internal_address }}:8001"
    expected_version: "{{ _erp_state.previous.version }}"
    deadline: 60
    interval: 1
    use_proxy: false
  register: __erp_warm

- name: Run the slot from its image instead
  ansible.builtin.include_role:
    name: erp.ops.erp_app
  when: not __erp_warm.warm
"""

RETURN = r"""
warm:
  description: Whether the container exists and was created from O(image).
  returned: always
  type: bool
  sample: true
started:
  description: Whether the module started the container (V(false) when it ran already or is not warm).
  returned: always
  type: bool
  sample: true
image:
  description: The image the container was created from, V(null) when there is no such container.
  returned: always
  type: str
  sample: registry.example.com/erp-app@sha256:4f1c0e0c7e1f2b8a9d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e
healthy:
  description:
    - Whether every endpoint was healthy in the last attempt.
    - V(null) when the slot was not probed (not warm, or check mode).
  returned: always
  type: bool
  sample: true
reason:
  description: One-line reason when the slot is not warm or not healthy, V(null) otherwise.
  returned: always
  type: str
  sample: "erp-app-blue was created from registry:5000/erp-app:1.0.0, not registry:5000/erp-app@sha256:4f1c..."
checks:
  description: Per-endpoint results of the last attempt, as M(erp.ops.erp_health) returns them; empty when not probed.
  returned: always
  type: list
  elements: dict
attempts:
  description: Number of probe attempts made (V(0) when not probed).
  returned: always
  type: int
  sample: 2
elapsed:
  description: Seconds spent probing.
  returned: always
  type: float
  sample: 0.812
"""

# Ansible requires the documentation blocks above every import (validate-modules
# import-before-documentation), hence E402 on the imports.
from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._health_module import (  # noqa: E402
    PROBE_ARGUMENT_SPEC,
    PROBE_MUTUALLY_EXCLUSIVE,
    PROBE_REQUIRED_ONE_OF,
    check_probe_options,
    docker_command,
    wait_until_healthy,
    warn_about_warned_checks,
)

NOT_PROBED = {"healthy": None, "checks": [], "attempts": 0, "elapsed": 0.0}


def main():
    module = AnsibleModule(
        argument_spec={
            **PROBE_ARGUMENT_SPEC,
            "container": {"type": "str", "required": True},
            "image": {"type": "str", "required": True},
        },
        mutually_exclusive=PROBE_MUTUALLY_EXCLUSIVE,
        required_one_of=PROBE_REQUIRED_ONE_OF,
        supports_check_mode=True,
    )
    name, wanted = module.params["container"], module.params["image"]
    check_probe_options(module)

    found = docker_command(module, "inspect", "--type", "container", "--format", "{{.Config.Image}} {{.State.Status}}",
                           name, missing_ok=True)
    if found is None:
        module.exit_json(changed=False, warm=False, started=False, image=None, reason=f"no container {name}",
                         **NOT_PROBED)
    image, status = found.split()
    if image != wanted:
        module.exit_json(changed=False, warm=False, started=False, image=image,
                         reason=f"{name} was created from {image}, not {wanted}", **NOT_PROBED)

    start = status != "running"
    if module.check_mode:
        module.exit_json(changed=start, warm=True, started=start, image=image, reason=None, **NOT_PROBED)
    if start:
        docker_command(module, "start", name)

    result = wait_until_healthy(module, container=name)
    if not result["healthy"]:
        if start:
            # Leave the host as it was found: a slot that never became healthy takes no traffic.
            docker_command(module, "stop", name)
        module.fail_json(msg=f"{name} did not become healthy: {result['reason']}", changed=False, warm=True,
                         started=False, image=image, **result)
    warn_about_warned_checks(module, result)
    module.exit_json(changed=start, warm=True, started=start, image=image, **result)


if __name__ == "__main__":
    main()
