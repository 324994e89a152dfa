"""One Mount: a token for the pod, each distinct request once (or kept), files and versions.

Orchestration only: parsing lives in `spc`, tokens in `pod_auth`, kept dynamic
secrets in `leases`, HTTP in `vault`, file contents in `object_files`, versions in
`versions`. A Mount returns every file or raises one error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from provider.errors import InvalidRequest, PermissionDenied, ProviderError, redact
from provider.mount.leases import LeaseCache, LeaseKeeper, LeaseKey
from provider.mount.object_files import object_files
from provider.mount.pod_tokens import PodAuthenticator
from provider.mount.token_cache import CachedToken
from provider.render import gojson
from provider.render.file_paths import path_conflicts
from provider.render.version_hmac import object_version
from provider.request.mount_request import MountConfig
from provider.request.objects import SecretObject, VaultRequest, request_plan
from provider.serve.metrics import Metrics
from provider.settings import Settings
from provider.vault.client import VaultCall, VaultClient, VaultReply
from provider.vault.deadline import Deadline
from provider.vault.kv_paths import KvV2Paths
from provider.vault.target import VaultConnection, resolve_connection

__all__ = ["MountResult", "MountedFile", "Mounter", "ObjectRecord", "request_error"]

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
        self._kv2 = KvV2Paths(vault)

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
        # its key from one issuance. A template's calls are requests like any other
        # object's, its reads on KV v2 mounts sent to the data path as Agent sends them.
        sent, first_user = self._plan(config, connection, token, deadline)
        log.debug("%d objects need %d distinct Vault requests", len(config.objects), len(first_user))
        sensitive = self._sensitive(config, token)
        try:
            replies = self._fetch_all(connection, config, auth_mount, token, first_user, deadline, sensitive)
        except PermissionDenied:
            if not from_cache:
                raise
            # The cached token may have been revoked: one fresh login, one retry.
            fresh = self._auth.relogin(config, connection, auth_mount, key, token, deadline)
            if fresh is None:
                raise
            token = fresh
            sensitive = self._sensitive(config, token)
            sent, first_user = self._plan(config, connection, token, deadline)
            replies = self._fetch_all(connection, config, auth_mount, token, first_user, deadline, sensitive)

        files: list[MountedFile] = []
        versions = []
        records: list[ObjectRecord] = []
        for obj, requests in zip(config.objects, sent, strict=True):
            # Keyed by the requests the object planned, answered by the ones sent for them.
            pairs = zip(obj.requests, requests, strict=True)
            payloads = {planned: replies[request][0].payload for planned, request in pairs}
            written = object_files(obj, payloads, sensitive, self._settings.max_file_bytes)
            version = object_version(self._hmac_key, obj.fingerprint, _versioned_content(obj, written))
            files.extend(
                MountedFile(path, obj.file_mode or config.default_mode, data) for path, data in written
            )
            versions.append((obj.name, version))
            records.extend(
                ObjectRecord(obj.name, request.path, request.method, version, replies[request][1])
                for request in requests
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

    def _plan(
        self, config: MountConfig, connection: VaultConnection, token: CachedToken, deadline: Deadline
    ) -> tuple[list[tuple[VaultRequest, ...]], dict[VaultRequest, SecretObject]]:
        def resolve(request: VaultRequest) -> VaultRequest:
            return self._kv2.resolve(connection, token.value, request, deadline)

        return request_plan(config.objects, resolve)

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
        first_user: dict[VaultRequest, SecretObject],
        deadline: Deadline,
        sensitive: list[str],
    ) -> dict[VaultRequest, tuple[VaultReply, str]]:
        """Each request's (`first_user`'s keys) answer and where it came from ("new", "kept" or "renewed")."""
        requests = list(first_user)

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


def _argument_values(objects: Iterable[SecretObject]) -> list[str]:
    """Every string value in any object's secretArgs (or template arguments), to keep them out of messages."""
    return [
        value
        for obj in objects
        for request in obj.requests
        if request.body is not None
        for value in gojson.string_values(request.body)
    ]
