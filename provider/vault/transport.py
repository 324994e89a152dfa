"""How bytes reach Vault: the Transport seam, and our HTTP/1.1 transport behind it.

A transport sends one HTTP request to one Vault target and returns the whole answer,
or raises one of our errors saying whether sending again may help. It never retries a
request Vault may have seen, never follows a redirect, and never reads a body past its
size limit or its deadline. `begin` sends a request and leaves its answer to read later,
so one thread can have all of a Mount's requests at Vault at once. Everything above it
(headers, status codes, retries) is the same for every transport, so tests drive the
client in-process with a transport of their own, the shape of httpx's MockTransport.

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
from provider.errors import DeadlineExceeded, ProviderError, ResponseTooLarge, VaultRejected
from provider.vault.endpoint import ConnectFailed, Endpoint
from provider.vault.http11 import AnswerBroken, BodyPastDeadline, BodyTooLarge, request_head
from provider.vault.pool import ConnectionPool, InFlight
from provider.vault.target import VaultTarget
from provider.vault.transport_errors import os_reason, transport_error

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Http11Transport",
    "HttpRequest",
    "HttpResponse",
    "Pending",
    "Transport",
    "TransportFactory",
    "begin",
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


class Pending(Protocol):
    """A request on its way: `answer()` is its response, or the error `send` would have raised."""

    def answer(self) -> HttpResponse: ...


def begin(transport: Transport, request: HttpRequest, timeout: float) -> Pending:
    """Sends `request` now if the transport can keep several out at once (ours can), else at `answer()`.

    Test transports need only `send`: theirs are then asked one at a time, as before.
    """
    sends_ahead = getattr(transport, "begin", None)
    if sends_ahead is not None:
        pending: Pending = sends_ahead(request, timeout)
        return pending
    return _Later(transport, request, time.monotonic() + timeout)


@dataclass(frozen=True)
class _Later:
    transport: Transport
    request: HttpRequest
    ends: float

    def answer(self) -> HttpResponse:
        return self.transport.send(self.request, self.ends - time.monotonic())


@dataclass(frozen=True)
class _Refused:
    """A request that could not even be written (an unsafe header): its error, raised in its turn."""

    error: ProviderError

    def answer(self) -> HttpResponse:
        raise self.error


@dataclass(frozen=True)
class _Answering:
    transport: Http11Transport
    request: HttpRequest
    flight: InFlight
    connect: float | None  # the connect bound, when it was below the whole timeout

    def answer(self) -> HttpResponse:
        return self.transport.answer(self.request, self.flight, self.connect)


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
        return self.begin(request, timeout).answer()

    def begin(self, request: HttpRequest, timeout: float) -> Pending:
        """Sends `request` now and returns its answer to read later: a Mount's reads go out together."""
        started = time.monotonic()
        connect = min(timeout, request.connect_timeout) if request.connect_timeout else timeout
        url = self._prefix + request.path + (f"?{urlencode(request.query)}" if request.query else "")
        try:
            headers = {**_USER_AGENT, **request.headers}
            head = request_head(request.method, url, self._endpoint.host_header, headers, request.body)
        except ValueError as exc:
            where = self._target.describe()
            return _Refused(VaultRejected(f"cannot send {request.describe()} to Vault at {where}: {exc}"))
        if request.body:
            head += request.body
        flight = self._pool.begin(head, request.method, connect, started + timeout)
        return _Answering(self, request, flight, connect if connect < timeout else None)

    def answer(self, request: HttpRequest, flight: InFlight, connect: float | None) -> HttpResponse:
        """The response to a request `begin` sent, or our error for what went wrong on the way."""
        try:
            answer = flight.answer()
        except BodyTooLarge:
            raise ResponseTooLarge(
                f"Vault's answer to {request.describe()} is larger than {self._max_body_bytes} bytes"
            ) from None
        except BodyPastDeadline:
            raise DeadlineExceeded(
                f"Vault at {self._target.describe()} was still sending its answer at the Mount's deadline"
            ) from None
        except (OSError, ssl.SSLError, ConnectFailed, AnswerBroken) as exc:
            raise transport_error(self._target, exc, connect) from None
        return HttpResponse(answer.status, answer.headers, answer.body)

    def close(self) -> None:
        """Closes the idle connections now; ones in use are closed when they come back."""
        self._pool.close()


def http11_transports(pool_size: int, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> TransportFactory:
    """The production factory: an HTTP/1.1 transport per target, up to `pool_size` idle connections each."""

    def make(target: VaultTarget) -> Transport:
        return Http11Transport(target, pool_size, max_body_bytes)

    return make
