"""The scenario's fixtures, shared with the other provisioning roles' scenarios."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared" / "provision"))

from provision_host import client_key, host  # noqa: F401 (pytest fixtures)
