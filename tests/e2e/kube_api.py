"""A small client for the real kube-apiserver of the e2e suite: objects from manifests, reads, waits.

Manifests are applied by creating each object at the path API discovery names for its
kind (replacing it when it exists), exactly what `kubectl apply` sends for a new object.
Everything else is plain REST with a bearer token: the suite's admin, or a service
account's own token when a test checks what that account may do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

__all__ = ["ApiError", "KubeApi", "Resource", "wait_for"]

T = TypeVar("T")


class ApiError(RuntimeError):
    """A call the API server refused; `status` is the HTTP status, the message its own."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Resource:
    """Where objects of one kind live: /api/v1 or /apis/<group>/<version>, the plural, namespaced or not."""

    prefix: str
    plural: str
    namespaced: bool

    def collection(self, namespace: str | None) -> str:
        if self.namespaced:
            return f"{self.prefix}/namespaces/{namespace or 'default'}/{self.plural}"
        return f"{self.prefix}/{self.plural}"


@dataclass
class KubeApi:
    base_url: str
    token: str = field(repr=False)
    ca_path: Path
    _session: requests.Session = field(default_factory=requests.Session, repr=False)
    _kinds: dict[tuple[str, str], Resource] = field(default_factory=dict, repr=False)

    def as_token(self, token: str) -> KubeApi:
        """The same API server, called with another bearer token (a service account's)."""
        return KubeApi(self.base_url, token, self.ca_path)

    # --- REST ---------------------------------------------------------------------------------

    def call(
        self, method: str, path: str, body: Any = None, *, params: Mapping[str, str] | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        response = self._session.request(
            method,
            self.base_url + path,
            json=body,
            headers=headers,
            params=params,
            verify=str(self.ca_path),
            timeout=30,
        )
        answer = response.json() if response.content else {}
        if response.status_code >= 300:
            message = answer.get("message", response.text) if isinstance(answer, dict) else response.text
            raise ApiError(f"{method} {path}: {response.status_code} {message}", response.status_code)
        return answer

    def get(self, path: str, **params: str) -> Any:
        return self.call("GET", path, params=params or None)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def delete(self, path: str, *, grace_seconds: int | None = None, propagation: str | None = None) -> None:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if propagation is not None:
            body["propagationPolicy"] = propagation
        try:
            self.call("DELETE", path, body)
        except ApiError as exc:
            if exc.status != 404:
                raise

    # --- objects ------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """Where `kind` objects live, from API discovery (cached)."""
        key = (api_version, kind)
        if key not in self._kinds:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            for entry in self.get(prefix)["resources"]:
                if "/" not in entry["name"]:
                    self._kinds[(api_version, entry["kind"])] = Resource(
                        prefix, entry["name"], entry["namespaced"]
                    )
        return self._kinds[key]

    def path_of(self, obj: Mapping[str, Any]) -> str:
        resource = self.resource(obj["apiVersion"], obj["kind"])
        metadata = obj["metadata"]
        return f"{resource.collection(metadata.get('namespace'))}/{metadata['name']}"

    def apply(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> Any:
        """Create the object, or replace it (keeping its resourceVersion) when it exists.

        With `dry_run` the server validates and admits the object fully but stores nothing.
        """
        resource = self.resource(obj["apiVersion"], obj["kind"])
        collection = resource.collection(obj["metadata"].get("namespace"))
        params = {"dryRun": "All"} if dry_run else None
        try:
            return self.call("POST", collection, obj, params=params)
        except ApiError as exc:
            if exc.status != 409:
                raise
        current = self.get(self.path_of(obj))
        replacement = {
            **obj,
            "metadata": {**obj["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]},
        }
        return self.call("PUT", self.path_of(obj), replacement, params=params)

    def apply_all(self, objects: Iterable[Mapping[str, Any]]) -> list[Any]:
        return [self.apply(obj) for obj in objects if obj]

    def apply_file(self, path: Path, namespace: str | None = None) -> list[Any]:
        """Every document of a manifest file; `namespace` for namespaced objects that name none."""
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        if namespace is not None:
            for doc in documents:
                doc.setdefault("metadata", {}).setdefault("namespace", namespace)
        return self.apply_all(documents)

    def service_account_token(
        self,
        namespace: str,
        name: str,
        audiences: list[str],
        seconds: int = 3600,
        pod: tuple[str, str] | None = None,
    ) -> str:
        """A TokenRequest's token for the service account; bound to `pod` (name, uid) when given."""
        spec: dict[str, Any] = {"audiences": audiences, "expirationSeconds": seconds}
        if pod is not None:
            spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": pod[0], "uid": pod[1]}
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        answer = self.call("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", body)
        return str(answer["status"]["token"])


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """The first truthy result of `probe` within `timeout` seconds; AssertionError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = probe()
            if result:
                return result
        except (ApiError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {timeout:.0f} s: {what}" + (f" (last error: {last})" if last else "")
            )
        time.sleep(interval)
