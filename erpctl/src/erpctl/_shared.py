"""The shared logic of the collection erp.ops, imported once for the whole package.

Importing this module locates the repository (see ``erpctl.repo``) and puts its
``.collections`` on ``sys.path``; when the collection is already importable (the unit
tests' pytest.ini arranges that), it is used as is. Never copy this logic here.
"""

from __future__ import annotations

import importlib.util

from erpctl.repo import add_collections_path, find_repo


def _ensure_importable() -> None:
    try:
        found = importlib.util.find_spec("ansible_collections.erp.ops.plugins.module_utils") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        add_collections_path(find_repo())


_ensure_importable()
from ansible_collections.erp.ops.plugins.module_utils import _batches as batches  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils import _contract as names  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils import _health as health  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils import _prometheus as prometheus  # noqa: E402
from ansible_collections.erp.ops.plugins.module_utils import _release as release_schema  # noqa: E402

__all__ = ["batches", "health", "names", "prometheus", "release_schema"]
