"""Requests to Vault: one HTTP session per address and TLS settings, errors translated here.

This is the only module that speaks HTTP. hvac builds the requests (token and
namespace headers, X-Vault-Request, URL joining); we keep the status handling
because the provider needs Vault's numbers verbatim (Go-compatible output) and
its own error classes. Every requests/hvac/ssl exception stops at this boundary.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import hvac.adapters
import requests
import urllib3
from urllib3.exceptions import InsecureRequestWarning
from urllib3.util.ssl_match_hostname import CertificateError as MatchHostnameError

from provider import gojson
from provider.connection import VaultConnection
from provider.deadline import Deadline
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
from provider.metrics import Metrics
from provider.retry import RetryPolicy, parse_retry_after, retryable_status
from provider.settings import TlsSettings
from provider.transport import TlsAdapter, UnixSocketAdapter, build_ssl_context

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
        """The metrics' request kind: login, renew, lookup, revoke, read or write."""
        if self.path.startswith("/v1/auth/") and self.path.endswith("/login"):
            return "login"
        special = {
            "/v1/auth/token/renew-self": "renew",
            "/v1/sys/leases/renew": "renew",
            "/v1/sys/leases/lookup": "lookup",
            "/v1/auth/token/revoke-self": "revoke",
        }
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
        self._sessions: dict[tuple[str, TlsSettings], requests.Session] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()

    def _session(self, connection: VaultConnection) -> requests.Session:
        # The namespace is a header, not a connection property: it is not in the key.
        key = (connection.address, connection.tls)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._new_session(connection)
                self._sessions[key] = session
            return session

    def _new_session(self, connection: VaultConnection) -> requests.Session:
        log.debug("new connection pool for Vault at %s (%s)", connection.describe(), connection.scheme)
        tls = connection.tls
        if connection.scheme == "https" and tls.skip_verify:
            log.warning("TLS certificate verification is disabled for Vault at %s", connection.describe())
        session = requests.Session()
        session.trust_env = False  # no ~/.netrc or REQUESTS_CA_BUNDLE surprises
        if connection.scheme == "unix":
            session.mount("http://", UnixSocketAdapter(urlsplit(connection.address).path, self._pool_size))
        elif connection.scheme == "https":
            try:
                context = build_ssl_context(tls)
            except (OSError, ssl.SSLError) as exc:
                raise VaultRejected(
                    f"cannot set up TLS for Vault at {connection.describe()} with "
                    f"{connection.describe_trust()}: {_os_reason(exc)}"
                ) from None
            session.mount("https://", TlsAdapter(context, tls.server_name, self._pool_size))
        else:
            session.mount(
                "http://", requests.adapters.HTTPAdapter(pool_maxsize=self._pool_size, max_retries=0)
            )
        return session

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
        session = self._session(connection)
        base_uri = "http://localhost" if connection.scheme == "unix" else connection.address
        adapter = hvac.adapters.RawAdapter(
            base_uri=base_uri,
            token=call.token or None,
            namespace=connection.namespace or None,
            session=session,
            allow_redirects=False,
            timeout=timeout,
        )
        headers = {"Content-Type": "application/json"} if call.body is not None else {}
        started = time.monotonic()
        kind = call.kind()
        try:
            response = adapter.request(
                call.method,
                call.path,
                headers=headers,
                raise_exception=False,
                params=list(call.query) or None,
                data=call.body.encode() if call.body is not None else None,
                stream=True,
            )
            with response, _broken_reads_as_requests_errors():
                body = _read_capped(response, self._max_body_bytes, call, started + timeout, connection)
        except requests.exceptions.RequestException as exc:
            self._metrics.vault_request(kind, None)
            raise _connection_error(connection, exc) from None
        self._metrics.vault_request(kind, response.status_code)
        log.debug(
            "vault %s %s -> %d in %.1f ms",
            call.method,
            call.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        return _reply(connection, response, body, call)


@contextmanager
def _broken_reads_as_requests_errors() -> Iterator[None]:
    """urllib3's errors while reading a streamed body, as the requests errors they mean."""
    try:
        yield
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.exceptions.ReadTimeout(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc


def _read_capped(
    response: requests.Response, limit: int, call: VaultCall, ends: float, connection: VaultConnection
) -> bytes:
    """The body, holding no more than `limit` bytes and reading no later than `ends` (monotonic).

    The socket timeout bounds each read, not the whole body: a body trickling in a
    byte at a time would otherwise outlive the Mount's deadline.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.raw.read1(64 * 1024, decode_content=True)
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


def _connection_error(
    connection: VaultConnection, exc: requests.exceptions.RequestException
) -> ProviderError:
    """Our error for a request that got no HTTP answer at all."""
    where = connection.describe()
    if isinstance(exc, requests.exceptions.SSLError):
        server_name = connection.tls.server_name
        return VaultRejected(
            f"TLS with Vault at {where} failed using {connection.describe_trust()}"
            f"{' and server name ' + server_name if server_name else ''}: {_tls_reason(exc)}"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return DeadlineExceeded(f"Vault at {where} did not answer within the Mount's deadline")
    if isinstance(exc, requests.exceptions.ConnectionError):
        error = VaultUnavailable(f"cannot reach Vault at {where}: {_os_reason(exc)}")
        # An unknown host stays unknown; a refused or reset connection may not.
        error.retryable = not _caused_by(exc, socket.gaierror)
        return error
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
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
    connection: VaultConnection, response: requests.Response, body: bytes, call: VaultCall
) -> VaultReply:
    status = response.status_code
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
    error = _status_error(connection, status, reasons, response.headers.get("Location", ""))
    error.status = status
    error.reasons = reasons
    error.retryable = retryable_status(status)
    error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
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
