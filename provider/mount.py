"""One Mount: a token for the pod, each distinct request once (or kept), files and versions.

Orchestration only: parsing lives in `spc`, tokens in `pod_auth`, kept dynamic
secrets in `leases`, HTTP in `vault`, byte-level rules in `extract`, versions in
`versions`. A Mount returns every file or raises one error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from provider import gojson
from provider.connection import VaultConnection, resolve_connection
from provider.deadline import Deadline
from provider.errors import InvalidRequest, PermissionDenied, ProviderError, redact
from provider.extract import (
    ExtractError,
    decode,
    envelope,
    require_data,
    secret_data,
    select_key,
    value_bytes,
)
from provider.leases import LeaseCache, LeaseKeeper, LeaseKey
from provider.metrics import Metrics
from provider.object_templates import ObjectTemplate, render_template
from provider.objects import SecretObject, VaultRequest, requesters
from provider.payload_paths import path_conflicts, path_problem
from provider.pod_auth import PodAuthenticator
from provider.settings import Settings
from provider.spc import MountConfig
from provider.token_cache import CachedToken
from provider.vault import VaultCall, VaultClient, VaultReply
from provider.versions import object_version

__all__ = ["MountResult", "MountedFile", "Mounter", "ObjectRecord", "object_files", "request_error"]

# Kept dynamic secrets per cached token: a pod rarely has more than a few.
LEASES_PER_TOKEN = 8

log = logging.getLogger("provider.mount")


@dataclass(frozen=True)
class MountedFile:
    path: str
    mode: int
    contents: bytes = field(repr=False)


@dataclass(frozen=True)
class ObjectRecord:
    """What one object of a Mount read, for the audit record: never a value."""

    name: str
    path: str
    method: str
    version: str
    source: str  # "new" (fetched now), "kept" or "renewed" (a kept dynamic secret)


@dataclass(frozen=True)
class MountResult:
    files: tuple[MountedFile, ...]
    versions: tuple[tuple[str, str], ...]  # (object id, version)
    records: tuple[ObjectRecord, ...] = ()


class Mounter:
    """Runs Mounts against Vault; shared by all RPCs (holds no per-Mount state)."""

    def __init__(
        self,
        settings: Settings,
        vault: VaultClient,
        hmac_key: bytes,
        fetch_pool: Executor | None = None,
        metrics: Metrics | None = None,
        authenticator: PodAuthenticator | None = None,
    ) -> None:
        self._settings = settings
        self._vault = vault
        self._hmac_key = hmac_key
        self._fetch_pool = fetch_pool
        self._metrics = metrics or Metrics()
        self._auth = authenticator or PodAuthenticator(vault, settings.cache_size, self._metrics)
        capacity = max(settings.cache_size, 0) * LEASES_PER_TOKEN
        self._leases = LeaseKeeper(vault, LeaseCache(capacity))

    @property
    def requests_tokens(self) -> bool:
        """Whether a Mount without a driver token can get one from the TokenRequest API."""
        return self._auth.requests_tokens

    def mount(self, config: MountConfig, deadline: Deadline) -> MountResult:
        connection = resolve_connection(self._settings, config.connection)
        auth_mount = config.auth_mount or self._settings.vault_mount.strip("/")
        config, key, token, from_cache = self._auth.token_for(config, connection, auth_mount, deadline)

        # Equal requests (path, query, method AND arguments) go out once, so that a
        # username and password come from one database lease and a certificate and
        # its key from one issuance.
        # A template's `secret` calls are requests like any other object's.
        distinct = list(requesters(config.objects))
        log.debug("%d objects need %d distinct Vault requests", len(config.objects), len(distinct))
        sensitive = self._sensitive(config, token)
        try:
            replies = self._fetch_all(connection, config, auth_mount, token, distinct, deadline, sensitive)
        except PermissionDenied:
            if not from_cache:
                raise
            # The cached token may have been revoked: one fresh login, one retry.
            fresh = self._auth.relogin(config, connection, auth_mount, key, token, deadline)
            if fresh is None:
                raise
            token = fresh
            sensitive = self._sensitive(config, token)
            replies = self._fetch_all(connection, config, auth_mount, token, distinct, deadline, sensitive)

        files: list[MountedFile] = []
        versions = []
        records: list[ObjectRecord] = []
        for obj in config.objects:
            payloads = {request: replies[request][0].payload for request in obj.requests}
            written = object_files(obj, payloads, sensitive, self._settings.max_file_bytes)
            version = object_version(self._hmac_key, obj.fingerprint, _versioned_content(obj, written))
            files.extend(
                MountedFile(path, obj.file_mode or config.default_mode, data) for path, data in written
            )
            versions.append((obj.name, version))
            records.extend(
                ObjectRecord(obj.name, request.path, request.method, version, replies[request][1])
                for request in obj.requests
            )
        if any(obj.format == "files" for obj in config.objects):
            # Key names come from Vault: they may collide with another object's files.
            clashes = path_conflicts(file.path for file in files)
            if clashes:
                parent, nested = clashes[0]
                raise InvalidRequest(
                    f'the secrets\' keys make "{parent}" both a file and a directory ("{nested}")'
                )
        return MountResult(tuple(files), tuple(versions), tuple(records))

    @staticmethod
    def _sensitive(config: MountConfig, token: CachedToken) -> list[str]:
        """Strings that must never appear in a message: the JWT, the Vault token, argument values."""
        return [config.jwt, token.value, *_argument_values(config.objects)]

    def _fetch_all(
        self,
        connection: VaultConnection,
        config: MountConfig,
        auth_mount: str,
        token: CachedToken,
        requests: list[VaultRequest],
        deadline: Deadline,
        sensitive: list[str],
    ) -> dict[VaultRequest, tuple[VaultReply, str]]:
        """Each request's answer and where it came from ("new", "kept" or "renewed")."""
        first_user = requesters(config.objects)

        def fetch(request: VaultRequest) -> tuple[VaultReply, str]:
            key = LeaseKey(
                connection.address,
                connection.namespace,
                auth_mount,
                config.role,
                token.identity,
                config.pod.uid,
                request,
            )

            def issue() -> VaultReply:
                call = VaultCall(request.method, request.path, request.query, request.body, token.value)
                return self._vault.call(connection, call, deadline)

            try:
                reply, outcome = self._leases.fetch(key, connection, token.value, deadline, issue)
            except ProviderError as exc:
                raise request_error(first_user[request], request, exc, sensitive) from None
            if outcome != "new":
                self._metrics.cache_lookups.labels("lease", "hit").inc()
            return reply, outcome

        if self._fetch_pool is None or len(requests) == 1:
            return {request: fetch(request) for request in requests}
        futures: dict[VaultRequest, Future[tuple[VaultReply, str]]] = {
            request: self._fetch_pool.submit(fetch, request) for request in requests
        }
        replies = {}
        try:
            # In object order, so the error reported is the first object's.
            for request, future in futures.items():
                replies[request] = future.result()
        finally:
            for future in futures.values():
                future.cancel()
        return replies


def request_error(
    obj: SecretObject, request: VaultRequest, exc: ProviderError, sensitive: list[str]
) -> ProviderError:
    if exc.status == 404:
        hint = ""
        if request.method == "GET" and "/data/" not in request.path:
            hint = (
                "; for a KV version 2 engine the path needs data/ after the mount, as in secret/data/my-app"
            )
        message = f"nothing at {request.path} (404){hint}"
    elif exc.status == 403:
        reasons = redact(exc.reasons, sensitive) or "Vault gave no reason"
        message = f"{request.describe()} was denied (403): {reasons}; check the role's policies"
    else:
        message = f"{request.describe()} failed: {redact(str(exc), sensitive)}"
    error = type(exc)(f"{obj.label()}: {message}")
    error.status, error.reasons = exc.status, redact(exc.reasons, sensitive)
    return error


def _versioned_content(obj: SecretObject, written: list[tuple[str, bytes]]) -> bytes:
    """What an object's version covers: its file, or with format: files every path and content."""
    if obj.format != "files":
        return written[0][1]
    return b"".join(gojson.dumps(path).encode() + b"\0" + data + b"\0" for path, data in written)


def object_files(
    obj: SecretObject, payloads: dict[VaultRequest, Any], sensitive: list[str], max_file_bytes: int
) -> list[tuple[str, bytes]]:
    """The (path, contents) an object writes from the answers to its requests (parsed payloads).

    One file; with format: files one per key; for a template the rendered file.
    """
    if obj.template is not None:
        return [(obj.name, _render(obj, obj.template, payloads, sensitive, max_file_bytes))]
    return _files(obj, payloads[obj.request], sensitive)


def _render(
    obj: SecretObject,
    template: ObjectTemplate,
    payloads: dict[VaultRequest, Any],
    sensitive: list[str],
    max_file_bytes: int,
) -> bytes:
    try:
        return decode(render_template(obj.name, template, payloads, max_file_bytes), obj.encoding)
    except ExtractError as exc:
        raise InvalidRequest(f"{obj.label()}: the rendered template {exc}") from None
    except ProviderError as exc:
        # The engine never quotes a value; the redaction is a second lock on the door.
        never_show = sensitive + [text for payload in payloads.values() for text in _strings(payload)]
        raise type(exc)(f"{obj.label()}: {redact(str(exc), never_show)}") from None


def _files(obj: SecretObject, payload: Any, sensitive: list[str]) -> list[tuple[str, bytes]]:
    """The (path, contents) of an object without a template."""
    what = f"{obj.label()}: {obj.request.describe()}"
    key = obj.secret_key
    try:
        data = require_data(payload, obj.request.describe())
        if obj.format == "files":
            written = []
            for key, value in sorted(secret_data(data).items()):
                problem = path_problem(key) or ("is a nested path" if "/" in key else None)
                if problem is not None:
                    raise InvalidRequest(
                        f"{what}: a key of the secret {problem}, so it cannot be a file name"
                    )
                written.append((f"{obj.name}/{key}", decode(value_bytes(value), obj.encoding)))
            return written
        if obj.format == "data":
            return [(obj.name, gojson.dumps(secret_data(data)).encode())]
        if key is None:
            return [(obj.name, envelope(payload))]
        return [(obj.name, decode(select_key(data, key), obj.encoding))]
    except ExtractError as exc:
        raise InvalidRequest(f'{what}: the value of key "{key}" {exc}') from None
    except InvalidRequest:
        raise
    except ProviderError as exc:
        raise type(exc)(f"{what}: {redact(str(exc), sensitive)}") from None


def _argument_values(objects: Iterable[SecretObject]) -> list[str]:
    """Every string value in any object's secretArgs (or template arguments), to keep them out of messages."""
    return [
        value
        for obj in objects
        for request in obj.requests
        if request.body is not None
        for value in gojson.string_values(request.body)
    ]


def _strings(value: Any) -> Iterator[str]:
    """Every string value in a parsed Vault answer (not the keys: messages name those)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
