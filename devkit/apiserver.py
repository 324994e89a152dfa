"""A stand-in for the kube-apiserver: the TokenReview API OpenBao calls, and the provider's own calls.

Served routes, answering with the real API's JSON (objects and `v1.Status` errors):

- `POST /apis/authentication.k8s.io/v1/tokenreviews` (OpenBao's kubernetes auth);
- `GET /api/v1/namespaces/{ns}/secrets/{name}` and `POST /api/v1/namespaces/{ns}/secrets`
  (the provider's HMAC key Secret, kept in memory);
- `POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token` (TokenRequest: a token minted by
  the issuer, bound to the requested pod).

The object routes record every call in `api_calls` and can misbehave on request, as a real
cluster does: RBAC denials (`forbidden`), an unavailable API for the next calls (`fail_next`),
and a create that loses a race to another client (`conflict_on_next_create`). More routes plug
into the same table with `add_route`.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devkit.certs import KeyPair
from devkit.errors import InvalidToken
from devkit.http_stub import JsonHttpServer, StubRequest, StubResponse
from devkit.sa_tokens import ServiceAccountTokenIssuer

__all__ = ["TOKENREVIEW_PATH", "ApiCall", "FakeApiServer", "kube_status", "review_token"]

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
_NAMESPACE = r"/api/v1/namespaces/(?P<namespace>[^/]+)"
_SECRETS = "secrets"
_TOKENS = "serviceaccounts/token"
# The API server refuses TokenRequests shorter than this, and defaults to an hour.
_MIN_TOKEN_SECONDS = 600
_DEFAULT_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class ApiCall:
    """One call to an object route, as it arrived (before any fault or denial was applied)."""

    verb: str  # "get" or "create", as RBAC names it
    resource: str  # "secrets" or "serviceaccounts/token"
    namespace: str
    name: str  # the object, or the service account of a TokenRequest; "" for a Secret create
    body: Any = field(default=None, repr=False)  # the JSON body of a create


_Route = Callable[[ApiCall], StubResponse]


class FakeApiServer(JsonHttpServer):
    """An HTTP(S) kube-apiserver double that trusts tokens minted by `issuer`.

    `requests` counts calls per path. With `require_bearer` (the default) a call without a
    valid bearer token gets 401, as from a real apiserver; OpenBao sends the reviewed JWT itself
    as bearer when no `token_reviewer_jwt` is configured.

    `secrets` maps (namespace, name) to the stored Secret objects. `forbidden` holds
    (verb, resource) pairs, e.g. `("get", "secrets")` or `("create", "serviceaccounts/token")`,
    that RBAC denies to every caller.
    """

    def __init__(
        self, issuer: ServiceAccountTokenIssuer, tls: KeyPair | None = None, require_bearer: bool = True
    ) -> None:
        super().__init__(tls=tls)
        self.issuer = issuer
        self.require_bearer = require_bearer
        self.secrets: dict[tuple[str, str], dict[str, Any]] = {}
        self.api_calls: list[ApiCall] = []
        self.forbidden: set[tuple[str, str]] = set()
        self._objects = threading.Lock()
        self._failures: list[int] = []  # statuses for the next object calls, first first
        self._race_winners: list[Mapping[str, bytes]] = []
        self.add_route("POST", re.escape(TOKENREVIEW_PATH), self._token_review)
        self._object_route("GET", f"{_NAMESPACE}/secrets/(?P<name>[^/]+)", "get", _SECRETS, self._get_secret)
        self._object_route("POST", f"{_NAMESPACE}/secrets", "create", _SECRETS, self._create_secret)
        token_path = f"{_NAMESPACE}/serviceaccounts/(?P<name>[^/]+)/token"
        self._object_route("POST", token_path, "create", _TOKENS, self._token_request)

    # --- for tests -------------------------------------------------------------------------

    def put_secret(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, bytes],
        labels: Mapping[str, str] | None = None,
        immutable: bool = True,
    ) -> dict[str, Any]:
        """Store a Secret as if someone had created it; returns the stored object."""
        encoded = {key: base64.b64encode(value).decode("ascii") for key, value in data.items()}
        with self._objects:
            return self._store_secret(namespace, name, encoded, dict(labels or {}), immutable)

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        """The decoded `data` of a stored Secret, or None when there is none."""
        with self._objects:
            secret = self.secrets.get((namespace, name))
        if secret is None:
            return None
        return {key: base64.b64decode(value) for key, value in secret.get("data", {}).items()}

    def calls(self, resource: str, verb: str | None = None) -> list[ApiCall]:
        """The recorded calls for `resource` (and `verb`), oldest first."""
        with self._objects:
            return [c for c in self.api_calls if c.resource == resource and verb in (None, c.verb)]

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` object calls with `status` (a Status body), as an API coming up does."""
        with self._objects:
            self._failures.extend([status] * count)

    def conflict_on_next_create(self, data: Mapping[str, bytes]) -> None:
        """The next Secret create loses a race: a Secret with `data` appears under its name, then 409."""
        with self._objects:
            self._race_winners.append(dict(data))

    def reset_faults(self) -> None:
        """Forget every injected denial, failure and race; stored objects stay."""
        with self._objects:
            self.forbidden.clear()
            self._failures.clear()
            self._race_winners.clear()

    # --- the apiserver's behaviour ---------------------------------------------------------

    def not_found(self, request: StubRequest) -> StubResponse:
        """A Kubernetes `Status` 404, as the real apiserver sends for unknown paths."""
        message = "the server could not find the requested resource"
        return StubResponse(404, kube_status(404, "NotFound", message))

    def authenticate(self, request: StubRequest) -> StubResponse | None:
        """Return a 401 response unless the caller presents a valid bearer token (or none is required)."""
        if not self.require_bearer:
            return None
        token = request.bearer_token()
        if token is not None:
            try:
                self.issuer.verify(token)
            except InvalidToken:
                pass
            else:
                return None
        return StubResponse(401, kube_status(401, "Unauthorized", "Unauthorized"))

    def _token_review(self, request: StubRequest) -> StubResponse:
        denied = self.authenticate(request)
        if denied is not None:
            return denied
        try:
            review = request.json()
        except ValueError:
            return StubResponse(400, kube_status(400, "BadRequest", "request body is not JSON"))
        spec = review.get("spec") if isinstance(review, dict) else None
        if not isinstance(spec, dict) or not isinstance(spec.get("token"), str) or not spec["token"]:
            return StubResponse(400, kube_status(400, "BadRequest", "spec.token: Required value"))
        return StubResponse(201, review_token(self.issuer, spec))

    def _object_route(self, method: str, path_regex: str, verb: str, resource: str, route: _Route) -> None:
        """Register a route that is recorded, may fail or be denied, and then runs `route`."""

        def handle(request: StubRequest) -> StubResponse:
            assert request.match is not None
            groups = request.match.groupdict()
            try:
                body = request.json() if method == "POST" else None
            except ValueError:
                body = None
            call = ApiCall(verb, resource, groups["namespace"], groups.get("name") or "", body)
            with self._objects:
                self.api_calls.append(call)
                failure = self._failures.pop(0) if self._failures else None
                denied = (verb, resource) in self.forbidden
            if failure is not None:
                reason = "ServiceUnavailable" if failure == 503 else "InternalError"
                message = "the server is currently unable to handle the request"
                return StubResponse(failure, kube_status(failure, reason, message))
            unauthenticated = self.authenticate(request)
            if unauthenticated is not None:
                return unauthenticated
            if denied:
                return StubResponse(403, _forbidden(call, self._username(request)))
            if method == "POST" and not isinstance(body, dict):
                return _bad_request("the request body is not a JSON object")
            return route(call)

        self.add_route(method, path_regex, handle)

    def _username(self, request: StubRequest) -> str:
        token = request.bearer_token()
        try:
            claims = self.issuer.verify(token) if token else {}
        except InvalidToken:
            claims = {}
        return str(claims.get("sub") or "system:anonymous")

    def _get_secret(self, call: ApiCall) -> StubResponse:
        with self._objects:
            secret = self.secrets.get((call.namespace, call.name))
        if secret is None:
            return StubResponse(404, _object_status(404, "NotFound", call.name, "not found"))
        return StubResponse(200, secret)

    def _create_secret(self, call: ApiCall) -> StubResponse:
        body: dict[str, Any] = call.body
        metadata = _mapping(body.get("metadata"))
        name, namespace = metadata.get("name"), metadata.get("namespace", call.namespace)
        if body.get("kind", "Secret") != "Secret" or not isinstance(name, str) or not name:
            return _bad_request("a Secret with metadata.name is required")
        if namespace != call.namespace:
            return _bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        data = _mapping(body.get("data"))
        if not all(_is_base64(value) for value in data.values()):
            return _bad_request("data values must be base64 strings")
        labels = _mapping(metadata.get("labels"))
        with self._objects:
            if self._race_winners and (call.namespace, name) not in self.secrets:
                winner = self._race_winners.pop(0)
                encoded = {key: base64.b64encode(value).decode("ascii") for key, value in winner.items()}
                self._store_secret(call.namespace, name, encoded, {}, True)
            if (call.namespace, name) in self.secrets:
                return StubResponse(409, _object_status(409, "AlreadyExists", name, "already exists"))
            stored = self._store_secret(call.namespace, name, data, labels, body.get("immutable") is True)
        return StubResponse(201, stored)

    def _store_secret(
        self, namespace: str, name: str, data: dict[str, str], labels: dict[str, str], immutable: bool
    ) -> dict[str, Any]:
        """Store a Secret object (caller holds the lock) as the API returns it."""
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(len(self.secrets) + 1),
            "creationTimestamp": _timestamp(time.time()),
        }
        if labels:
            metadata["labels"] = dict(labels)
        secret: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1", "metadata": metadata}
        if immutable:
            secret["immutable"] = True
        secret["data"] = dict(data)
        secret["type"] = "Opaque"
        self.secrets[(namespace, name)] = secret
        return secret

    def _token_request(self, call: ApiCall) -> StubResponse:
        spec = _mapping(call.body.get("spec"))
        seconds = spec.get("expirationSeconds") or _DEFAULT_TOKEN_SECONDS
        if not isinstance(seconds, int) or seconds < _MIN_TOKEN_SECONDS:
            message = (
                f'TokenRequest.authentication.k8s.io "{call.name}" is invalid: spec.expirationSeconds: '
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"
            )
            return StubResponse(422, kube_status(422, "Invalid", message))
        audiences = spec.get("audiences") or [self.issuer.issuer]
        bound = _mapping(spec.get("boundObjectRef"))
        pod_name: str | None = None
        pod_uid: str | None = None
        if bound.get("kind") == "Pod":
            pod_name, pod_uid = str(bound.get("name", "")), str(bound.get("uid", ""))
        token = self.issuer.mint(
            call.namespace, call.name, pod_name, pod_uid, [str(aud) for aud in audiences], seconds
        )
        answer = {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": call.name, "namespace": call.namespace, "creationTimestamp": None},
            "spec": {**spec, "audiences": list(audiences), "expirationSeconds": seconds},
            "status": {"token": token, "expirationTimestamp": _timestamp(time.time() + seconds)},
        }
        return StubResponse(201, answer)


def review_token(issuer: ServiceAccountTokenIssuer, spec: dict[str, Any]) -> dict[str, Any]:
    """Build the TokenReview a real apiserver returns for `spec` ({token, audiences?}).

    The token must verify with the issuer's key and be unexpired; when `spec.audiences` is
    given it must overlap the token's `aud`, and `status.audiences` is that overlap.
    """
    requested = [str(aud) for aud in spec.get("audiences") or []]
    try:
        claims = issuer.verify(spec["token"])
    except InvalidToken as exc:
        return _review(spec, {"authenticated": False, "error": f"[invalid bearer token, {exc}]"})
    token_audiences = claims.get("aud", [])
    if isinstance(token_audiences, str):
        token_audiences = [token_audiences]
    audiences = [aud for aud in requested if aud in token_audiences] if requested else list(token_audiences)
    if not audiences:
        error = (
            f"[invalid bearer token, token audiences {token_audiences} "
            f"is invalid for the target audiences {requested}]"
        )
        return _review(spec, {"authenticated": False, "error": error})
    return _review(spec, {"authenticated": True, "user": _user_info(claims), "audiences": audiences})


def kube_status(
    code: int, reason: str, message: str, details: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A `v1.Status` failure object, the body of every apiserver error."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        status["details"] = dict(details)
    return status


def _object_status(code: int, reason: str, name: str, what: str) -> dict[str, Any]:
    """`secrets "x" not found` and its kin, with the details the real API adds."""
    return kube_status(code, reason, f'secrets "{name}" {what}', {"name": name, "kind": "secrets"})


def _forbidden(call: ApiCall, user: str) -> dict[str, Any]:
    """RBAC's 403, worded like the real authorizer's (`secrets "x" is forbidden: User ... cannot ...`)."""
    kind = call.resource.split("/")[0]
    subject = f'{kind} "{call.name}"' if call.name else kind
    message = (
        f'{subject} is forbidden: User "{user}" cannot {call.verb} resource "{call.resource}" '
        f'in API group "" in the namespace "{call.namespace}"'
    )
    details = {"name": call.name, "kind": kind} if call.name else {"kind": kind}
    return kube_status(403, "Forbidden", message, details)


def _bad_request(message: str) -> StubResponse:
    return StubResponse(400, kube_status(400, "BadRequest", message))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _review(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }


def _user_info(claims: dict[str, Any]) -> dict[str, Any]:
    kube = claims.get("kubernetes.io", {})
    namespace = kube.get("namespace", "")
    pod = kube.get("pod")
    node = kube.get("node")
    extra = {"authentication.kubernetes.io/credential-id": [f"JTI={claims.get('jti', '')}"]}
    # A token bound to no pod (a TokenRequest without boundObjectRef) has no pod or node extras.
    if node is not None:
        extra["authentication.kubernetes.io/node-name"] = [node.get("name", "")]
        extra["authentication.kubernetes.io/node-uid"] = [node.get("uid", "")]
    if pod is not None:
        extra["authentication.kubernetes.io/pod-name"] = [pod.get("name", "")]
        extra["authentication.kubernetes.io/pod-uid"] = [pod.get("uid", "")]
    return {
        "username": claims.get("sub", ""),
        "uid": kube.get("serviceaccount", {}).get("uid", ""),
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
        "extra": extra,
    }
