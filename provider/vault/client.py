"""Requests to Vault: headers, one transport per address and TLS settings, retries within the deadline.

This is the only module that speaks Vault's HTTP API, with the headers Vault's own
clients send (X-Vault-Token, X-Vault-Namespace, X-Vault-Request). Bytes travel through
a `Transport` (the seam tests use); answers become replies or errors in `replies`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Protocol

from provider.errors import ProviderError
from provider.request.vault_request import VaultRequest
from provider.settings import TlsSettings
from provider.vault.deadline import Deadline
from provider.vault.replies import VaultReply, reply_or_error
from provider.vault.retry import RetryPolicy
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, Transport, TransportFactory

__all__ = ["JITTER", "RequestCounter", "Uncounted", "VaultClient", "VaultReply", "request_kind"]

JITTER = secrets.SystemRandom()

log = logging.getLogger("provider.vault")

_SPECIAL_KINDS = {
    "/v1/auth/token/renew-self": "renew",
    "/v1/sys/leases/renew": "renew",
    "/v1/sys/leases/lookup": "lookup",
    "/v1/auth/token/lookup-self": "lookup",
    "/v1/auth/token/revoke-self": "revoke",
}


class RequestCounter(Protocol):
    """Counts Vault requests by kind and HTTP status (None: no answer); the metrics implement it."""

    def vault_request(self, kind: str, status: int | None) -> None: ...


class Uncounted:
    """A RequestCounter for tools that keep no metrics (`lint --vault`)."""

    def vault_request(self, kind: str, status: int | None) -> None:
        """Counts nothing."""


def request_kind(request: VaultRequest) -> str:
    """The metrics' request kind: login, renew, lookup, revoke, mount-info, read or write."""
    if request.path.startswith("/v1/auth/") and request.path.endswith("/login"):
        return "login"
    if request.path.startswith("/v1/sys/internal/ui/mounts/"):
        return "mount-info"
    return _SPECIAL_KINDS.get(request.path) or ("read" if request.method == "GET" else "write")


class VaultClient:
    """Sends requests to Vault targets, sharing one transport per address and TLS settings."""

    def __init__(
        self,
        transports: TransportFactory,
        counter: RequestCounter,
        retry: RetryPolicy,
        random: Callable[[], float] = JITTER.random,
    ) -> None:
        self._make_transport = transports
        self._counter = counter
        self._retry = retry
        self._random = random
        self._transports: dict[tuple[str, TlsSettings], Transport] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for transport in self._transports.values():
                transport.close()
            self._transports.clear()

    def send(
        self, target: VaultTarget, request: VaultRequest, deadline: Deadline, token: str = ""
    ) -> VaultReply:
        """The 2xx reply, retrying passing failures within the deadline; else a ProviderError."""
        retry = 0
        while True:
            try:
                return self._send_once(target, request, token, deadline.remaining())
            except ProviderError as exc:
                retry += 1
                wait = self._retry.delay(retry, exc.retry_after, self._random) if exc.retryable else None
                if wait is None or wait >= deadline.remaining():
                    if retry > 1:
                        raise exc.reworded(f"{exc} (after {retry} attempts)") from None
                    raise
                log.debug(
                    "retrying %s %s in %.2fs after: %s",
                    request.method,
                    request.path,
                    wait,
                    exc.status or "no answer",
                )
                deadline.sleep(wait)

    def _transport(self, target: VaultTarget) -> Transport:
        # The namespace is a header, not a connection property: it is not in the key.
        key = (target.address, target.tls)
        with self._lock:
            transport = self._transports.get(key)
            if transport is None:
                log.debug("new connection pool for Vault at %s (%s)", target.describe(), target.scheme)
                if target.scheme == "https" and target.tls.skip_verify:
                    log.warning("TLS certificate verification is disabled for Vault at %s", target.describe())
                transport = self._make_transport(target)
                self._transports[key] = transport
            return transport

    def _send_once(
        self, target: VaultTarget, request: VaultRequest, token: str, timeout: float
    ) -> VaultReply:
        """One exchange; its failure says whether it is worth retrying."""
        transport = self._transport(target)
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        if target.namespace:
            headers["X-Vault-Namespace"] = target.namespace
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        body = request.body.encode() if request.body is not None else None
        exchange = HttpRequest(request.method, request.path, request.query, headers, body)
        kind = request_kind(request)
        started = time.monotonic()
        try:
            response = transport.send(exchange, timeout)
        except ProviderError:
            self._counter.vault_request(kind, None)
            raise
        self._counter.vault_request(kind, response.status)
        log.debug(
            "vault %s %s -> %d in %.1f ms",
            request.method,
            request.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        sensitive = [token, *request.argument_values()]
        return reply_or_error(target, response.status, response.headers, response.body, sensitive)
