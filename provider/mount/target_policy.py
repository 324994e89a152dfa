"""The Vault a Mount talks to: SecretProviderClass over flags over environment, within the guard rails.

The precedence is written here once. A SecretProviderClass value counts only when it
is set, so an SPC that says nothing about TLS keeps the operator's settings
(upstream's client resets skip-verify to false in that case). The operator's guard
rails then bound what an SPC author may point the provider, and the pods' tokens, at.

An address may be a comma-separated list (the nodes of one cluster, tried in order):
every element is checked on its own, and every element an SPC names must be allowed.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from provider.address_lists import join_addresses, split_addresses
from provider.errors import InvalidRequest
from provider.request.mount_request import VaultOverrides
from provider.settings import Settings, TlsSettings
from provider.vault.target import VaultTarget, without_userinfo

__all__ = ["KnownTargets", "resolve_target"]

SCHEMES = ("http", "https", "unix")
# Distinct SecretProviderClass settings remembered by `KnownTargets`: a node holds a few.
KNOWN_TARGETS = 256


class KnownTargets:
    """`resolve_target` for the process's settings, each class's answer remembered where it may be.

    Every poll of a volume resolves the same settings again. A class that names TLS files is
    resolved each time: the guard rails follow those paths' symlinks, which may change.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._known: dict[VaultOverrides, VaultTarget] = {}

    def resolve(self, spc: VaultOverrides) -> VaultTarget:
        target = self._known.get(spc)
        if target is None:
            target = resolve_target(self._settings, spc)  # raises for a refused one: never kept
            if not any(path for _, path in _tls_paths(spc)):
                if len(self._known) >= KNOWN_TARGETS:
                    self._known.clear()
                self._known[spc] = target
        return target


def resolve_target(settings: Settings, spc: VaultOverrides) -> VaultTarget:
    """The effective target; raises InvalidRequest for an unusable or disallowed address or TLS file."""
    flags = settings.tls
    address, source = (
        (spc.address, "spc") if spc.address else (settings.vault_addr, settings.vault_addr_source)
    )
    tls = TlsSettings(
        ca_cert=spc.ca_cert or flags.ca_cert,
        ca_directory=spc.ca_directory or flags.ca_directory,
        server_name=spc.server_name or flags.server_name,
        # A client certificate and its key always come from the same layer.
        client_cert=spc.client_cert or flags.client_cert,
        client_key=spc.client_key if spc.client_cert else flags.client_key,
        skip_verify=flags.skip_verify if spc.skip_verify is None else spc.skip_verify,
    )
    target = VaultTarget(
        address=join_addresses(split_addresses(address)),
        address_source=source,  # type: ignore[arg-type]
        namespace=spc.namespace or settings.vault_namespace.strip("/"),
        tls=tls,
        redirect_allowed=settings.allowed_vault_addresses,
    )
    _check_addresses(target)
    _check_guard_rails(settings, spc)
    return target


def _check_guard_rails(settings: Settings, spc: VaultOverrides) -> None:
    """The operator's limits on what a SecretProviderClass may point the provider at."""
    problems = []
    allowed = settings.allowed_vault_addresses
    operator = split_addresses(settings.vault_addr)
    if spc.address and allowed:
        problems += [
            f"vaultAddress {without_userinfo(address)} is not one of the Vault addresses this provider "
            f"allows (-allowed-vault-addresses: {without_userinfo(', '.join(allowed))})"
            for address in dict.fromkeys(split_addresses(spc.address))
            if address not in (*allowed, *operator)
        ]
    if spc.skip_verify and settings.forbid_spc_skip_tls_verify:
        problems.append("vaultSkipTLSVerify is forbidden by the operator (-forbid-spc-skip-tls-verify)")
    if settings.allowed_tls_directories:
        for name, path in _tls_paths(spc):
            if path and not _inside(path, settings.allowed_tls_directories):
                problems.append(
                    f"{name} {path} is outside the directories this provider allows for TLS files "
                    f"(-allowed-tls-directories: {', '.join(settings.allowed_tls_directories)})"
                )
    if problems:
        raise InvalidRequest(problems)


def _tls_paths(spc: VaultOverrides) -> tuple[tuple[str, str], ...]:
    """The TLS file paths a SecretProviderClass names ("" when unset), each with its parameter."""
    return (
        ("vaultCACertPath", spc.ca_cert),
        ("vaultCADirectory", spc.ca_directory),
        ("vaultTLSClientCertPath", spc.client_cert),
        ("vaultTLSClientKeyPath", spc.client_key),
    )


def _inside(path: str, directories: tuple[str, ...]) -> bool:
    """Whether `path`, with every symlink resolved, lies inside one of `directories` (also resolved)."""
    real = os.path.realpath(path)
    for directory in directories:
        root = os.path.realpath(directory)
        if real == root or real.startswith(root.rstrip("/") + "/"):
            return True
    return False


def _check_addresses(target: VaultTarget) -> None:
    """Each element of the address list on its own; all problems at once."""
    addresses = target.addresses
    problems = []
    where = target.origin()
    for number, address in enumerate(addresses, start=1):
        if not address:
            problems.append(f"{where} has an empty address (element {number} of {len(addresses)})")
        elif address in addresses[: number - 1]:
            problems.append(f"{where} lists {without_userinfo(address)} more than once")
        else:
            try:
                _check_address(target.node(address))
            except InvalidRequest as exc:
                problems += exc.problems
    if problems:
        raise InvalidRequest(problems)


def _check_address(target: VaultTarget) -> None:
    try:
        parts = urlsplit(target.address)
        if parts.scheme != "unix":
            _ = parts.port  # raises for a port that is not a number
    except ValueError:
        raise InvalidRequest(f"Vault address {target.describe()} is not a valid URL") from None
    if parts.scheme.lower() not in SCHEMES:
        raise InvalidRequest(
            f"Vault address {target.describe()} must start with https://, http:// or unix://"
        )
    if parts.scheme.lower() == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise InvalidRequest(f"Vault address {target.describe()} must be unix:///absolute/path/to.sock")
        return
    if "@" in parts.netloc and target.address_source == "spc":
        # Vault takes no user:password, and a SecretProviderClass sits in etcd as plain text.
        raise InvalidRequest(
            f"vaultAddress {target.describe()} carries a user name or password; remove the "
            "user:password@ part (Vault authenticates the pod by its service-account token)"
        )
    # A path prefix is allowed (Vault behind a reverse proxy), as in Go's client.
    if not parts.hostname or parts.query or parts.fragment:
        raise InvalidRequest(f"Vault address {target.describe()} must be scheme://host[:port][/prefix]")
