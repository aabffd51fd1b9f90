"""Find the erp.ops repository erpctl drives and make its collection importable.

The repository is the Ansible collection ``erp.ops`` and ``<repo>/.collections`` holds
``ansible_collections/erp/ops`` linking back to it, so putting ``.collections`` on
``sys.path`` makes ``ansible_collections.erp.ops.plugins.module_utils`` importable: the
one copy of the health, Prometheus and batch logic that modules and filters use too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from erpctl.errors import ErpctlError

REPO_ENV = "ERPCTL_REPO"


def _is_erp_repo(path: Path) -> bool:
    galaxy = path / "galaxy.yml"
    if not galaxy.is_file():
        return False
    try:
        meta = yaml.safe_load(galaxy.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(meta, dict) and meta.get("namespace") == "erp"


def find_repo(environ=None, cwd=None) -> Path:
    """The repository root: ``$ERPCTL_REPO``, else the nearest parent of cwd with an erp galaxy.yml.

    :raises ErpctlError: when none is found (exit code 3).
    """
    environ = os.environ if environ is None else environ
    configured = environ.get(REPO_ENV)
    if configured:
        path = Path(configured).expanduser().resolve()
        if not _is_erp_repo(path):
            raise ErpctlError(f"{REPO_ENV}={configured} is not the erp.ops repository "
                              "(no galaxy.yml with namespace: erp)")
        return path
    start = Path.cwd() if cwd is None else Path(cwd)
    for candidate in (start.resolve(), *start.resolve().parents):
        if _is_erp_repo(candidate):
            return candidate
    raise ErpctlError(f"not inside the erp.ops repository (no galaxy.yml with namespace: erp above {start}); "
                      f"run erpctl from a clone or set {REPO_ENV}")


def add_collections_path(repo: Path) -> None:
    """Put ``<repo>/.collections`` first on ``sys.path`` (once)."""
    collections = repo / ".collections"
    if not (collections / "ansible_collections" / "erp" / "ops").exists():
        raise ErpctlError(f"{collections}/ansible_collections/erp/ops is missing; run 'make setup' in {repo}")
    if str(collections) not in sys.path:
        sys.path.insert(0, str(collections))
