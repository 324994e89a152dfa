"""One Mount: log in as the pod, fetch each distinct request once, build files and versions.

Orchestration only: parsing lives in `spc`, HTTP in `vault`, byte-level rules in
`extract`, versions in `versions`. A Mount returns every file or raises one error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from provider.auth import login
from provider.connection import VaultConnection, resolve_connection
from provider.deadline import Deadline
from provider.errors import InvalidRequest, KubernetesUnavailable, PermissionDenied, ProviderError, redact
from provider.extract import ExtractError, decode, envelope, require_data, select_key
from provider.kube import KubeError
from provider.metrics import Metrics
from provider.objects import SecretObject, VaultRequest
from provider.settings import Settings
from provider.spc import MountConfig
from provider.vault import VaultCall, VaultClient, VaultReply
from provider.versions import object_version

__all__ = ["MountResult", "MountedFile", "Mounter", "TokenRequester"]

# The API server's minimum; the token is used once, for the login right after.
TOKEN_REQUEST_SECONDS = 600


class TokenRequester(Protocol):
    """Creates a service-account token: (namespace, service account, audience, pod name, pod uid, seconds)."""

    def __call__(
        self, namespace: str, service_account: str, audience: str, pod_name: str, pod_uid: str, seconds: int
    ) -> str: ...


log = logging.getLogger("provider.mount")


@dataclass(frozen=True)
class MountedFile:
    path: str
    mode: int
    contents: bytes = field(repr=False)


@dataclass(frozen=True)
class MountResult:
    files: tuple[MountedFile, ...]
    versions: tuple[tuple[str, str], ...]  # (object id, version)
    vault_requests: int  # distinct requests sent, logins excluded


class Mounter:
    """Runs Mounts against Vault; shared by all RPCs (holds no per-Mount state)."""

    def __init__(
        self,
        settings: Settings,
        vault: VaultClient,
        hmac_key: bytes,
        fetch_pool: Executor | None = None,
        metrics: Metrics | None = None,
        token_requester: TokenRequester | None = None,
    ) -> None:
        self._settings = settings
        self._vault = vault
        self._hmac_key = hmac_key
        self._fetch_pool = fetch_pool
        self._metrics = metrics or Metrics()
        self._token_requester = token_requester

    @property
    def requests_tokens(self) -> bool:
        """Whether a Mount without a driver token can get one from the TokenRequest API."""
        return self._token_requester is not None

    def mount(self, config: MountConfig, deadline: Deadline) -> MountResult:
        connection = resolve_connection(self._settings, config.connection)
        auth_mount = config.auth_mount or self._settings.vault_mount.strip("/")
        if not config.jwt:
            config = replace(config, jwt=self._request_token(config))
        # No token cache yet: every Mount logs in.
        self._metrics.cache_lookups.labels("token", "miss").inc()
        try:
            token = login(self._vault, connection, config, auth_mount, deadline)
        except PermissionDenied:
            self._metrics.login("denied")
            raise
        except ProviderError:
            self._metrics.login("error")
            raise
        self._metrics.login("success")
        sensitive = [config.jwt, token.value, *_argument_values(config.objects)]

        # Equal requests (path, query, method AND arguments) go out once, so that a
        # username and password come from one database lease and a certificate and
        # its key from one issuance.
        distinct = list(dict.fromkeys(obj.request for obj in config.objects))
        log.debug("%d objects need %d distinct Vault requests", len(config.objects), len(distinct))
        replies = self._fetch_all(connection, distinct, token.value, deadline, config.objects, sensitive)

        files = []
        versions = []
        for obj in config.objects:
            contents = _contents(obj, replies[obj.request], sensitive)
            files.append(MountedFile(obj.name, obj.file_mode or config.default_mode, contents))
            versions.append((obj.name, object_version(self._hmac_key, obj.fingerprint, contents)))
        return MountResult(tuple(files), tuple(versions), len(distinct))

    def _request_token(self, config: MountConfig) -> str:
        """The TokenRequest fallback: a short-lived token for the pod's service account, bound to the pod."""
        assert self._token_requester is not None, "parse_mount_request allows no token only with a requester"
        pod = config.pod
        try:
            return self._token_requester(
                pod.namespace, pod.service_account, config.audience, pod.name, pod.uid, TOKEN_REQUEST_SECONDS
            )
        except KubeError as exc:
            message = (
                f"the driver passed no token for audience {config.audience!r} "
                f"and the TokenRequest fallback failed: {exc}"
            )
            if exc.status == 403:
                raise PermissionDenied(message) from None
            raise KubernetesUnavailable(message) from None

    def _fetch_all(
        self,
        connection: VaultConnection,
        requests: list[VaultRequest],
        token: str,
        deadline: Deadline,
        objects: Iterable[SecretObject],
        sensitive: list[str],
    ) -> dict[VaultRequest, VaultReply]:
        first_user: dict[VaultRequest, SecretObject] = {}
        for obj in objects:
            first_user.setdefault(obj.request, obj)

        def fetch(request: VaultRequest) -> VaultReply:
            call = VaultCall(request.method, request.path, request.query, request.body, token)
            try:
                return self._vault.call(connection, call, deadline.remaining())
            except ProviderError as exc:
                raise _fetch_error(first_user[request], exc, sensitive) from None

        if self._fetch_pool is None or len(requests) == 1:
            return {request: fetch(request) for request in requests}
        futures: dict[VaultRequest, Future[VaultReply]] = {
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


def _fetch_error(obj: SecretObject, exc: ProviderError, sensitive: list[str]) -> ProviderError:
    request = obj.request
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


def _contents(obj: SecretObject, reply: VaultReply, sensitive: list[str]) -> bytes:
    what = f"{obj.label()}: {obj.request.describe()}"
    try:
        if obj.secret_key is None:
            require_data(reply.payload, obj.request.describe())
            return envelope(reply.payload)
        data = require_data(reply.payload, obj.request.describe())
        value = select_key(data, obj.secret_key)
        return decode(value, obj.encoding)
    except ExtractError as exc:
        raise InvalidRequest(f'{what}: the value of key "{obj.secret_key}" {exc}') from None
    except ProviderError as exc:
        raise type(exc)(f"{what}: {redact(str(exc), sensitive)}") from None


def _argument_values(objects: Iterable[SecretObject]) -> list[str]:
    """Every string value in any object's secretArgs, to keep them out of messages."""
    values: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for obj in objects:
        if obj.request.body is not None:
            collect(json.loads(obj.request.body))
    return values
