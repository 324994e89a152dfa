"""Whether a target's TLS files changed on disk: CA file, CA directory, client certificate and key.

Certificates rotate under a running provider (cert-manager renews a client certificate, a
Secret-mounted CA bundle is swapped by the kubelet's symlink flip). A connection pool
holds an SSLContext made from the files as they were, so the client compares what
`tls_files_state` says now with what it said when the pool was made, and makes a new
pool when they differ. Stat calls only, at most once per `RECHECK_SECONDS` per pool.
"""

from __future__ import annotations

import os

from provider.settings import TlsSettings

__all__ = ["RECHECK_SECONDS", "FileState", "has_tls_files", "tls_files_state"]

# A rotated file is used within this long; a Mount pays at most a few stat calls for it.
RECHECK_SECONDS = 1.0

#: (path, inode, size, mtime) per file; None for a file that cannot be read right now.
FileState = tuple[tuple[str, int, int, int] | None, ...]


def has_tls_files(tls: TlsSettings) -> bool:
    return bool(tls.ca_cert or tls.ca_directory or tls.client_cert or tls.client_key)


def tls_files_state(tls: TlsSettings) -> FileState:
    """What the files look like now (following symlinks, as loading them does)."""
    paths = [path for path in (tls.ca_cert, tls.client_cert, tls.client_key) if path]
    if tls.ca_directory:
        paths.append(tls.ca_directory)
        try:
            paths += sorted(entry.path for entry in os.scandir(tls.ca_directory))
        except OSError:
            return (None,)
    return tuple(_stat(path) for path in paths)


def _stat(path: str) -> tuple[str, int, int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (path, found.st_ino, found.st_size, found.st_mtime_ns)
