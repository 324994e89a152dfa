"""Compact RS256 JSON Web Signatures: just enough JWT for service-account shaped tokens.

Only RS256 is produced and accepted; any other `alg` (notably `none`) is rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from devkit.errors import InvalidToken

__all__ = ["b64url_decode", "b64url_encode", "sign_rs256", "verify_rs256"]


def b64url_encode(data: bytes) -> str:
    """Base64url without padding, as JOSE requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url_encode`; raises `InvalidToken` on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed base64url segment") from exc


def sign_rs256(key: rsa.RSAPrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Return `header.claims.signature` signed with RSASSA-PKCS1-v1_5 / SHA-256."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(signature)}"


def verify_rs256(key: rsa.RSAPublicKey, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check the RS256 signature of a compact JWS and return its (header, claims).

    Only the signature is checked here; time claims are the caller's business.
    """
    parts = token.split(".")
    if not token.isascii() or len(parts) != 3:
        raise InvalidToken("token is not a compact JWS (expected 3 dot-separated parts)")
    header = _json_object(b64url_decode(parts[0]), "header")
    if header.get("alg") != "RS256":
        raise InvalidToken(f"unsupported signing algorithm {header.get('alg')!r}, expected RS256")
    claims = _json_object(b64url_decode(parts[1]), "claims")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        key.verify(b64url_decode(parts[2]), signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise InvalidToken("signature does not verify") from exc
    return header, claims


def _segment(value: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidToken(f"token {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise InvalidToken(f"token {what} is not a JSON object")
    return value
