"""Registers the real-backend fixtures for every suite under tests/.

The integration suite's helpers are plain modules (`from harness import ...`). The
conformance suite uses the same fixtures, so they are a plugin loaded here, once per
session, rather than a conftest only the integration directory would see.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Plugins named in pytest_plugins are imported by module name; the helpers' directory
# must be importable before pytest resolves them.
_INTEGRATION = str(Path(__file__).resolve().parent / "integration")
if _INTEGRATION not in sys.path:
    sys.path.insert(0, _INTEGRATION)

pytest_plugins = ["backend_fixtures"]
