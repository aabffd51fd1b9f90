"""Make the lab app's pure modules importable: the app lives in its image's build context."""

import sys
from pathlib import Path

APP_DIR = Path(__file__).resolve().parents[3] / "lab" / "images" / "erp-app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))
