"""Requests to Vault: one connection pool per address and TLS settings, errors translated here.

This is the only module that speaks HTTP to Vault, with the headers Vault's own
clients send (X-Vault-Token, X-Vault-Namespace, X-Vault-Request). It keeps Vault's
numbers verbatim (Go-compatible output) and turns every urllib3, socket and ssl
exception into our own errors at this boundary.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.ssl_match_hostname import CertificateError as MatchHostnameError

from provider.errors import (
    DeadlineExceeded,
    PermissionDenied,
    ProviderError,
    ResponseTooLarge,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
    redact,
)
from provider.render import gojson
from provider.serve.metrics import Metrics
from provider.settings import TlsSettings
from provider.vault.deadline import Deadline
from provider.vault.retry import RetryPolicy, parse_retry_after, retryable_status
from provider.vault.target import VaultConnection
from provider.vault.transport import connection_pool

__all__ = ["VaultCall", "VaultClient", "VaultReply"]

# Vault's own error texts are short; anything longer is not an error list we show.
MAX_REASON_CHARS = 300
# No single Vault answer is held in memory beyond this (the driver takes 4 MiB per Mount).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_JITTER = secrets.SystemRandom()

log = logging.getLogger("provider.vault")
# Skip-verify is an operator's or SPC author's explicit choice; we log it once per
# connection instead of a Python warning on every request.
urllib3.disable_warnings(InsecureRequestWarning)


@dataclass(frozen=True)
class VaultCall:
    """One HTTP request; body and token are never shown."""

    method: str
    path: str  # starts with /v1/
    query: tuple[tuple[str, str], ...] = ()
    body: str | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)

    def sensitive(self) -> list[str]:
        """The token and every string value of the body: never to be repeated in a message."""
        return [self.token, *(gojson.string_values(self.body) if self.body is not None else [])]

    def kind(self) -> str:
        """The metrics' request kind: login, renew, lookup, revoke, mount-info, read or write."""
        if self.path.startswith("/v1/auth/") and self.path.endswith("/login"):
            return "login"
        special = {
            "/v1/auth/token/renew-self": "renew",
            "/v1/sys/leases/renew": "renew",
            "/v1/sys/leases/lookup": "lookup",
            "/v1/auth/token/revoke-self": "revoke",
        }
        if self.path.startswith("/v1/sys/internal/ui/mounts/"):
            return "mount-info"
        return special.get(self.path) or ("read" if self.method == "GET" else "write")


@dataclass(frozen=True)
class VaultReply:
    status: int
    # Parsed JSON (numbers as gojson.JsonNumber), or None for an empty body.
    payload: Any = field(repr=False)


class VaultClient:
    """Sends calls to Vault, sharing one connection pool per address and TLS settings."""

    def __init__(
        self,
        pool_size: int = 32,
        metrics: Metrics | None = None,
        retry: RetryPolicy | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        random: Callable[[], float] | None = None,
    ) -> None:
        self._pool_size = pool_size
        self._metrics = metrics or Metrics()
        self._retry = retry or RetryPolicy()
        self._max_body_bytes = max_body_bytes
        self._random = random or _JITTER.random
        self._pools: dict[tuple[str, TlsSettings], urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()

    def _pool(self, connection: VaultConnection) -> urllib3.HTTPConnectionPool:
        # The namespace is a header, not a connection property: it is not in the key.
        key = (connection.address, connection.tls)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._new_pool(connection)
                self._pools[key] = pool
            return pool

    def _new_pool(self, connection: VaultConnection) -> urllib3.HTTPConnectionPool:
        log.debug("new connection pool for Vault at %s (%s)", connection.describe(), connection.scheme)
        if connection.scheme == "https" and connection.tls.skip_verify:
            log.warning("TLS certificate verification is disabled for Vault at %s", connection.describe())
        try:
            return connection_pool(connection.address, connection.tls, self._pool_size)
        except (OSError, ssl.SSLError) as exc:
            raise VaultRejected(
                f"cannot set up TLS for Vault at {connection.describe()} with "
                f"{connection.describe_trust()}: {_os_reason(exc)}"
            ) from None

    def call(self, connection: VaultConnection, call: VaultCall, deadline: Deadline) -> VaultReply:
        """Send a request, retrying passing failures within the deadline; 2xx or a ProviderError."""
        retry = 0
        while True:
            try:
                return self._send(connection, call, deadline.remaining())
            except ProviderError as exc:
                retry += 1
                wait = self._retry.delay(retry, exc.retry_after, self._random) if exc.retryable else None
                if wait is None or wait >= deadline.remaining():
                    if retry > 1:
                        exc.args = (f"{exc} (after {retry} attempts)",)
                    raise
                log.debug(
                    "retrying %s %s in %.2fs after: %s",
                    call.method,
                    call.path,
                    wait,
                    exc.status or "no answer",
                )
                deadline.sleep(wait)

    def _send(self, connection: VaultConnection, call: VaultCall, timeout: float) -> VaultReply:
        """One HTTP exchange; its failure says whether it is worth retrying."""
        pool = self._pool(connection)
        headers = {"X-Vault-Request": "true"}
        if call.token:
            headers["X-Vault-Token"] = call.token
        if connection.namespace:
            headers["X-Vault-Namespace"] = connection.namespace
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        prefix = "" if connection.scheme == "unix" else urlsplit(connection.address).path.rstrip("/")
        url = prefix + call.path + (f"?{urlencode(call.query)}" if call.query else "")
        started = time.monotonic()
        kind = call.kind()
        try:
            response = pool.urlopen(
                call.method,
                url,
                body=call.body.encode() if call.body is not None else None,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                preload_content=False,
            )
            try:
                body = _read_capped(response, self._max_body_bytes, call, started + timeout, connection)
            finally:
                response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            self._metrics.vault_request(kind, None)
            raise _connection_error(connection, exc) from None
        self._metrics.vault_request(kind, response.status)
        log.debug(
            "vault %s %s -> %d in %.1f ms",
            call.method,
            call.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return _reply(connection, response.status, response.headers, body, call)


def _read_capped(
    response: urllib3.BaseHTTPResponse, limit: int, call: VaultCall, ends: float, connection: VaultConnection
) -> bytes:
    """The body, holding no more than `limit` bytes and reading no later than `ends` (monotonic).

    The socket timeout bounds each read, not the whole body: a body trickling in a
    byte at a time would otherwise outlive the Mount's deadline.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read1(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(
                f"Vault's answer to {call.method} {call.path} is larger than {limit} bytes"
            )
        if time.monotonic() > ends:
            raise DeadlineExceeded(
                f"Vault at {connection.describe()} was still sending its answer at the Mount's deadline"
            )
        chunks.append(chunk)


def _connection_error(connection: VaultConnection, exc: Exception) -> ProviderError:
    """Our error for a request that got no whole HTTP answer."""
    where = connection.describe()
    if isinstance(exc, urllib3.exceptions.SSLError) or _caused_by(exc, ssl.SSLError):
        server_name = connection.tls.server_name
        return VaultRejected(
            f"TLS with Vault at {where} failed using {connection.describe_trust()}"
            f"{' and server name ' + server_name if server_name else ''}: {_tls_reason(exc)}"
        )
    if isinstance(exc, urllib3.exceptions.NameResolutionError) or _caused_by(exc, socket.gaierror):
        # An unknown host stays unknown: not retried.
        return VaultUnavailable(f"cannot reach Vault at {where}: {_os_reason(exc)}")
    if isinstance(exc, (urllib3.exceptions.NewConnectionError, ConnectionRefusedError)):
        error = VaultUnavailable(f"cannot reach Vault at {where}: {_os_reason(exc)}")
        error.retryable = True
        return error
    if isinstance(exc, (urllib3.exceptions.TimeoutError, TimeoutError)):
        return DeadlineExceeded(f"Vault at {where} did not answer within the Mount's deadline")
    if isinstance(exc, urllib3.exceptions.ProtocolError) and _caused_by(exc, ConnectionError):
        error = VaultUnavailable(f"cannot reach Vault at {where}: {_os_reason(exc)}")
        error.retryable = True
        return error
    if isinstance(exc, (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError)):
        error = VaultUnavailable(f"Vault at {where} cut its answer off before the end")
        error.retryable = True
        return error
    return VaultUnavailable(f"request to Vault at {where} failed: {type(exc).__name__}")


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    current: BaseException | None = exc
    seen = 0
    while current is not None and seen < 20:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__ or _first_arg_exception(current)
        seen += 1
    return False


def _reply(
    connection: VaultConnection, status: int, headers: Any, body: bytes, call: VaultCall
) -> VaultReply:
    payload: Any = None
    parsed = False
    if body.strip():
        try:
            payload = gojson.loads(body)
            parsed = True
        except (ValueError, RecursionError):
            payload = None
    if 200 <= status < 300:
        if body.strip() and not parsed:
            raise VaultUnavailable(
                f"Vault at {connection.describe()} answered {status} with a body that is not JSON"
            )
        return VaultReply(status, payload)
    reasons = _reasons(payload, call)
    error = _status_error(connection, status, reasons, headers.get("Location", ""))
    error.status = status
    error.reasons = reasons
    error.retryable = retryable_status(status)
    error.retry_after = parse_retry_after(headers.get("Retry-After"))
    raise error


def _reasons(payload: Any, call: VaultCall) -> str:
    """Vault's own error strings (the `errors` list), never the rest of the body.

    Vault echoes request values in its errors (a JWT it could not parse, a PKI common
    name), so the call's token and body values are redacted here, before the text is
    shortened: a cut-off token would no longer be recognised later.
    """
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return ""
    reasons = [reason for item in errors if isinstance(item, str) for reason in _split_multierror(item)]
    return redact("; ".join(reasons), call.sensitive())[:MAX_REASON_CHARS]


_MULTIERROR_HEAD = re.compile(r"^\d+ errors? occurred:\s*")


def _split_multierror(text: str) -> list[str]:
    """Vault wraps reasons as '1 error occurred:\\n\\t* permission denied\\n\\n'; keep the reasons."""
    body = _MULTIERROR_HEAD.sub("", text)
    parts = [" ".join(part.split()) for part in re.split(r"\n\s*\* ", "\n" + body)]
    return [part.lstrip("* ") for part in parts if part]


def _status_error(connection: VaultConnection, status: int, reasons: str, location: str) -> ProviderError:
    said = f": {reasons}" if reasons else ""
    where = connection.describe()
    if status == 403 or status == 401:
        return PermissionDenied(f"permission denied ({status}){said}")
    if status == 404:
        return SecretNotFound(f"not found (404){said}")
    if status == 503:
        return VaultUnavailable(f"Vault at {where} is sealed or unavailable (503){said}")
    if status == 429:
        return VaultUnavailable(f"Vault at {where} is rate limiting requests (429){said}")
    if status == 412:
        return VaultUnavailable(f"Vault at {where} has not caught up with a recent write yet (412){said}")
    if status >= 500:
        return VaultUnavailable(f"Vault at {where} failed with HTTP {status}{said}")
    if 300 <= status < 400:
        target = urlsplit(location).netloc if location else "elsewhere"
        return VaultRejected(
            f"Vault at {where} redirected the request ({status}) to {target}; "
            "set the address to the active node or a load balancer in front of Vault"
        )
    return VaultRejected(f"Vault rejected the request (HTTP {status}){said}")


def _os_reason(exc: BaseException) -> str:
    """The innermost OS-level reason (connection refused, no such file, ...), without URLs."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror)
        current = current.__cause__ or current.__context__ or _first_arg_exception(current)
    return type(exc).__name__


def _first_arg_exception(exc: BaseException) -> BaseException | None:
    for arg in exc.args:
        if isinstance(arg, BaseException):
            return arg
        reason = getattr(arg, "reason", None)
        if isinstance(reason, BaseException):
            return reason
    return None


def _tls_reason(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, MatchHostnameError):
            # urllib3 checks a configured server name itself: "hostname 'x' doesn't match ...".
            return str(current)
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "certificate verification failed")
        if isinstance(current, ssl.SSLError):
            return str(current.reason or "TLS handshake failed")
        current = current.__cause__ or current.__context__ or _first_arg_exception(current)
    return "TLS handshake failed"
