"""What a service-account JWT claims, read without checking its signature. Pure.

Only trusted after Vault accepted the JWT at login: that is Vault's (or the API
server's TokenReview's) check of the signature. Before that, a claim is a hint.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["jwt_claims", "jwt_pod_uid"]


def jwt_pod_uid(jwt: str) -> str | None:
    """The pod uid a Kubernetes service-account JWT is bound to, if it says."""
    kubernetes = jwt_claims(jwt).get("kubernetes.io")
    pod = kubernetes.get("pod") if isinstance(kubernetes, dict) else None
    uid = pod.get("uid") if isinstance(pod, dict) else None
    return uid if isinstance(uid, str) and uid else None


def jwt_claims(jwt: str) -> dict[str, Any]:
    """The claims of a JWT ({} when it is not a JWT)."""
    parts = jwt.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}
