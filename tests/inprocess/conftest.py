"""In-process fixtures: a FakeVault holding one KV secret, and the provider composed over it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_vault import FakeVault
from inprocess_kit import NAMESPACE, composed

from provider.serve.composition import Provider


@pytest.fixture
def fake() -> FakeVault:
    """Role `app` admits the pod's service account; secret/data/app holds a username and password."""
    vault = FakeVault()
    vault.admit("app", f"{NAMESPACE}/app")
    vault.put("app", {"username": "app", "password": "correct-horse"})
    return vault


@pytest.fixture
def provider(fake: FakeVault) -> Iterator[Provider]:
    with composed(fake) as built:
        yield built
