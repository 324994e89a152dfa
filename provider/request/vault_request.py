"""One HTTP request to Vault: method, path, query and JSON body. Pure.

Objects and templates name their reads as such requests when they are parsed, and the
Vault layer sends them (logins and lease calls too). `build_request` turns what a
SecretProviderClass writes (`secret/data/app?version=2`, with or without `/v1`) into
the one request sent, or records why it cannot be sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from provider.render import gojson

__all__ = ["V1", "VaultRequest", "build_request"]

V1 = "/v1/"

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_REPEATED_SLASHES = re.compile(r"//+")


@dataclass(frozen=True)
class VaultRequest:
    """One HTTP request to Vault; equal requests within a Mount are sent once."""

    method: str
    path: str  # always starts with /v1/
    query: tuple[tuple[str, str], ...] = ()
    # JSON text of `secretArgs`; may carry values that must never be shown.
    body: str | None = field(default=None, repr=False)
    # Requests key the plan, the lease cache and each Mount's answers: hashed once, not per lookup.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.method, self.path, self.query, self.body)))

    def __hash__(self) -> int:
        return self._hash

    def describe(self) -> str:
        """Method and path for messages; never the body."""
        return f"{self.method} {self.path}"

    @property
    def api_path(self) -> str:
        """The path without /v1/, as Vault's sys endpoints (capabilities, mounts) take it."""
        return self.path[len(V1) :]

    def argument_values(self) -> list[str]:
        """Every string value of the body (secretArgs, a login's JWT): never to be shown in a message."""
        return gojson.string_values(self.body) if self.body is not None else []


def build_request(
    secret_path: str,
    method: str,
    args: dict[str, Any] | None,
    where: str,
    problems: list[str],
    field: str = "secretPath",
) -> VaultRequest | None:
    """The request for `secret_path` (with or without /v1, maybe ?query), or None with the problem
    recorded as `where: field ...`."""
    if not secret_path:
        problems.append(f"{where}: {field} is required, e.g. secret/data/my-app")
        return None
    path, _, query_text = secret_path.partition("?")
    path = _with_v1_prefix(path)
    problem = _vault_path_problem(path)
    if problem:
        problems.append(f"{where}: {field} {problem}")
        return None
    query = _query(query_text, f"{where}: {field}", problems)
    if query is None:
        return None
    body = None if args is None else gojson.dumps(args)
    return VaultRequest(method, _cleaned(path), query, body)


def _cleaned(path: str) -> str:
    """The path as Go's path.Join leaves it in upstream's client: `//` collapsed, no trailing `/`.

    Sent as written, OpenBao answers `secret//data/app` with a redirect and `secret/data/app/`
    with a 500; upstream never sends either. ('.' and '..' are refused before this.)
    """
    return _REPEATED_SLASHES.sub("/", path).rstrip("/")


def _with_v1_prefix(path: str) -> str:
    # The same four spellings upstream accepts: /v1/x, v1/x, /x and x.
    if path.startswith("/v1/"):
        return path
    if path.startswith("v1/"):
        return "/" + path
    if path.startswith("/"):
        return "/v1" + path
    return "/v1/" + path


def _vault_path_problem(path: str) -> str | None:
    if "://" in path or path.startswith("/v1//"):
        return "must be a path inside Vault (like secret/data/app), not a URL"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "contains a control character"
    if "#" in path:
        return "must not contain '#'"
    elements = path[len(V1) :].split("/")
    if any(element in (".", "..") for element in elements):
        return "must not contain '.' or '..' elements"
    if not path[len(V1) :].strip("/"):
        return "names no secret (it is empty after /v1/)"
    return None


def _query(text: str, where: str, problems: list[str]) -> tuple[tuple[str, str], ...] | None:
    """Query parameters as Go's url.ParseQuery reads them; sorted like url.Values.Encode."""
    pairs = []
    for part in text.split("&"):
        if not part:
            continue
        if ";" in part:
            problems.append(f"{where} query uses ';' as a separator; use '&'")
            return None
        if _BAD_ESCAPE.search(part):
            problems.append(f"{where} query has a malformed %-escape")
            return None
        key, _, value = part.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    # Go's url.Values.Encode sorts by key and keeps the order of a key's values.
    return tuple(sorted(pairs, key=lambda pair: pair[0]))
