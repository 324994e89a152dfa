"""Which Vault to talk to and how to trust it: an address (and where it was set), a namespace, TLS.

Built per Mount by `mount.target_policy` from the operator's settings and the
SecretProviderClass; the transports and error messages read it. Holds no connection:
the pools live in the client, keyed by address and TLS settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provider.settings import Source, TlsSettings

__all__ = ["VaultTarget", "without_userinfo"]

_ORIGINS = {
    "spc": "vaultAddress in the SecretProviderClass",
    "flag": "the -vault-addr flag",
    "env": "VAULT_ADDR",
    "default": "the default",
}


@dataclass(frozen=True)
class VaultTarget:
    """Where Vault is, which namespace to use, and how to trust it."""

    address: str
    address_source: Source
    namespace: str = ""
    tls: TlsSettings = field(default_factory=TlsSettings)

    @property
    def scheme(self) -> str:
        return self.address.split("://", 1)[0].lower()

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
    """The address with any `user:password@` replaced, fit for a message."""
    scheme, separator, rest = address.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "[redacted]@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{separator}{authority}{slash}{path}"
