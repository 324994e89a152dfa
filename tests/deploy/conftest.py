"""Session fixtures: the kustomize binary (built once) and every target rendered once."""

from __future__ import annotations

from pathlib import Path

import pytest
from render import RenderedTargets, find_kustomize


@pytest.fixture(scope="session")
def kustomize() -> Path:
    return find_kustomize()


@pytest.fixture(scope="session")
def rendered(kustomize: Path) -> RenderedTargets:
    """Every target in TARGETS, each built once per session when a test first needs it."""
    return RenderedTargets(kustomize)
