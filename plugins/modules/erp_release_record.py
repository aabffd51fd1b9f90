#!/usr/bin/python
# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: erp_release_record
short_description: Write an app host's release state and append the event to its audit log
version_added: 1.0.0
description:
  - Each app host keeps its own release history (which release runs in which slot, the one
    before, the past ones) in a small JSON file, and an append-only audit log with one JSON
    line per deploy, rollback or restore. This module writes both in one task.
  - The state file is replaced atomically (written beside it, then renamed), so a reader such
    as the health check never sees half a file. It is rewritten only when its content changes.
  - The audit line is appended as given, one JSON object per line; every call appends one.
author:
  - ERP operations team (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The state file's content before and after.
  platform:
    platforms: posix
options:
  path:
    description:
      - The release state file.
    type: path
    required: true
  state:
    description:
      - The whole release state to write (C(current), C(previous), C(history)), written as
        indented JSON with sorted keys.
    type: dict
    required: true
  mode:
    description:
      - Permissions of the state file.
    type: str
    default: "0644"
  audit_log:
    description:
      - The audit log the event is appended to. Created when missing.
    type: path
    required: true
  audit_entry:
    description:
      - The event, written as one JSON line in the order of its keys.
    type: dict
    required: true
  audit_mode:
    description:
      - Permissions of the audit log.
    type: str
    default: "0640"
  audit_group:
    description:
      - Group of the audit log (readable by that group, not by everyone).
    type: str
    default: adm
"""

EXAMPLES = r"""
- name: Record the switch to 1.4.2 in the green slot
  erp.ops.erp_release_record:
    path: /var/lib/erp/release.json
    state: "{{ new_release_state }}"
    audit_log: /var/log/erp/releases.log
    audit_entry:
      time: "{{ now(utc=true).isoformat() }}"
      host: "{{ inventory_hostname }}"
      event: deploy
      version: 1.4.2
      slot: green
"""

RETURN = r"""
state_changed:
  description: Whether the state file was (or, in check mode, would be) rewritten.
  returned: always
  type: bool
  sample: true
audit_line:
  description: The line appended to the audit log.
  returned: always
  type: str
  sample: '{"time": "2026-11-28T10:12:31Z", "host": "app1", "event": "rollback", "version": "1.0.0"}'
"""

# Ansible requires the documentation blocks above every import (validate-modules
# import-before-documentation), hence E402 on the imports.
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils._release import problem  # noqa: E402


def render_state(state):
    """The state file's text: what Ansible's to_nice_json writes, plus a final newline."""
    return json.dumps(state, indent=4, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def replace_atomically(module, path, text):
    directory = os.path.dirname(path) or "."
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".release-", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        module.atomic_move(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "dict", "required": True},
            "mode": {"type": "str", "default": "0644"},
            "audit_log": {"type": "path", "required": True},
            "audit_entry": {"type": "dict", "required": True},
            "audit_mode": {"type": "str", "default": "0640"},
            "audit_group": {"type": "str", "default": "adm"},
        },
        supports_check_mode=True,
    )
    params = module.params
    path, audit_log = params["path"], params["audit_log"]
    for file_path in (path, audit_log):
        if not os.path.isdir(os.path.dirname(file_path) or "."):
            module.fail_json(msg=f"directory of {file_path} does not exist")

    # Every reader (erpctl, the health check, the next deploy) relies on the one schema.
    wrong = problem(params["state"])
    if wrong:
        module.fail_json(msg=f"{path}: refusing to write a bad release state: {wrong}")

    before = read_text(path)
    after = render_state(params["state"])
    state_changed = before != after
    audit_line = json.dumps(params["audit_entry"])
    result = {"changed": True, "state_changed": state_changed, "audit_line": audit_line}
    if module._diff:
        result["diff"] = {"before_header": path, "after_header": path, "before": before or "", "after": after}
    if module.check_mode:
        module.exit_json(**result)

    if state_changed:
        replace_atomically(module, path, after)
    module.set_mode_if_different(path, params["mode"], False)

    with open(audit_log, "a", encoding="utf-8") as handle:
        handle.write(audit_line + "\n")
    module.set_mode_if_different(audit_log, params["audit_mode"], False)
    module.set_group_if_different(audit_log, params["audit_group"], False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
