"""How bytes reach Vault: the Transport seam, and our HTTP/1.1 transport behind it.

A transport sends one HTTP request to one Vault target and returns the whole answer,
or raises one of our errors saying whether sending again may help. It never retries a
request Vault may have seen, never follows a redirect, and never reads a body past its
size limit or its deadline. Everything above it (headers, status codes, retries) is the
same for every transport, so tests drive the client in-process with a transport of their
own, the shape of httpx's MockTransport.

The production transport keeps a pool of keep-alive connections per Vault address and
TLS settings, shared by all pods, and speaks HTTP/1.1 itself (`http11`, `endpoint`) on
the standard library's socket and ssl: urllib3 and http.client were a fifth to a third
of a warm poll's CPU. requests and hvac were measured at 0.55 ms more per Vault call
than urllib3 on the same OpenBao (README, Dependencies).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from provider import PROVIDER_NAME, __version__
from provider.errors import DeadlineExceeded, ResponseTooLarge, VaultRejected
from provider.vault.endpoint import ConnectFailed, Endpoint
from provider.vault.http11 import AnswerBroken, BodyPastDeadline, BodyTooLarge, request_head
from provider.vault.pool import ConnectionPool
from provider.vault.target import VaultTarget
from provider.vault.transport_errors import os_reason, transport_error

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Http11Transport",
    "HttpRequest",
    "HttpResponse",
    "Transport",
    "TransportFactory",
    "http11_transports",
]

# No single Vault answer is held in memory beyond this (the driver takes 4 MiB per Mount).
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
_USER_AGENT = {"User-Agent": f"{PROVIDER_NAME}/{__version__}"}


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
    """A whole answer. `headers` looks names up as HTTP does (any case) for the real transport."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = field(default=b"", repr=False)


class Transport(Protocol):
    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        """The answer within `timeout` seconds, or a ProviderError (retryable where a retry may help)."""

    def close(self) -> None: ...


#: Makes the transport for a target; called once per address and TLS settings.
TransportFactory = Callable[[VaultTarget], Transport]


class Http11Transport:
    """HTTP(S) or a unix socket to one Vault target, over a pool of keep-alive connections.

    At most `pool_size` idle connections are kept (`pool`).
    """

    def __init__(self, target: VaultTarget, pool_size: int, max_body_bytes: int) -> None:
        self._target = target
        self._max_body_bytes = max_body_bytes
        parts = urlsplit(target.address)
        self._prefix = "" if target.scheme == "unix" else parts.path.rstrip("/")
        try:
            self._endpoint = Endpoint.of(target)
        except (OSError, ssl.SSLError) as exc:
            raise VaultRejected(
                f"cannot set up TLS for Vault at {target.describe()} with "
                f"{target.describe_trust()}: {os_reason(exc)}"
            ) from None
        self._pool = ConnectionPool(self._endpoint, pool_size, max_body_bytes)

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        started = time.monotonic()
        connect = min(timeout, request.connect_timeout) if request.connect_timeout else timeout
        url = self._prefix + request.path + (f"?{urlencode(request.query)}" if request.query else "")
        try:
            headers = {**_USER_AGENT, **request.headers}
            head = request_head(request.method, url, self._endpoint.host_header, headers, request.body)
        except ValueError as exc:
            where = self._target.describe()
            raise VaultRejected(f"cannot send {request.describe()} to Vault at {where}: {exc}") from None
        if request.body:
            head += request.body
        try:
            answer = self._pool.exchange(head, request.method, connect, started + timeout)
        except BodyTooLarge:
            raise ResponseTooLarge(
                f"Vault's answer to {request.describe()} is larger than {self._max_body_bytes} bytes"
            ) from None
        except BodyPastDeadline:
            raise DeadlineExceeded(
                f"Vault at {self._target.describe()} was still sending its answer at the Mount's deadline"
            ) from None
        except (OSError, ssl.SSLError, ConnectFailed, AnswerBroken) as exc:
            raise transport_error(self._target, exc, connect if connect < timeout else None) from None
        return HttpResponse(answer.status, answer.headers, answer.body)

    def close(self) -> None:
        """Closes the idle connections now; ones in use are closed when they come back."""
        self._pool.close()


def http11_transports(pool_size: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> TransportFactory:
    """The production factory: an HTTP/1.1 transport per target, up to `pool_size` idle connections each."""

    def make(target: VaultTarget) -> Transport:
        return Http11Transport(target, pool_size, max_body_bytes)

    return make
