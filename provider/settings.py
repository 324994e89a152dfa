"""Process settings from flags and the environment (precedence: environment < flags).

Flags keep the upstream provider's names and Go's flag syntax (`go_syntax`), so the
official Helm chart's arguments work unchanged. SecretProviderClass parameters
override some of these per Mount; that last layer is applied in `mount.target_policy`.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

from provider.address_lists import join_addresses, split_addresses
from provider.go_syntax import FlagError, convert_flag_value, parse_bool, scan_flags

__all__ = [
    "DEFAULT_VAULT_ADDRESS",
    "DRIVER_RECEIVE_LIMIT_BYTES",
    "FlagError",
    "Settings",
    "TlsSettings",
    "parse_bool",
    "parse_settings",
    "usage",
]

DEFAULT_VAULT_ADDRESS = "https://127.0.0.1:8200"
# The driver's default gRPC receive limit (--max-call-recv-msg-size).
DRIVER_RECEIVE_LIMIT_BYTES = 4 * 1024 * 1024
LOG_LEVELS = ("trace", "debug", "info", "warn", "error", "off")
LOG_FORMATS = ("text", "json")
AUDIT_UNCHANGED = ("summary", "full")

Source = Literal["default", "env", "flag", "spc"]


@dataclass(frozen=True)
class TlsSettings:
    """How to verify Vault's certificate and which client certificate to present."""

    ca_cert: str = ""
    ca_directory: str = ""
    server_name: str = ""
    client_cert: str = ""
    client_key: str = ""
    skip_verify: bool = False


@dataclass(frozen=True)
class Settings:
    endpoint: str = "/provider/vault.sock"
    also_serve_as: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "text"
    show_version: bool = False
    health_addr: str = ":8080"
    hmac_secret_name: str = "vault-csi-provider-hmac-key"  # noqa: S105 - a name, not a key
    hmac_key_file: str = ""
    cache_size: int = 1000
    vault_addr: str = DEFAULT_VAULT_ADDRESS
    vault_addr_source: Source = "default"
    vault_mount: str = "kubernetes"
    audience: str = "vault"  # the service-account token's audience for classes that name none
    vault_namespace: str = ""
    tls: TlsSettings = field(default_factory=TlsSettings)
    token_request_fallback: bool = False
    token_revoke_on_evict: bool = False
    shutdown_grace_seconds: float = 20.0
    max_concurrent_mounts: int = 32
    max_response_bytes: int = DRIVER_RECEIVE_LIMIT_BYTES
    max_file_bytes: int = DRIVER_RECEIVE_LIMIT_BYTES
    # Operator guard rails, off by default so existing SecretProviderClasses keep working.
    allowed_vault_addresses: tuple[str, ...] = ()
    allowed_tls_directories: tuple[str, ...] = ()
    forbid_spc_skip_tls_verify: bool = False
    audit_log: str = ""  # empty: no audit records; a file path or "stdout"
    audit_unchanged: str = "summary"
    state_dir: str = ""  # empty: tokens and kept secrets live in memory only

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every socket path to serve on: `endpoint`, then one per `also_serve_as` name beside it."""
        directory = posixpath.dirname(self.endpoint)
        return (self.endpoint, *(posixpath.join(directory, f"{name}.sock") for name in self.also_serve_as))


@dataclass(frozen=True)
class _Flag:
    name: str
    attr: str
    help: str
    kind: Literal["str", "bool", "int", "duration", "list"] = "str"
    env: str | None = None


_FLAGS = (
    _Flag("endpoint", "endpoint", "unix socket path to serve on"),
    _Flag("also-serve-as", "also_serve_as", "more provider names (openbao) served beside -endpoint", "list"),
    _Flag("log-level", "log_level", f"log level: {', '.join(LOG_LEVELS)}"),
    _Flag("log-format", "log_format", "log format: text or json"),
    _Flag("debug", "debug", "deprecated: same as -log-level=debug", "bool"),
    _Flag("version", "show_version", "print the version and exit", "bool"),
    _Flag("health-addr", "health_addr", "address for health (and metrics) HTTP"),
    _Flag("hmac-secret-name", "hmac_secret_name", "Kubernetes Secret holding the versions' HMAC key"),
    _Flag("hmac-key-file", "hmac_key_file", "file holding the versions' HMAC key (e.g. a mounted Secret)"),
    _Flag("cache-size", "cache_size", "how many Vault tokens to cache; 0 or less disables", "int"),
    _Flag(
        "vault-addr",
        "vault_addr",
        "default Vault address (https://, http:// or unix://); several, comma-separated, fail over in order",
        env="VAULT_ADDR",
    ),
    _Flag("vault-mount", "vault_mount", "default auth mount for login"),
    _Flag("audience", "audience", "service-account token audience for classes that set no audience"),
    _Flag("vault-namespace", "vault_namespace", "default Vault namespace", env="VAULT_NAMESPACE"),
    _Flag("vault-tls-ca-cert", "ca_cert", "PEM file of CA certificates for Vault", env="VAULT_CACERT"),
    _Flag("vault-tls-ca-directory", "ca_directory", "directory of PEM CA certificates", env="VAULT_CAPATH"),
    _Flag(
        "vault-tls-server-name",
        "server_name",
        "name to verify Vault's certificate against",
        env="VAULT_TLS_SERVER_NAME",
    ),
    _Flag(
        "vault-tls-client-cert", "client_cert", "PEM client certificate for Vault", env="VAULT_CLIENT_CERT"
    ),
    _Flag("vault-tls-client-key", "client_key", "PEM client key for Vault", env="VAULT_CLIENT_KEY"),
    _Flag(
        "vault-tls-skip-verify",
        "skip_verify",
        "do not verify Vault's certificate (insecure)",
        "bool",
        "VAULT_SKIP_VERIFY",
    ),
    _Flag(
        "token-request-fallback",
        "token_request_fallback",
        "without a driver token for the audience, request one bound to the pod (needs RBAC)",
        "bool",
    ),
    _Flag(
        "token-revoke-on-evict",
        "token_revoke_on_evict",
        "revoke a cached Vault token (and its leases) when it is evicted or replaced",
        "bool",
    ),
    _Flag(
        "shutdown-grace",
        "shutdown_grace_seconds",
        "how long in-flight Mounts may run after SIGTERM",
        "duration",
    ),
    _Flag("max-concurrent-mounts", "max_concurrent_mounts", "Mounts served at once; more wait", "int"),
    _Flag(
        "max-response-bytes", "max_response_bytes", "largest Mount answer (the driver's receive limit)", "int"
    ),
    _Flag("max-file-bytes", "max_file_bytes", "largest single file of a Mount", "int"),
    _Flag(
        "allowed-vault-addresses",
        "allowed_vault_addresses",
        "comma-separated Vault addresses a SecretProviderClass may name (default: any)",
        "list",
    ),
    _Flag(
        "allowed-tls-directories",
        "allowed_tls_directories",
        "comma-separated directories SecretProviderClass TLS files must be in (default: anywhere)",
        "list",
    ),
    _Flag(
        "forbid-spc-skip-tls-verify",
        "forbid_spc_skip_tls_verify",
        "refuse SecretProviderClasses that set vaultSkipTLSVerify: true",
        "bool",
    ),
    _Flag("audit-log", "audit_log", "append one JSON audit record per Mount to this file, or stdout"),
    _Flag(
        "audit-unchanged",
        "audit_unchanged",
        "audit rotation polls that change nothing as a short line (summary) or in full (full)",
    ),
    _Flag(
        "state-dir",
        "state_dir",
        "keep Vault tokens, leases and certificates here (encrypted) across restarts (default: off)",
    ),
)
_BY_NAME = {flag.name: flag for flag in _FLAGS}
_BOOLEANS = {flag.name: flag.kind == "bool" for flag in _FLAGS}
_TLS_ATTRS = {f.name for f in fields(TlsSettings)}
_PROVIDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_LISTEN_ADDRESS = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):[0-9]{1,5}")


def usage() -> str:
    lines = ["Usage: vault-csi-provider [flags]", "       vault-csi-provider mount|lint --help", "", "Flags:"]
    for flag in _FLAGS:
        env = f" (env {flag.env} or {_openbao_env(flag.env)})" if flag.env else ""
        value = "" if flag.kind == "bool" else " value"
        lines.append(f"  -{flag.name}{value}\n        {flag.help}{env}")
    return "\n".join(lines)


def _scan(argv: Sequence[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, text in scan_flags(argv, _BOOLEANS):
        flag = _BY_NAME[name]
        values[flag.attr] = convert_flag_value(flag.kind, text, f"flag -{name}")
    return values


def _openbao_env(name: str) -> str:
    """openbao-csi-provider's name of a `VAULT_*` variable: `BAO_*`. When both are set, `VAULT_*` wins."""
    return "BAO_" + name.removeprefix("VAULT_")


def _from_environment(environ: Mapping[str, str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for flag in _FLAGS:
        if not flag.env:
            continue
        name = flag.env if environ.get(flag.env) else _openbao_env(flag.env)
        if environ.get(name):
            values[flag.attr] = convert_flag_value(flag.kind, environ[name], f"environment variable {name}")
    return values


def parse_settings(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from command-line flags over `VAULT_*` (else `BAO_*`) environment variables over defaults."""
    env_values = _from_environment(os.environ if environ is None else environ)
    flag_values = _scan(argv)
    merged = {**env_values, **flag_values}

    if merged.pop("debug", False) and "log_level" not in flag_values:
        merged["log_level"] = "debug"
    if "vault_addr" in flag_values:
        merged["vault_addr_source"] = "flag"
    elif "vault_addr" in env_values:
        merged["vault_addr_source"] = "env"
    # An empty -vault-addr= means "not set", as in the Go provider.
    if not merged.get("vault_addr"):
        merged.pop("vault_addr", None)
        merged["vault_addr_source"] = "env" if env_values.get("vault_addr") else "default"
        if env_values.get("vault_addr"):
            merged["vault_addr"] = env_values["vault_addr"]

    if "vault_addr" in merged:
        merged["vault_addr"] = join_addresses(split_addresses(str(merged["vault_addr"])))

    if not str(merged.get("audience", "vault")).strip():
        merged.pop("audience")  # -audience= means the default, like an empty -vault-addr=
    tls = TlsSettings(**{key: value for key, value in merged.items() if key in _TLS_ATTRS})  # type: ignore[arg-type]
    plain = {key: value for key, value in merged.items() if key not in _TLS_ATTRS}
    settings = Settings(tls=tls, **plain)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    if settings.log_level not in LOG_LEVELS:
        raise FlagError(f"invalid -log-level {settings.log_level!r}; use one of {', '.join(LOG_LEVELS)}")
    if settings.log_format not in LOG_FORMATS:
        raise FlagError(f"invalid -log-format {settings.log_format!r}; use text or json")
    if settings.vault_namespace and not re.fullmatch(r"[\x21-\x7e]+", settings.vault_namespace):
        raise FlagError("-vault-namespace must be printable ASCII without spaces")
    if not settings.endpoint:
        raise FlagError("-endpoint must not be empty")
    for name in settings.also_serve_as:
        if not _PROVIDER_NAME.fullmatch(name):
            raise FlagError(f"invalid -also-serve-as name {name!r}: a provider name such as openbao")
    if len(set(settings.endpoints)) != len(settings.endpoints):
        raise FlagError("-also-serve-as names a socket twice (or -endpoint's own)")
    if "" in split_addresses(settings.vault_addr):
        raise FlagError("-vault-addr (or VAULT_ADDR) has an empty element; separate addresses by one comma")
    if bool(settings.tls.client_cert) != bool(settings.tls.client_key):
        raise FlagError("-vault-tls-client-cert and -vault-tls-client-key must be given together")
    if settings.health_addr and not _LISTEN_ADDRESS.fullmatch(settings.health_addr):
        raise FlagError(
            f"invalid -health-addr {settings.health_addr!r}: use :port or host:port (empty disables)"
        )
    if settings.max_concurrent_mounts < 1:
        raise FlagError("-max-concurrent-mounts must be at least 1")
    if settings.max_response_bytes < 1 or settings.max_file_bytes < 1:
        raise FlagError("-max-response-bytes and -max-file-bytes must be positive")
    if any(not directory.startswith("/") for directory in settings.allowed_tls_directories):
        raise FlagError("-allowed-tls-directories must list absolute directories")
    if settings.state_dir and not settings.state_dir.startswith("/"):
        raise FlagError("-state-dir must be an absolute directory")
    if settings.audit_unchanged not in AUDIT_UNCHANGED:
        raise FlagError(f"invalid -audit-unchanged {settings.audit_unchanged!r}; use summary or full")
