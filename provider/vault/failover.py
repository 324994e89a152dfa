"""Which Vault node to ask, and when to ask the next one: the failover policy. No I/O.

A target may list the nodes of one cluster. The client asks them in order, starting
with the node that last worked for the same list and TLS settings (`StickyNodes`), so a
healthy cluster costs one request per request, whichever node that is: a standby
forwards to the active node itself. The next node is asked only when this one gave no
answer at all (refused, reset, unknown host, a connect that timed out) or answered as
a node that cannot serve: sealed (503), or a standby that has lost its active node
(500 "local node not active but active cluster node not found", what OpenBao 2.x
standbys answered while no leader was elected). Every other answer (a denial, 429 rate
limiting, a 502 from a proxy) is the cluster's answer and would be the same elsewhere.

While no leader is elected an OpenBao standby also answers logins with a 307 to the
old leader's API address. A redirect is followed only into an address the operator
let us talk to (`redirect_base`): the target's own nodes or -allowed-vault-addresses,
same scheme, host, port and path prefix. Anywhere else, no request (and no token) is
sent; the 3xx stays the error it always was.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from urllib.parse import SplitResult, urlsplit

from provider.errors import ProviderError, VaultUnavailable
from provider.vault.target import VaultTarget

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "MAX_REDIRECTS",
    "StickyNodes",
    "failover_reason",
    "redirect_base",
    "round_error",
]

# With several nodes, a connect may take this long before the next node is asked. TCP
# to a node of the same cluster connects in milliseconds; 2 s still allows one lost SYN
# (Linux resends it after 1 s), and keeps a node that drops packets from eating a
# Mount's deadline (kubelet's is two minutes, a driver poll's often 10-30 s). Only the
# connect is bounded: an answer may take long on purpose (a PKI key, a database login).
CONNECT_TIMEOUT_SECONDS = 2.0
# Vault redirects once, to its active node; more hops mean something else is going on.
MAX_REDIRECTS = 3
REDIRECTS = (307, 308)

# What an OpenBao/Vault standby says when it cannot reach (or find) the active node.
_STANDBY_REASONS = ("local node not active", "active cluster node not found")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def failover_reason(exc: ProviderError) -> str | None:
    """Why the next node should be asked after `exc` (the metrics' label), or None: it should not.

    A failure without an HTTP status and of the Unavailable kind is a node that gave no
    answer; TLS failures, deadlines and oversize answers would fail the same elsewhere.
    """
    if exc.status is None:
        return "unreachable" if isinstance(exc, VaultUnavailable) else None
    if exc.status == 503:
        return "sealed"
    if exc.status == 500 and any(reason in exc.reasons for reason in _STANDBY_REASONS):
        return "standby"
    return None


def round_error(failures: Sequence[ProviderError]) -> ProviderError:
    """One error for a round in which every node failed over: the last one's kind, each node's words.

    Worth another round when any node's failure was passing (an unknown host everywhere is not).
    """
    last = failures[-1]
    error = last.reworded(f"no Vault node could serve the request: {'; '.join(map(str, failures))}")
    error.retryable = any(failure.retryable for failure in failures)
    return error


def redirect_base(location: str, target: VaultTarget, path: str) -> str | None:
    """The allowed address that a redirect of a request for `path` leads into, or None.

    The Location must name the address's scheme, host and port, and its path must be the
    address's own prefix followed by the path that was asked for: we only ever resend our
    own request to another node we may talk to, never go where the answer says.
    """
    try:
        wanted = urlsplit(location)
        wanted_port = _port(wanted)
    except ValueError:
        return None
    if wanted.scheme.lower() not in _DEFAULT_PORTS or not wanted.hostname:
        return None
    for base in (*target.addresses, *target.redirect_allowed):
        try:
            parts = urlsplit(base)
            same_place = (parts.scheme.lower(), parts.hostname, _port(parts)) == (
                wanted.scheme.lower(),
                wanted.hostname,
                wanted_port,
            )
        except ValueError:
            continue
        if same_place and wanted.path == parts.path.rstrip("/") + path:
            return base
    return None


def _port(parts: SplitResult) -> int | None:
    return parts.port or _DEFAULT_PORTS.get(parts.scheme.lower())


class StickyNodes:
    """The node that last worked for each address list (and TLS settings); shared by all Mounts."""

    def __init__(self) -> None:
        self._preferred: dict[Hashable, str] = {}
        self._lock = threading.Lock()

    def order(self, key: Hashable, addresses: Sequence[str]) -> list[str]:
        """`addresses` starting with the one that last worked, the rest in their listed order after it."""
        with self._lock:
            preferred = self._preferred.get(key)
        if preferred not in addresses:
            return list(addresses)
        start = addresses.index(preferred)
        return [*addresses[start:], *addresses[:start]]

    def worked(self, key: Hashable, address: str) -> str | None:
        """Remember that `address` served the list `key` (the next request starts there); the one before."""
        with self._lock:
            previous = self._preferred.get(key)
            self._preferred[key] = address
        return previous
