"""The hypothesis settings every fuzz test here runs with: reproducible, no example database.

FUZZ_EXAMPLES raises the count for a longer hunt (`FUZZ_EXAMPLES=20000 pytest -k fuzz`).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["FUZZ"]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
