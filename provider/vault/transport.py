"""How bytes reach Vault: the Transport seam, and the urllib3 transport behind it.

A transport sends one HTTP request to one Vault target and returns the whole answer,
or raises one of our errors saying whether sending again may help. It never retries,
never follows a redirect, and never reads a body past its size limit or its deadline.
Everything above it (headers, status codes, retries) is the same for every transport,
so tests drive the client in-process with a transport of their own, the shape of
httpx's MockTransport.

The urllib3 transport keeps one pool per Vault address and TLS settings, shared by
all pods: TLS exactly as configured (`tls`), and unix:// addresses for the Helm
chart's Agent sidecar. requests and hvac were measured at 0.55 ms more per Vault call
than this on the same OpenBao, most of a Mount's own cost.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InsecureRequestWarning

from provider.errors import DeadlineExceeded, ResponseTooLarge, VaultRejected
from provider.vault.target import VaultTarget
from provider.vault.tls import build_ssl_context
from provider.vault.transport_errors import os_reason, transport_error
from provider.vault.unix_socket import UnixSocketPool

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HttpRequest",
    "HttpResponse",
    "Transport",
    "TransportFactory",
    "Urllib3Transport",
    "urllib3_transports",
]

# No single Vault answer is held in memory beyond this (the driver takes 4 MiB per Mount).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_READ_CHUNK = 64 * 1024

# Skip-verify is an operator's or SPC author's explicit choice; the client logs it once
# per pool instead of a Python warning on every request.
urllib3.disable_warnings(InsecureRequestWarning)


@dataclass(frozen=True)
class HttpRequest:
    """One exchange as the client builds it; headers and body may carry secrets and are never shown."""

    method: str
    path: str  # /v1/..., without the address's own path prefix
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes | None = field(default=None, repr=False)
    # A bound on connecting alone, below the whole timeout (set when other nodes could be asked).
    connect_timeout: float | None = None

    def describe(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class HttpResponse:
    """A whole answer. `headers` looks names up as HTTP does (any case) for the urllib3 transport."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)


class Transport(Protocol):
    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        """The answer within `timeout` seconds, or a ProviderError (retryable where a retry may help)."""

    def close(self) -> None: ...


#: Makes the transport for a target; called once per address and TLS settings.
TransportFactory = Callable[[VaultTarget], Transport]


class Urllib3Transport:
    """HTTP(S) or a unix socket to one Vault target, through a urllib3 pool."""

    def __init__(self, target: VaultTarget, pool_size: int, max_body_bytes: int) -> None:
        self._target = target
        self._max_body_bytes = max_body_bytes
        parts = urlsplit(target.address)
        self._prefix = "" if target.scheme == "unix" else parts.path.rstrip("/")
        try:
            self._pool = _pool(target, pool_size)
        except (OSError, ssl.SSLError) as exc:
            raise VaultRejected(
                f"cannot set up TLS for Vault at {target.describe()} with "
                f"{target.describe_trust()}: {os_reason(exc)}"
            ) from None

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        url = self._prefix + request.path + (f"?{urlencode(request.query)}" if request.query else "")
        started = time.monotonic()
        connect = min(timeout, request.connect_timeout) if request.connect_timeout else timeout
        try:
            response = self._pool.urlopen(
                request.method,
                url,
                body=request.body,
                headers=dict(request.headers),
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=connect, read=timeout),
                preload_content=False,
            )
            try:
                body = self._read_capped(response, request, started + timeout)
            finally:
                response.release_conn()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise transport_error(self._target, exc, connect if connect < timeout else None) from None
        return HttpResponse(response.status, response.headers, body)

    def close(self) -> None:
        self._pool.close()

    def _read_capped(self, response: urllib3.BaseHTTPResponse, request: HttpRequest, ends: float) -> bytes:
        """The body, holding no more than the limit and reading no later than `ends` (monotonic).

        The socket timeout bounds each read, not the whole body: a body trickling in a
        byte at a time would otherwise outlive the Mount's deadline.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = response.read1(_READ_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_body_bytes:
                raise ResponseTooLarge(
                    f"Vault's answer to {request.describe()} is larger than {self._max_body_bytes} bytes"
                )
            if time.monotonic() > ends:
                raise DeadlineExceeded(
                    f"Vault at {self._target.describe()} was still sending its answer at the Mount's deadline"
                )
            chunks.append(chunk)


def _pool(target: VaultTarget, pool_size: int) -> HTTPConnectionPool:
    """A urllib3 pool for one Vault address: https with our SSLContext, http, or a unix socket."""
    parts = urlsplit(target.address)
    if parts.scheme == "unix":
        return UnixSocketPool(parts.path, pool_size)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "http":
        return HTTPConnectionPool(host, port, maxsize=pool_size)
    tls = target.tls
    extra = (
        {"server_hostname": tls.server_name, "assert_hostname": tls.server_name} if tls.server_name else {}
    )
    return HTTPSConnectionPool(
        host,
        port,
        maxsize=pool_size,
        ssl_context=build_ssl_context(tls),
        cert_reqs=ssl.CERT_NONE if tls.skip_verify else ssl.CERT_REQUIRED,
        **extra,  # type: ignore[arg-type]
    )


def urllib3_transports(pool_size: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> TransportFactory:
    """The production factory: a urllib3 transport per target, `pool_size` connections each."""

    def make(target: VaultTarget) -> Transport:
        return Urllib3Transport(target, pool_size, max_body_bytes)

    return make
