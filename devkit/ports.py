"""Free TCP ports on the loopback interface for backends that cannot report the port they bound."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from devkit.errors import DevkitError

__all__ = ["free_port"]

_HOST = "127.0.0.1"
_ATTEMPTS = 50


def free_port(span: int = 1) -> int:
    """Return a port P on 127.0.0.1 such that P .. P+span-1 are all free right now.

    Use it just before starting a server that needs fixed ports (OpenBao's dev server binds
    PORT and PORT+1). Another process may still grab a port in between: the caller's
    start-up check is the real guard.
    """
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    for _ in range(_ATTEMPTS):
        # Let the kernel choose the first port, then check the ones after it.
        with _bound(0) as first:
            base = first.getsockname()[1]
            if base + span - 1 > 65535:
                continue
            if _all_free(range(base + 1, base + span)):
                return int(base)
    raise DevkitError(f"no run of {span} free TCP ports found on {_HOST} after {_ATTEMPTS} attempts")


def _all_free(ports: range) -> bool:
    with contextlib.ExitStack() as stack:
        for port in ports:
            try:
                stack.enter_context(_bound(port))
            except OSError:
                return False
    return True


@contextlib.contextmanager
def _bound(port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((_HOST, port))
        yield sock
    finally:
        sock.close()
