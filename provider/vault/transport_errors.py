"""Socket, ssl and HTTP/1.1 failures → our errors, with one walk along an exception's causes.

Only the HTTP/1.1 transport raises these exceptions, so only it calls here. Whether a
failure is worth a retry is decided now, where the kind of failure is still known:
refused and reset connections and cut-off answers are; TLS failures, unknown hosts
and timeouts (the deadline is spent) are not.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

from provider.errors import DeadlineExceeded, ProviderError, VaultRejected, VaultUnavailable
from provider.vault.endpoint import ConnectFailed, ConnectTimeout
from provider.vault.http11 import AnswerBroken
from provider.vault.target import VaultTarget

__all__ = ["causes", "os_reason", "transport_error"]

# Exception chains are short; a cycle or a pathological chain stops here.
_MAX_CHAIN = 20


def transport_error(target: VaultTarget, exc: Exception, connect_bound: float | None = None) -> ProviderError:
    """Our error for a request that got no whole HTTP answer.

    `connect_bound` is the connect timeout when it was shorter than the Mount's deadline
    (other nodes could be asked): a connect that ran into it is a node not answering,
    not a spent deadline.
    """
    where = target.describe()
    if connect_bound is not None and isinstance(exc, ConnectTimeout):
        return VaultUnavailable(
            f"cannot reach Vault at {where}: no connection within {connect_bound:g} s", retryable=True
        )
    if _caused_by(exc, ssl.SSLError):
        server_name = target.tls.server_name
        return VaultRejected(
            f"TLS with Vault at {where} failed using {target.describe_trust()}"
            f"{' and server name ' + server_name if server_name else ''}: {_tls_reason(exc)}"
        )
    if _caused_by(exc, socket.gaierror):
        # An unknown host stays unknown: not retried.
        return VaultUnavailable(f"cannot reach Vault at {where}: {os_reason(exc)}")
    if isinstance(exc, TimeoutError):
        return DeadlineExceeded(f"Vault at {where} did not answer within the Mount's deadline")
    if isinstance(exc, (ConnectFailed, ConnectionError)):
        return VaultUnavailable(f"cannot reach Vault at {where}: {os_reason(exc)}", retryable=True)
    if isinstance(exc, AnswerBroken):
        return VaultUnavailable(f"Vault at {where} cut its answer off before the end", retryable=True)
    return VaultUnavailable(f"request to Vault at {where} failed: {type(exc).__name__}")


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what caused it: `__cause__` or `__context__`."""
    current: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def os_reason(exc: BaseException) -> str:
    """The innermost OS-level reason (connection refused, no such file, ...), without URLs."""
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return str(cause.strerror)
    return type(exc).__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(cause, kind) for cause in causes(exc))


def _tls_reason(exc: BaseException) -> str:
    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return str(cause.verify_message or cause.reason or "certificate verification failed")
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or "TLS handshake failed")
    return "TLS handshake failed"
