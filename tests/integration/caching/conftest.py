"""The caching suites' fixture: OpenBao's root client with the policy every test role grants."""

from __future__ import annotations

from typing import Any

import pytest
from caching_kit import POLICY, POLICY_HCL
from harness import VaultEnv

from devkit import vault_setup as setup


@pytest.fixture(scope="module")
def root(vault: VaultEnv) -> Any:
    """The root client, with the policy every role of this module grants."""
    setup.write_policy(vault.root, POLICY, POLICY_HCL)
    return vault.root
