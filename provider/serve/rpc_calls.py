"""A gRPC call's parts: the unary method it names, the limits on its messages, where it runs, its state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from provider.serve.rpc_status import CallContext

__all__ = ["Call", "CallRunner", "Limits", "Method"]


class Method(NamedTuple):
    """A unary method: how its request is parsed, the handler that answers it, and how the answer is sent."""

    decode: Callable[[bytes], Any]
    handle: Callable[[Any, CallContext], Any]
    encode: Callable[[Any], bytes]


class CallRunner(Protocol):
    """Where calls run, each counted while it runs (the server's drain waits for them)."""

    def submit(self, run: Callable[[], None]) -> None:
        """On a worker thread."""

    def run_here(self, run: Callable[[], None]) -> None:
        """On the calling thread, now."""


@dataclass(frozen=True)
class Limits:
    max_receive_bytes: int
    max_send_bytes: int


@dataclass
class Call:
    """One stream's call, from its headers until it is answered or reset."""

    stream_id: int
    path: str
    context: CallContext
    body: bytearray = field(default_factory=bytearray)
    refused: bool = False  # answered already (too large, unknown), body ignored
    closed: bool = False  # reset by the client, or the connection is gone
