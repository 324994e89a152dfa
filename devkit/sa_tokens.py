"""Projected service-account tokens, signed with a key of our own instead of the cluster's.

The tokens carry the same header and claims a kubelet-requested token has, so OpenBao's
kubernetes and jwt auth methods treat them like the real thing.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devkit.errors import InvalidToken
from devkit.jws import b64url_encode, sign_rs256, verify_rs256

__all__ = ["DEFAULT_ISSUER", "ServiceAccountTokenIssuer", "service_account_uid"]

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# An expired token ends this long before "now", beyond any clock-skew leeway a verifier allows.
_EXPIRED_BY_SECONDS = 300
_UID_NAMESPACE = uuid.UUID("6f1c1f0e-3a52-4c61-9a57-8c1f8f6d2b10")


def service_account_uid(namespace: str, name: str) -> str:
    """A stable UID for a service account, so tokens and TokenReviews agree across calls."""
    return str(uuid.uuid5(_UID_NAMESPACE, f"serviceaccount/{namespace}/{name}"))


class ServiceAccountTokenIssuer:
    """Holds an RSA-2048 signing key; mints and verifies service-account shaped JWTs."""

    def __init__(self, issuer: str = DEFAULT_ISSUER, node_name: str = "devkit-node") -> None:
        self.issuer = issuer
        self.node_name = node_name
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Kubernetes derives the kid the same way: base64url(SHA-256(DER SubjectPublicKeyInfo)).
        self.kid = b64url_encode(hashlib.sha256(public_der).digest())
        self.public_key_pem = (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def mint(
        self,
        namespace: str,
        service_account: str,
        pod_name: str | None,
        pod_uid: str | None,
        audiences: Sequence[str] = ("vault",),
        ttl_seconds: int = 600,
        expired: bool = False,
    ) -> str:
        """Return a signed token for a pod's service account, valid for `ttl_seconds`.

        With `expired=True` the whole validity window lies in the past, for negative tests.
        With `pod_name` and `pod_uid` None the token is bound to no pod, as a TokenRequest
        without a boundObjectRef is (the secrets-store-sync-controller's): no pod or node claim.
        """
        now = int(time.time())
        issued_at = now - ttl_seconds - _EXPIRED_BY_SECONDS if expired else now
        kubernetes: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {
                "name": service_account,
                "uid": service_account_uid(namespace, service_account),
            },
        }
        if pod_name is not None or pod_uid is not None:
            # Since Kubernetes 1.30 a pod-bound token also names the pod's node.
            kubernetes["node"] = {
                "name": self.node_name,
                "uid": str(uuid.uuid5(_UID_NAMESPACE, self.node_name)),
            }
            kubernetes["pod"] = {"name": pod_name or "", "uid": pod_uid or ""}
        claims: dict[str, Any] = {
            "aud": list(audiences),
            "exp": issued_at + ttl_seconds,
            "iat": issued_at,
            "nbf": issued_at,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": kubernetes,
        }
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        return sign_rs256(self._key, header, claims)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a token this issuer minted and that is valid now.

        Checks signature, `kid`, `iss`, `exp` and `nbf`; audiences are left to the caller.
        Raises `InvalidToken` saying which check failed.
        """
        header, claims = verify_rs256(self._key.public_key(), token)
        if header.get("kid") != self.kid:
            raise InvalidToken("token was signed with an unknown key id")
        if claims.get("iss") != self.issuer:
            raise InvalidToken("token issuer is not trusted")
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(exp, int) or not isinstance(nbf, int):
            raise InvalidToken("token exp/nbf claims are not integers")
        if exp <= now:
            raise InvalidToken("token has expired")
        if nbf > now:
            raise InvalidToken("token is not valid yet")
        return claims
