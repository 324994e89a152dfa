"""A stand-in for the kube-apiserver, answering the calls OpenBao's kubernetes auth makes.

Only the TokenReview API is served for now; further Kubernetes routes (TokenRequest,
Secrets) plug into the same route table with `add_route`. Responses follow the real API's
JSON so that clients cannot tell the difference for the fields they read.
"""

from __future__ import annotations

import re
from typing import Any

from provider.devkit.certs import KeyPair
from provider.devkit.errors import InvalidToken
from provider.devkit.http_stub import JsonHttpServer, StubRequest, StubResponse
from provider.devkit.sa_tokens import ServiceAccountTokenIssuer

__all__ = ["TOKENREVIEW_PATH", "FakeApiServer", "kube_status", "review_token"]

TOKENREVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


class FakeApiServer(JsonHttpServer):
    """An HTTP(S) kube-apiserver double that trusts tokens minted by `issuer`.

    `requests` counts calls per path. With `require_bearer` (the default) a call without a
    valid bearer token gets 401, as from a real apiserver; OpenBao sends the reviewed JWT itself
    as bearer when no `token_reviewer_jwt` is configured.
    """

    def __init__(
        self, issuer: ServiceAccountTokenIssuer, tls: KeyPair | None = None, require_bearer: bool = True
    ) -> None:
        super().__init__(tls=tls)
        self.issuer = issuer
        self.require_bearer = require_bearer
        self.add_route("POST", re.escape(TOKENREVIEW_PATH), self._token_review)

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


def kube_status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A `v1.Status` failure object, the body of every apiserver error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


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
    pod = kube.get("pod", {})
    node = kube.get("node", {})
    extra = {
        "authentication.kubernetes.io/credential-id": [f"JTI={claims.get('jti', '')}"],
        "authentication.kubernetes.io/node-name": [node.get("name", "")],
        "authentication.kubernetes.io/node-uid": [node.get("uid", "")],
        "authentication.kubernetes.io/pod-name": [pod.get("name", "")],
        "authentication.kubernetes.io/pod-uid": [pod.get("uid", "")],
    }
    return {
        "username": claims.get("sub", ""),
        "uid": kube.get("serviceaccount", {}).get("uid", ""),
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
        "extra": extra,
    }
