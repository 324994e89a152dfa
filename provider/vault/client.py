"""Requests to Vault: headers, one transport per node and TLS settings, failover, retries within the deadline.

This is the only module that speaks Vault's HTTP API, with the headers Vault's own
clients send (X-Vault-Token, X-Vault-Namespace, X-Vault-Request). Bytes travel through
a `Transport` (the seam tests use); answers become replies or errors in `replies`.
With several addresses it asks the nodes in the order `failover` gives, passes a node
over when `failover` says so, and follows the redirects `failover` allows.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from provider.errors import ProviderError, VaultRejected
from provider.request.vault_request import VaultRequest
from provider.settings import TlsSettings
from provider.vault.deadline import Deadline
from provider.vault.failover import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_REDIRECTS,
    REDIRECTS,
    StickyNodes,
    failover_reason,
    redirect_base,
    round_error,
)
from provider.vault.replies import VaultReply, reply_or_error
from provider.vault.retry import RetryPolicy
from provider.vault.target import VaultTarget, without_userinfo
from provider.vault.tls_files import RECHECK_SECONDS, FileState, has_tls_files, tls_files_state
from provider.vault.transport import HttpRequest, HttpResponse, Transport, TransportFactory

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

    def vault_failover(self, reason: str) -> None:
        """A node of several could not serve and the next was asked (unreachable, sealed, standby)."""


class Uncounted:
    """A RequestCounter for tools that keep no metrics (`lint --vault`)."""

    def vault_request(self, kind: str, status: int | None) -> None:
        """Counts nothing."""

    def vault_failover(self, reason: str) -> None:
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
        self._transports: dict[tuple[str, TlsSettings], _Pool] = {}
        self._sticky = StickyNodes()
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            for pool in self._transports.values():
                pool.transport.close()
            self._transports.clear()

    def send(
        self, target: VaultTarget, request: VaultRequest, deadline: Deadline, token: str = ""
    ) -> VaultReply:
        """The 2xx reply, retrying passing failures within the deadline; else a ProviderError.

        With several addresses, one attempt is a round over the nodes (`_round`); when every
        node failed over, the next round follows the usual back-off, and rounds go on for
        as long as the deadline allows: an election takes seconds, not three quick tries.
        """
        retry = 0
        while True:
            try:
                outcome = self._round(target, request, token, deadline)
            except ProviderError as exc:
                error, whole_round = exc, False
            else:
                if isinstance(outcome, VaultReply):
                    return outcome
                error, whole_round = outcome.error, True
            retry += 1
            # Rounds over every node go on while the deadline allows; other failures keep the policy's count.
            count = min(retry, self._retry.attempts - 1) if whole_round else retry
            wait = self._retry.delay(count, error.retry_after, self._random) if error.retryable else None
            if wait is None or wait >= deadline.remaining():
                if retry > 1:
                    raise error.reworded(f"{error} (after {retry} attempts)") from None
                raise error
            log.debug(
                "retrying %s %s in %.2fs after: %s",
                request.method,
                request.path,
                wait,
                error.status or "no answer",
            )
            deadline.sleep(wait)

    def _round(
        self, target: VaultTarget, request: VaultRequest, token: str, deadline: Deadline
    ) -> VaultReply | _RoundFailed:
        """The reply of the first node that can serve, starting with the one that last could."""
        several = len(target.addresses) > 1
        exchange = _exchange(target, request, token, CONNECT_TIMEOUT_SECONDS if several else None)
        key = (target.address, target.tls)
        failures: list[ProviderError] = []
        for address in self._sticky.order(key, target.addresses):
            try:
                answered = self._following_redirects(target, address, request, exchange, deadline)
            except ProviderError as exc:
                reason = failover_reason(exc) if several else None
                if reason is None:
                    raise
                log.debug("Vault node %s failed over (%s): %s", without_userinfo(address), reason, exc)
                self._counter.vault_failover(reason)
                failures.append(exc)
                continue
            serving = answered.node if answered.node in target.addresses else address
            previous = self._sticky.worked(key, serving) or target.addresses[0]
            if previous != serving:
                log.warning(
                    "Vault %s: now using node %s instead of %s",
                    target.describe(),
                    without_userinfo(serving),
                    without_userinfo(previous),
                )
            return answered.reply
        return _RoundFailed(round_error(failures))

    def _following_redirects(
        self,
        target: VaultTarget,
        address: str,
        request: VaultRequest,
        exchange: HttpRequest,
        deadline: Deadline,
    ) -> _Answered:
        """One node's reply, after following its redirects into allowed addresses (at most a few)."""
        sensitive = [exchange.headers.get("X-Vault-Token", ""), *request.argument_values()]
        node = target.node(address)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(node, exchange, request_kind(request), deadline.remaining())
            location = response.headers.get("Location", "") if response.status in REDIRECTS else ""
            base = redirect_base(location, target, exchange.path) if location else None
            if base is None:
                reply = reply_or_error(node, response.status, response.headers, response.body, sensitive)
                return _Answered(reply, node.address)
            log.debug(
                "following a %d from %s to %s", response.status, node.describe(), without_userinfo(base)
            )
            node = target.node(base)
        raise VaultRejected(
            f"Vault at {target.node(address).describe()} redirected {request.method} {request.path} "
            f"more than {MAX_REDIRECTS} times; list the cluster's nodes, or put a load balancer "
            "in front of Vault"
        )

    def _transport(self, target: VaultTarget) -> Transport:
        # The namespace is a header, not a connection property: it is not in the key.
        key = (target.address, target.tls)
        watched = target.scheme == "https" and has_tls_files(target.tls)
        now = time.monotonic()
        with self._lock:
            pool = self._transports.get(key)
            if pool is not None and (not watched or now - pool.checked_at < RECHECK_SECONDS):
                return pool.transport
        files = tls_files_state(target.tls) if watched else ()
        with self._lock:
            pool = self._transports.get(key)
            if pool is not None and (pool.files == files or None in files):
                # Unchanged, or a file missing mid-rotation: keep the pool until the new files are whole.
                self._transports[key] = replace(pool, checked_at=now)
                return pool.transport
            if pool is None:
                log.debug("new connection pool for Vault at %s (%s)", target.describe(), target.scheme)
                if target.scheme == "https" and target.tls.skip_verify:
                    log.warning("TLS certificate verification is disabled for Vault at %s", target.describe())
            else:
                log.info(
                    "TLS files for Vault at %s changed on disk: new connections use them", target.describe()
                )
            try:
                transport = self._make_transport(target)
            except ProviderError as exc:
                if pool is None:
                    raise
                # Half-rotated (a certificate without its new key): the old files' pool until it settles.
                log.warning("keeping the previous TLS setup for Vault at %s: %s", target.describe(), exc)
                self._transports[key] = replace(pool, checked_at=now)
                return pool.transport
            self._transports[key] = _Pool(transport, files, now)
        if pool is not None:
            pool.transport.close()  # idle connections now; ones in use close when they come back
        return transport

    def _send_once(self, node: VaultTarget, exchange: HttpRequest, kind: str, timeout: float) -> HttpResponse:
        """One exchange with one node: its whole answer, or a failure saying whether a retry may help."""
        transport = self._transport(node)
        started = time.monotonic()
        try:
            response = transport.send(exchange, timeout)
        except ProviderError:
            self._counter.vault_request(kind, None)
            raise
        self._counter.vault_request(kind, response.status)
        log.debug(
            "vault %s %s -> %d in %.1f ms",
            exchange.method,
            exchange.path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        return response


@dataclass(frozen=True)
class _Pool:
    """A node's transport, the TLS files it was made from, and when they were last compared."""

    transport: Transport
    files: FileState
    checked_at: float


@dataclass(frozen=True)
class _RoundFailed:
    """Every node of the target failed over in one round; `error` says how, node by node."""

    error: ProviderError


@dataclass(frozen=True)
class _Answered:
    """A node's reply and the node that gave it (another one when a redirect was followed)."""

    reply: VaultReply
    node: str


def _exchange(
    target: VaultTarget, request: VaultRequest, token: str, connect_timeout: float | None
) -> HttpRequest:
    """The HTTP request for `request`, with the headers Vault's own clients send."""
    headers = {"X-Vault-Request": "true"}
    if token:
        headers["X-Vault-Token"] = token
    if target.namespace:
        headers["X-Vault-Namespace"] = target.namespace
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    body = request.body.encode() if request.body is not None else None
    return HttpRequest(request.method, request.path, request.query, headers, body, connect_timeout)
