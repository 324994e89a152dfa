"""Audit records: one JSON line per Mount saying which pod read which Vault paths, and when.

A record names the pod, its service account, the SecretProviderClass, the outcome
and, per object, the Vault path, method, version and whether a kept dynamic secret
was reused. It never holds a value, a token, the attributes or `secretArgs`.

Rotation polls repeat every few minutes for the life of each pod. With
`-audit-unchanged=summary` a successful poll whose versions equal the previous
successful Mount's of the same pod and SecretProviderClass is written as a short
`"unchanged": true` line instead of the full record.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from provider.mount.mounter import ObjectRecord
from provider.request.mount_request import PodIdentity
from provider.request.objects import SecretObject
from provider.settings import AUDIT_UNCHANGED

__all__ = ["STDOUT", "AuditSink"]

STDOUT = "stdout"
# Pod/SecretProviderClass pairs whose last versions are remembered; a node runs far fewer.
REMEMBERED_PAIRS = 10_000

log = logging.getLogger("provider.audit")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditSink:
    """Writes audit records as JSON lines to one stream; safe to share between Mounts."""

    def __init__(
        self,
        stream: TextIO,
        unchanged: str = "summary",
        *,
        owned: bool = False,
        clock: Callable[[], str] = _now,
        remembered: int = REMEMBERED_PAIRS,
    ) -> None:
        if unchanged not in AUDIT_UNCHANGED:
            raise ValueError(f"unchanged must be one of {', '.join(AUDIT_UNCHANGED)}")
        self._stream = stream
        self._summarise = unchanged == "summary"
        self._owned = owned
        self._clock = clock
        self._capacity = remembered
        self._last: OrderedDict[tuple[str, str], tuple[tuple[str, str], ...]] = OrderedDict()
        self._lock = threading.Lock()
        self._warned = False

    @classmethod
    def open(cls, target: str, unchanged: str = "summary") -> AuditSink:
        """A sink on stdout, or appending to the file at `target` (opened once, line-buffered)."""
        if target == STDOUT:
            return cls(sys.stdout, unchanged)
        return cls(open(target, "a", buffering=1, encoding="utf-8"), unchanged, owned=True)

    def record(
        self,
        pod: PodIdentity,
        spc: str,
        code: str,
        seconds: float,
        read: Sequence[ObjectRecord] | None,
        requested: Sequence[SecretObject] = (),
    ) -> None:
        """Record one Mount: `read` on success, else the `requested` objects (if parsed).

        Never raises: a failing sink must not fail Mounts, so it warns once and carries on.
        """
        try:
            self._record(pod, spc, code, seconds, read, requested)
        except Exception as exc:
            if not self._warned:
                self._warned = True
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                log.warning("cannot write audit records (%s); Mounts go on without them", reason)

    def close(self) -> None:
        with self._lock:
            if self._owned:
                self._stream.close()

    def _record(
        self,
        pod: PodIdentity,
        spc: str,
        code: str,
        seconds: float,
        read: Sequence[ObjectRecord] | None,
        requested: Sequence[SecretObject],
    ) -> None:
        who = {"namespace": pod.namespace, "name": pod.name, "uid": pod.uid}
        with self._lock:
            time = self._clock()
            line: dict[str, Any]
            if read is not None and self._unchanged((pod.uid, spc), read):
                line = {
                    "time": time,
                    "pod": who,
                    "spc": spc,
                    "code": code,
                    "unchanged": True,
                    # A template object has a record per read; count the objects.
                    "objects": len({o.name for o in read}),
                }
            else:
                line = {
                    "time": time,
                    "pod": who,
                    "service_account": pod.service_account,
                    "spc": spc,
                    "code": code,
                    "duration_ms": round(seconds * 1000, 1),
                    "objects": _read_objects(read) if read is not None else _requested_objects(requested),
                }
            self._stream.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._stream.flush()

    def _unchanged(self, key: tuple[str, str], read: Sequence[ObjectRecord]) -> bool:
        """Whether this successful Mount's versions equal the previous one's; remembers them."""
        versions = tuple((o.name, o.version) for o in read)
        same = self._last.get(key) == versions
        self._last[key] = versions
        self._last.move_to_end(key)
        while len(self._last) > self._capacity:
            self._last.popitem(last=False)
        return same and self._summarise


def _read_objects(read: Sequence[ObjectRecord]) -> list[dict[str, str]]:
    return [
        {"name": o.name, "path": o.path, "method": o.method, "version": o.version, "source": o.source}
        for o in read
    ]


def _requested_objects(requested: Sequence[SecretObject]) -> list[dict[str, str]]:
    """What a failed Mount asked for: names, paths and methods only (no versions were made)."""
    return [
        {"name": o.name, "path": request.path, "method": request.method}
        for o in requested
        for request in o.requests
    ]
