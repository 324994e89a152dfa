"""`pkiCert`'s value: the certificate, its key and its CA from one PKI issue, as PEM text.

consul-template scans the issue response's string values for PEM blocks and writes each
one back out in Go's `pem.EncodeToMemory` form (base64 in 64-column lines, a newline
after the END line). Here the blocks are taken from the fields Vault puts them in
(`certificate`, `private_key`, `issuing_ca`), which is where that scan finds them for
`pki/issue`.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PemEncoded"]

_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)
_LINE = 64


@dataclass(frozen=True, slots=True)
class PemEncoded:
    """consul-template's dependency.PemEncoded; `.Data` gives itself, as its Data method does."""

    Cert: str
    Key: str
    CA: str

    @property
    def Data(self) -> PemEncoded:
        return self

    @classmethod
    def from_response(cls, response: dict[str, Any]) -> PemEncoded:
        data = response.get("data")
        fields = data if isinstance(data, dict) else {}
        return cls(
            Cert=_first_block(fields.get("certificate")),
            Key=_first_block(fields.get("private_key")),
            CA=_first_block(fields.get("issuing_ca")),
        )


def _first_block(value: Any) -> str:
    """The first PEM block of `value` re-encoded as Go writes it; "" when there is none."""
    if not isinstance(value, str):
        return ""
    match = _BLOCK.search(value)
    if match is None:
        return ""
    kind, body = match.groups()
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return ""
    encoded = base64.b64encode(der).decode("ascii")
    lines = [encoded[at : at + _LINE] for at in range(0, len(encoded), _LINE)]
    return "".join(f"{line}\n" for line in [f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"])
