"""A Vault response → the bytes of one file, byte-compatible with the upstream provider.

Pure. Without `secretKey` the file is the response envelope as Go's Vault client
re-serialises it; with `secretKey` it is one value of `data` (of `data.data` for
KV v2), strings raw and anything else as Go-style compact JSON; then `encoding`
decodes it. Errors never quote the values involved.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from provider.errors import SecretNotFound, VaultUnavailable
from provider.render import gojson

__all__ = ["ExtractError", "decode", "envelope", "response_data", "select_key", "select_pointer"]

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


class ExtractError(ValueError):
    """The value cannot be decoded as the object's `encoding` says."""


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    try:
        return int(str(value)) if value is not None and not isinstance(value, bool) else 0
    except ValueError:
        return 0


def _string_list(value: Any) -> list[str] | None:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else None


_KNOWN_FIELDS = (
    "request_id",
    "lease_id",
    "lease_duration",
    "renewable",
    "data",
    "warnings",
    "auth",
    "wrap_info",
    "mount_type",
)


def response_data(payload: Any) -> dict[str, Any] | None:
    """The `data` map as Go's api.ParseSecret sees it, or None when there is none.

    A body with none of the envelope's fields set is itself taken as the data, as
    Go's client does for endpoints that answer with bare JSON.
    """
    if not isinstance(payload, dict):
        return None
    data = payload.get("data")
    if isinstance(data, dict):
        return data
    if _is_bare(payload):
        if set(payload) == {"errors"}:
            return None
        return payload or None
    return None


def _is_bare(payload: dict[str, Any]) -> bool:
    return not any(
        payload.get(name) not in (None, "", 0, False) and payload.get(name) != gojson.JsonNumber("0")
        for name in _KNOWN_FIELDS
    )


def envelope(payload: dict[str, Any]) -> bytes:
    """The whole response as upstream writes it: Go's api.Secret marshalled."""
    data = response_data(payload)
    fields: list[tuple[str, Any]] = [
        ("request_id", _str(payload.get("request_id"))),
        ("lease_id", _str(payload.get("lease_id"))),
        ("lease_duration", _int(payload.get("lease_duration"))),
        ("renewable", payload.get("renewable") is True),
        ("data", data),
        ("warnings", _string_list(payload.get("warnings"))),
    ]
    auth = payload.get("auth")
    if isinstance(auth, dict):
        fields.append(("auth", gojson.RawJson(_auth_json(auth))))
    wrap = payload.get("wrap_info")
    if isinstance(wrap, dict):
        fields.append(("wrap_info", gojson.RawJson(_wrap_json(wrap))))
    if _str(payload.get("mount_type")):
        fields.append(("mount_type", payload["mount_type"]))
    return gojson.dumps_fields(fields).encode()


def _auth_json(auth: dict[str, Any]) -> str:
    metadata = auth.get("metadata")
    mfa = _mfa_json(auth.get("mfa_requirement"))
    return gojson.dumps_fields(
        [
            ("client_token", _str(auth.get("client_token"))),
            ("accessor", _str(auth.get("accessor"))),
            ("policies", _string_list(auth.get("policies"))),
            ("token_policies", _string_list(auth.get("token_policies"))),
            ("identity_policies", _string_list(auth.get("identity_policies"))),
            (
                "metadata",
                {k: v for k, v in metadata.items() if isinstance(v, str)}
                if isinstance(metadata, dict)
                else None,
            ),
            ("orphan", auth.get("orphan") is True),
            ("entity_id", _str(auth.get("entity_id"))),
            ("lease_duration", _int(auth.get("lease_duration"))),
            ("renewable", auth.get("renewable") is True),
            ("mfa_requirement", mfa),
        ]
    )


def _mfa_json(mfa: Any) -> gojson.RawJson | None:
    if not isinstance(mfa, dict):
        return None
    fields: list[tuple[str, Any]] = []
    if _str(mfa.get("mfa_request_id")):
        fields.append(("mfa_request_id", mfa["mfa_request_id"]))
    if isinstance(mfa.get("mfa_constraints"), dict) and mfa["mfa_constraints"]:
        fields.append(("mfa_constraints", mfa["mfa_constraints"]))
    return gojson.RawJson(gojson.dumps_fields(fields))


def _wrap_json(wrap: dict[str, Any]) -> str:
    return gojson.dumps_fields(
        [
            ("token", _str(wrap.get("token"))),
            ("accessor", _str(wrap.get("accessor"))),
            ("ttl", _int(wrap.get("ttl"))),
            ("creation_time", _str(wrap.get("creation_time")) or "0001-01-01T00:00:00Z"),
            ("creation_path", _str(wrap.get("creation_path"))),
            ("wrapped_accessor", _str(wrap.get("wrapped_accessor"))),
        ]
    )


def secret_data(data: dict[str, Any]) -> dict[str, Any]:
    """The secret's own keys: `data.data` for KV v2 (when it is a map), else `data`."""
    inner = data.get("data")
    return inner if isinstance(inner, dict) else data


def value_bytes(value: Any) -> bytes:
    """A value as upstream writes it: strings raw, anything else as Go JSON."""
    if gojson.is_text(value):
        return gojson.utf8(value)
    return gojson.dumps(value).encode()


def select_key(data: dict[str, Any], key: str) -> bytes:
    """One key of the data (of `data.data` for KV v2): strings raw, other values as Go JSON."""
    source = secret_data(data)
    if key not in source:
        raise SecretNotFound(f'key "{key}" does not exist in the secret (it has {len(source)} keys)')
    return value_bytes(source[key])


def select_pointer(data: dict[str, Any], keys: tuple[str, ...]) -> bytes:
    """The value a JSON Pointer's keys reach in the secret's data (lists by index), as select_key writes."""
    value: Any = secret_data(data)
    reached = ""
    for key in keys:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif (
            isinstance(value, list)
            and key.isdigit()
            and (key == "0" or key[0] != "0")
            and int(key) < len(value)
        ):
            value = value[int(key)]
        else:
            where = f'"{reached}"' if reached else "the secret"
            kind = "a list" if isinstance(value, list) else "a map" if isinstance(value, dict) else "a value"
            raise SecretNotFound(f'secretKeyPointer: {where} is {kind} without "{key}"')
        reached += "/" + key.replace("~", "~0").replace("/", "~1")
    return value_bytes(value)


def decode(value: bytes, encoding: str) -> bytes:
    """Apply the object's `encoding` (utf-8: as is; base64 and hex: decoded)."""
    if encoding == "utf-8":
        return value
    if encoding == "base64":
        # Go's StdEncoding skips CR and LF but wants padding and nothing else.
        cleaned = value.replace(b"\r", b"").replace(b"\n", b"")
        try:
            return base64.b64decode(cleaned, validate=True)
        except (binascii.Error, ValueError):
            raise ExtractError("is not valid base64 (standard alphabet, with padding)") from None
    if encoding == "hex":
        text = value.decode("ascii", errors="replace")
        if not _HEX.fullmatch(text):
            raise ExtractError("is not valid hex (an even number of 0-9, a-f digits)")
        return bytes.fromhex(text)
    raise ExtractError(f"has an unknown encoding {encoding!r}")


def require_data(payload: Any, what: str) -> dict[str, Any]:
    """The response's data or a clear error (upstream: 'empty response')."""
    data = response_data(payload)
    if data is None:
        if payload is None:
            raise VaultUnavailable(f"Vault answered {what} with an empty body")
        raise SecretNotFound(f"Vault's answer to {what} has no data")
    return data
