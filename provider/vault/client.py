"""Requests to Vault: headers, failover, retries within the deadline, a Mount's requests sent together.

This is the only module that speaks Vault's HTTP API, with the headers Vault's own
clients send (X-Vault-Token, X-Vault-Namespace, X-Vault-Request). Bytes travel through
a `Transport` (the seam tests use; one per node and TLS settings, `transports`), and
answers become replies or errors in `replies`. With several addresses it asks the
nodes in the order `failover` gives, passes a node over when `failover` says so, and
follows the redirects `failover` allows. `send_all` writes a Mount's requests before
it reads any answer, so Vault serves them together without a thread each.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from provider.errors import ProviderError, VaultRejected
from provider.request.vault_request import VaultRequest
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
from provider.vault.request_counts import RequestCounter, request_kind
from provider.vault.retry import RetryPolicy, retry_fits
from provider.vault.target import VaultTarget, without_userinfo
from provider.vault.transport import HttpRequest, HttpResponse, Pending, TransportFactory, begin
from provider.vault.transports import Transports

__all__ = ["JITTER", "MAX_SENT_AHEAD", "VaultClient", "VaultReply"]

JITTER = secrets.SystemRandom()
MAX_SENT_AHEAD = 16

log = logging.getLogger("provider.vault")


class VaultClient:
    """Sends requests to Vault targets, sharing one transport per address and TLS settings."""

    def __init__(
        self,
        transports: TransportFactory,
        counter: RequestCounter,
        retry: RetryPolicy,
        random: Callable[[], float] = JITTER.random,
    ) -> None:
        self._transports = Transports(transports)
        self._counter = counter
        self._retry = retry
        self._random = random
        self._sticky = StickyNodes()
        # Requests sent ahead by all Mounts together, beyond each Mount's first: Vault's load
        # stays bounded in a mount storm (as by the fetch thread pool this replaced).
        self._ahead = threading.BoundedSemaphore(MAX_SENT_AHEAD)

    def close(self) -> None:
        self._transports.close()

    def send_all(
        self, target: VaultTarget, requests: Sequence[VaultRequest], deadline: Deadline, token: str = ""
    ) -> list[VaultReply | ProviderError]:
        """Each request's outcome as `send` has it, every first attempt written before any answer is read.

        Vault answers them at once, as it would a thread per request, but from this one thread:
        a Mount's parallel reads cost no hand-offs between threads. Retries, failover and
        redirects then go on request by request, exactly as `send` does them.

        A Mount's first request always goes at once; the others go ahead while fewer than
        MAX_SENT_AHEAD are out for all Mounts, else each in its turn after the answers before
        it. Never waiting for a permit, a Mount cannot hold some while it waits for more.
        """
        primed = [
            self._prime(target, request, token, deadline)
            if index == 0 or self._ahead.acquire(blocking=False)
            else None
            for index, request in enumerate(requests)
        ]
        permits = sum(first is not None for first in primed[1:])
        outcomes: list[VaultReply | ProviderError] = []
        try:
            for request, first in zip(requests, primed, strict=True):
                try:
                    outcomes.append(self.send(target, request, deadline, token, first))
                except ProviderError as exc:
                    outcomes.append(exc)
        finally:
            for _ in range(permits):
                self._ahead.release()
        return outcomes

    def send(
        self,
        target: VaultTarget,
        request: VaultRequest,
        deadline: Deadline,
        token: str = "",
        primed: _Primed | None = None,
    ) -> VaultReply:
        """The 2xx reply, retrying passing failures within the deadline; else a ProviderError.

        With several addresses, one attempt is a round over the nodes (`_round`); when every
        node failed over, the next round follows the usual back-off, and rounds go on for
        as long as the deadline allows: an election takes seconds, not three quick tries.
        A retry is made only when it and its answer fit in what is left of the deadline.
        `primed` is a first attempt `send_all` already sent.
        """
        retry = 0
        while True:
            began = time.monotonic()
            try:
                outcome = self._round(target, request, token, deadline, primed)
            except ProviderError as exc:
                error, whole_round = exc, False
            else:
                if isinstance(outcome, VaultReply):
                    return outcome
                error, whole_round = outcome.error, True
            primed = None
            retry += 1
            # Rounds over every node go on while the deadline allows; other failures keep the policy's count.
            count = min(retry, self._retry.attempts - 1) if whole_round else retry
            wait = self._retry.delay(count, error.retry_after, self._random) if error.retryable else None
            if wait is None or not retry_fits(wait, time.monotonic() - began, deadline.remaining()):
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

    def _prime(self, target: VaultTarget, request: VaultRequest, token: str, deadline: Deadline) -> _Primed:
        """The first attempt of `request`'s first round, sent now to the node that round asks first."""
        exchange = _exchange(target, request, token)
        address = self._sticky.order((target.address, target.tls), target.addresses)[0]
        try:
            transport = self._transports.of(target.node(address))
        except ProviderError:
            return _Primed(address, exchange, None)  # send meets the same error in its place
        return _Primed(address, exchange, begin(transport, exchange, deadline.remaining()))

    def _round(
        self,
        target: VaultTarget,
        request: VaultRequest,
        token: str,
        deadline: Deadline,
        primed: _Primed | None = None,
    ) -> VaultReply | _RoundFailed:
        """The reply of the first node that can serve, starting with the one that last could."""
        several = len(target.addresses) > 1
        key = (target.address, target.tls)
        order = self._sticky.order(key, target.addresses)
        if primed is None:
            exchange = _exchange(target, request, token)
        else:
            # Another request may have moved the sticky node since: the primed one is asked first.
            exchange = primed.exchange
            order = [primed.address, *(address for address in order if address != primed.address)]
        failures: list[ProviderError] = []
        for address in order:
            pending = primed.pending if primed is not None and address == primed.address else None
            try:
                answered = self._following_redirects(target, address, request, exchange, deadline, pending)
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
        pending: Pending | None = None,
    ) -> _Answered:
        """One node's reply, after following its redirects into allowed addresses (at most a few)."""
        sensitive = [exchange.headers.get("X-Vault-Token", ""), *request.argument_values()]
        node = target.node(address)
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send_once(node, exchange, request_kind(request), deadline.remaining(), pending)
            pending = None
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

    def _send_once(
        self, node: VaultTarget, exchange: HttpRequest, kind: str, timeout: float, pending: Pending | None
    ) -> HttpResponse:
        """One exchange with one node: its whole answer, or a failure saying whether a retry may help.

        With `pending` (sent already, by `send_all`) only its answer is read.
        """
        started = time.monotonic()
        try:
            if pending is not None:
                response = pending.answer()
            else:
                response = self._transports.of(node).send(exchange, timeout)
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
class _Primed:
    """A first attempt sent ahead by `send_all`: the node, the exchange, its answer to come.

    `pending` is None when no transport could be had for the node; `send` then meets that
    error where it always does.
    """

    address: str
    exchange: HttpRequest
    pending: Pending | None


@dataclass(frozen=True)
class _RoundFailed:
    """Every node of the target failed over in one round; `error` says how, node by node."""

    error: ProviderError


@dataclass(frozen=True)
class _Answered:
    """A node's reply and the node that gave it (another one when a redirect was followed)."""

    reply: VaultReply
    node: str


def _exchange(target: VaultTarget, request: VaultRequest, token: str) -> HttpRequest:
    """The HTTP request for `request`, with the headers Vault's own clients send.

    With several nodes, connecting to one is bounded below the whole timeout, so the next
    can still be asked.
    """
    headers = {"X-Vault-Request": "true"}
    if token:
        headers["X-Vault-Token"] = token
    if target.namespace:
        headers["X-Vault-Namespace"] = target.namespace
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    body = request.body.encode() if request.body is not None else None
    connect_timeout = CONNECT_TIMEOUT_SECONDS if len(target.addresses) > 1 else None
    return HttpRequest(request.method, request.path, request.query, headers, body, connect_timeout)
