# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Make the repository importable as the collection erp.ops.

.collections/ansible_collections/erp/ops links to the repository root. Neither that
ansible_collections directory nor the one the `ansible` package installs into
site-packages has an __init__.py, so Python treats both as portions of one implicit
namespace package and ``ansible_collections.erp.ops`` imports next to
``ansible_collections.community.general``. A regular package (an __init__.py) on either
side would hide the other; do not add one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"

if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

# The unit tests' own ansible-playbook runs are not run history: without this they would
# record into the checkout's .ara/ (ansible.cfg enables erp.ops.history), two workers at once.
# tests/unit/plugins/callback/test_history.py turns recording on for its runs.
os.environ["ERP_RECORD_HISTORY"] = "0"
