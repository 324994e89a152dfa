"""The few Kubernetes API calls the provider makes, as the provider pod's own service account.

A small typed client instead of the official `kubernetes` package: we need three
calls (get and create a Secret, create a service-account token), and the official
client costs tens of MiB and a second of import on every node (measured in the
README's deployment notes). Only `process` and the HMAC key source use it at
start-up; the Mount path touches it only with the opt-in TokenRequest fallback.
It speaks HTTP/1.1 through the Vault client's own connection pool (`provider.vault.pool`):
urllib3 would add 1.7 MiB to every node's RSS for three calls, `requests` 4-5 more.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider.errors import KubernetesUnavailable, PermissionDenied
from provider.mount.pod_tokens import TokenRequester
from provider.vault.endpoint import ConnectFailed, Endpoint
from provider.vault.http11 import AnswerBroken, BodyPastDeadline, BodyTooLarge, request_head
from provider.vault.pool import ConnectionPool
from provider.vault.transport_errors import os_reason

__all__ = [
    "KubeClient",
    "KubeConflict",
    "KubeError",
    "KubeNotFound",
    "ServiceAccountFiles",
    "token_requester",
]

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Lets tests and out-of-cluster runs point the client at other files.
SERVICE_ACCOUNT_DIR_ENV = "VAULT_CSI_PROVIDER_SERVICE_ACCOUNT_DIR"
MIN_TOKEN_SECONDS = 600  # the API server's minimum for a TokenRequest
_MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a Secret is at most 1 MiB, base64 in JSON
_FAILURES = (OSError, ConnectFailed, AnswerBroken, BodyTooLarge, BodyPastDeadline, ValueError)


class KubeError(Exception):
    """A Kubernetes API call failed; the message names the call and, for 403, the permission."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeNotFound(KubeError):
    """404 from the API server."""


class KubeConflict(KubeError):
    """409: the object already exists (a create race)."""


@dataclass(frozen=True)
class ServiceAccountFiles:
    """Where the pod's projected service-account token, CA and namespace live."""

    directory: Path

    @property
    def token(self) -> Path:
        return self.directory / "token"

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def namespace(self) -> Path:
        return self.directory / "namespace"


@dataclass(frozen=True)
class _Call:
    """What a call does, for messages: the action, and the RBAC verb and resource it needs."""

    action: str
    verb: str
    resource: str
    namespace: str


@dataclass
class KubeClient:
    """HTTPS to the API server with the pod's token, re-read on every call because kubelet rotates it."""

    base_url: str
    files: ServiceAccountFiles
    timeout: float = 10.0
    ca_cert: str | None = None  # None: the system's CAs
    _pool: ConnectionPool | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _host: str = field(default="", init=False, repr=False)

    @classmethod
    def in_cluster(cls, environ: Mapping[str, str] | None = None) -> KubeClient | None:
        """The client for the cluster this pod runs in, or None outside a cluster."""
        env = os.environ if environ is None else environ
        host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            return None
        files = ServiceAccountFiles(Path(env.get(SERVICE_ACCOUNT_DIR_ENV, SERVICE_ACCOUNT_DIR)))
        host = f"[{host}]" if ":" in host else host
        return cls(f"https://{host}:{port}", files, ca_cert=str(files.ca_cert))

    def own_namespace(self, environ: Mapping[str, str] | None = None) -> str:
        """The provider pod's namespace: POD_NAMESPACE (downward API), else the token's namespace file."""
        env = os.environ if environ is None else environ
        if env.get("POD_NAMESPACE"):
            return env["POD_NAMESPACE"]
        try:
            return self.files.namespace.read_text().strip()
        except OSError as exc:
            raise KubeError(
                f"cannot tell the provider's namespace: set POD_NAMESPACE ({exc.strerror})"
            ) from None

    def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        what = _Call(f"get secret {namespace}/{name}", "get", "secrets", namespace)
        return self._call("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}", what)

    def create_secret(
        self, namespace: str, name: str, data: Mapping[str, bytes], labels: Mapping[str, str]
    ) -> dict[str, Any]:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "type": "Opaque",
            "immutable": True,
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }
        what = _Call(f"create secret {namespace}/{name}", "create", "secrets", namespace)
        return self._call("POST", f"/api/v1/namespaces/{namespace}/secrets", what, body)

    def create_service_account_token(
        self, namespace: str, service_account: str, audience: str, pod_name: str, pod_uid: str, seconds: int
    ) -> str:
        """A short-lived token for the pod's service account, bound to the pod (TokenRequest)."""
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience],
                "expirationSeconds": max(seconds, MIN_TOKEN_SECONDS),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod_name, "uid": pod_uid},
            },
        }
        path = f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token"
        what = _Call(
            f"request a token for {namespace}/{service_account}", "create", "serviceaccounts/token", namespace
        )
        answer = self._call("POST", path, what, body)
        token = answer.get("status", {}).get("token") if isinstance(answer.get("status"), dict) else None
        if not isinstance(token, str) or not token:
            raise KubeError(f"the TokenRequest for {namespace}/{service_account} returned no token")
        return token

    def _call(self, method: str, path: str, what: _Call, body: Any = None) -> dict[str, Any]:
        try:
            token = self.files.token.read_text().strip()
        except OSError as exc:
            raise KubeError(
                f"cannot {what.action}: no service-account token at {self.files.token} ({exc.strerror})"
            ) from None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode() if body is not None else None
        try:
            pool, host = self._connections()
            head = request_head(method, path, host, headers, payload)
            answer = pool.exchange(
                head + (payload or b""), method, self.timeout, time.monotonic() + self.timeout
            )
        except _FAILURES as exc:
            unreachable = f"the Kubernetes API at {self.base_url} is unreachable ({os_reason(exc)})"
            raise KubeError(f"cannot {what.action}: {unreachable}") from None
        try:
            answer_json = json.loads(answer.body)
        except (ValueError, RecursionError):
            answer_json = {}
        status = answer.status
        if status < 300 and isinstance(answer_json, dict):
            return answer_json
        reason = answer_json.get("message", "") if isinstance(answer_json, dict) else ""
        detail = f": {reason}" if isinstance(reason, str) and reason else ""
        if status == 403:
            raise KubeError(
                f"cannot {what.action}: the provider's service account needs RBAC permission to "
                f"{what.verb} {what.resource} in namespace {what.namespace} (403){detail}",
                status,
            )
        if status == 404:
            raise KubeNotFound(f"cannot {what.action}: not found (404){detail}", status)
        if status == 409:
            raise KubeConflict(f"cannot {what.action}: it already exists (409){detail}", status)
        raise KubeError(f"cannot {what.action}: HTTP {status}{detail}", status)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()

    def _connections(self) -> tuple[ConnectionPool, str]:
        """The pool (made at the first call: the CA file is read then) and the Host header."""
        with self._lock:
            if self._pool is None:
                context = ssl.create_default_context(cafile=self.ca_cert or None)
                endpoint = Endpoint.for_url(self.base_url, context)
                self._pool = ConnectionPool(endpoint, 2, _MAX_ANSWER_BYTES)
                self._host = endpoint.host_header
            return self._pool, self._host


def token_requester(kube: KubeClient) -> TokenRequester:
    """The TokenRequest fallback for Mounts: `kube`'s errors become ours (403: PermissionDenied)."""

    def request(
        namespace: str, service_account: str, audience: str, pod_name: str, pod_uid: str, seconds: int
    ) -> str:
        try:
            return kube.create_service_account_token(
                namespace, service_account, audience, pod_name, pod_uid, seconds
            )
        except KubeError as exc:
            kind = PermissionDenied if exc.status == 403 else KubernetesUnavailable
            raise kind(str(exc), status=exc.status) from None

    return request
