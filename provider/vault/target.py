"""Which Vault to talk to and how to trust it: its addresses (and where they were set), a namespace, TLS.

Built per Mount by `mount.target_policy` from the operator's settings and the
SecretProviderClass; the transports and error messages read it. Holds no connection:
the pools live in the client, keyed by one node's address and TLS settings.

A target may list several addresses, the nodes of one Vault cluster, in the order to
try them. `address` is the whole list, normalised and joined by commas: the identity
of "which Vault" in every cache key. `node(address)` is the same target narrowed to
one of them, which is what a transport and an error message about one node see.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from provider.address_lists import join_addresses, split_addresses
from provider.settings import Source, TlsSettings

__all__ = ["VaultTarget", "join_addresses", "split_addresses", "without_userinfo"]

_ORIGINS = {
    "spc": "vaultAddress in the SecretProviderClass",
    "flag": "the -vault-addr flag",
    "env": "VAULT_ADDR",
    "default": "the default",
}


@dataclass(frozen=True)
class VaultTarget:
    """Where Vault is, which namespace to use, and how to trust it."""

    address: str  # one address, or several joined by commas (see `join_addresses`)
    address_source: Source
    namespace: str = ""
    tls: TlsSettings = field(default_factory=TlsSettings)
    # Where else a redirect may lead (the operator's -allowed-vault-addresses), besides `addresses`.
    redirect_allowed: tuple[str, ...] = ()

    @property
    def addresses(self) -> tuple[str, ...]:
        """The nodes in the order to try them; one element for a single address."""
        return split_addresses(self.address)

    @property
    def scheme(self) -> str:
        return self.address.split("://", 1)[0].lower()

    def node(self, address: str) -> VaultTarget:
        """This target narrowed to one node (an element of `addresses` or an allowed redirect)."""
        if address == self.address:
            return self  # one address: already that node (and `replace` costs a warm poll ~1%)
        return replace(self, address=address)

    def origin(self) -> str:
        """Where the address was set, in words ("the -vault-addr flag")."""
        return _ORIGINS[self.address_source]

    def describe(self) -> str:
        """The address (without any user:password) and where it came from, for error messages."""
        return f"{without_userinfo(self.address)} (from {_ORIGINS[self.address_source]})"

    def describe_trust(self) -> str:
        if self.tls.skip_verify:
            return "certificate verification disabled"
        if self.tls.ca_cert:
            return f"CA file {self.tls.ca_cert}"
        if self.tls.ca_directory:
            return f"CA directory {self.tls.ca_directory}"
        return "the system CA certificates"


def without_userinfo(address: str) -> str:
    """The address (or each of a list) with any `user:password@` replaced, fit for a message."""
    if "," in address:
        return ",".join(without_userinfo(item) for item in address.split(","))
    scheme, separator, rest = address.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "[redacted]@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{separator}{authority}{slash}{path}"
