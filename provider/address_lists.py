"""Vault address lists: `-vault-addr`, `VAULT_ADDR` and `vaultAddress` may name several nodes.

Top level because the settings normalise the flag with it, and the target and its
policy read SecretProviderClass lists with it. Stdlib only.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

__all__ = ["join_addresses", "split_addresses"]


# Asked a dozen times per Mount for the same few lists (the client orders nodes by it).
@functools.lru_cache(maxsize=64)
def split_addresses(text: str) -> tuple[str, ...]:
    """The elements of a comma-separated Vault address list, trimmed, without a trailing slash.

    Empty elements are kept (as "") so that validation can say which one is empty. Vault
    addresses never contain a comma of their own (it would have to be in a user:password).
    """
    return tuple(item.strip().rstrip("/") for item in text.split(","))


def join_addresses(addresses: Sequence[str]) -> str:
    """The normalised form of an address list, the identity of "which Vault": `split_addresses` undone."""
    return ",".join(addresses)
