"""Count Vault requests and new leases exactly, from OpenBao's file audit device.

The audit device writes one JSON line per request (`type: request`) and one per
response (`type: response`), in order, before the response is sent. `AuditLog`
reads the file incrementally; each `take()` returns the counts of the lines written
since the previous call, so a scenario's window is "everything between two takes".

Request kinds, from the request line's path and mount type:

    login   auth/<mount>/login (and auth/<mount>/login/<name>)
    read    any other read (KV and static secrets)
    issue   a request that creates a credential: <mount>/creds/..., pki <mount>/issue|sign/...
    renew   sys/leases/renew, sys/renew
    lookup  sys/leases/lookup (is a lease still there?)
    token   auth/token/* other than revoke (renew-self, lookup-self, ...)
    revoke  sys/leases/revoke*, sys/revoke*, auth/token/revoke*
    other   everything else (writes, lists, the rest of sys/*)

"New" objects, from response lines: a lease (`response.secret.lease_id`) or a token
(`response.auth.accessor`) counts when its id was never seen in an earlier response of
the run (a renewal's response repeats the id, so it is not new); a certificate counts for
every successful response to a PKI issue/sign request (PKI certificates carry no lease
unless the role sets generate_lease). Secret values in the log are HMAC'd; ids are compared
as they appear, which is stable either way.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "NEW_KINDS", "AuditCounts", "AuditLog", "classify"]

KINDS = ("login", "read", "issue", "renew", "lookup", "token", "revoke", "other")
NEW_KINDS = ("tokens", "leases", "certs")

_ISSUE_PATH = re.compile(r"(^|/)creds/")
_PKI_ISSUE_PATH = re.compile(r"(^|/)(issue|sign|sign-verbatim)(/|$)")
_LOGIN_PATH = re.compile(r"^auth/.+/login(/[^/]*)?$")
_MAX_OTHER_PATHS = 20
# The read size of one `take()`, so a huge backlog never sits in memory at once.
_CHUNK_BYTES = 1 << 20


def classify(request: dict[str, Any]) -> str:
    """The kind (one of `KINDS`) of an audit entry's `request` object."""
    path = str(request.get("path", "")).lstrip("/")
    operation = str(request.get("operation", ""))
    mount_type = str(request.get("mount_type", ""))
    if _LOGIN_PATH.match(path) and not path.startswith("auth/token/"):
        return "login"
    if path.startswith(("sys/leases/revoke", "sys/revoke", "auth/token/revoke")):
        return "revoke"
    if path.startswith(("sys/leases/renew", "sys/renew")):
        return "renew"
    if path.startswith("sys/leases/lookup"):
        return "lookup"
    if path.startswith("auth/token/"):
        return "token"
    if path.startswith("sys/"):
        return "other"
    if _is_issue(path, mount_type):
        return "issue"
    if operation == "read":
        return "read"
    return "other"


def _describe(request: dict[str, Any]) -> str:
    return f"{request.get('operation', '?')} {request.get('path', '?')}"


def _is_issue(path: str, mount_type: str) -> bool:
    if path.startswith("auth/"):
        return False
    if _ISSUE_PATH.search(path):
        return True
    return mount_type == "pki" and bool(_PKI_ISSUE_PATH.search(path))


@dataclass
class AuditCounts:
    """What the audit log recorded in one window."""

    requests: Counter[str] = field(default_factory=Counter)  # by kind
    # "operation path" of requests classified "other", to tell what they were.
    other: Counter[str] = field(default_factory=Counter)
    new: Counter[str] = field(default_factory=Counter)  # tokens, leases, certs
    errors: int = 0  # responses carrying an error
    lines: int = 0
    bad_lines: int = 0  # not JSON (should stay 0)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class AuditLog:
    """Incremental reader of a file audit log; remembers every lease and token id it has seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._seen_leases: set[str] = set()
        self._seen_tokens: set[str] = set()

    def take(self) -> AuditCounts:
        """Counts for the complete lines written since the last call (or since the start)."""
        counts = AuditCounts()
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return counts
        with handle:
            handle.seek(self._offset)
            while chunk := handle.read(_CHUNK_BYTES):
                self._offset += len(chunk)
                data = self._partial + chunk
                lines = data.split(b"\n")
                # The device may be mid-line: keep the unterminated tail for the next read.
                self._partial = lines.pop()
                for line in lines:
                    if line.strip():
                        self._count(line, counts)
        return counts

    def _count(self, line: bytes, counts: AuditCounts) -> None:
        counts.lines += 1
        try:
            entry = json.loads(line)
        except ValueError:
            counts.bad_lines += 1
            return
        request = entry.get("request") or {}
        if entry.get("type") == "request":
            kind = classify(request)
            counts.requests[kind] += 1
            if kind == "other" and (
                len(counts.other) < _MAX_OTHER_PATHS or _describe(request) in counts.other
            ):
                counts.other[_describe(request)] += 1
            return
        if entry.get("type") != "response":
            return
        if entry.get("error"):
            counts.errors += 1
            return
        response = entry.get("response") or {}
        lease_id = (response.get("secret") or {}).get("lease_id")
        if lease_id and lease_id not in self._seen_leases:
            self._seen_leases.add(lease_id)
            counts.new["leases"] += 1
        accessor = (response.get("auth") or {}).get("accessor")
        if accessor and accessor not in self._seen_tokens:
            self._seen_tokens.add(accessor)
            counts.new["tokens"] += 1
        path = str(request.get("path", ""))
        if request.get("mount_type") == "pki" and _PKI_ISSUE_PATH.search(path) and not lease_id:
            counts.new["certs"] += 1
