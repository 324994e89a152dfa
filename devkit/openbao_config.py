"""HCL for `bao server`: the extras of a dev server, and a raft cluster node's config (pure text, no I/O).

Dev mode serves plain HTTP on one listener; a TLS listener with a certificate of our own
(to test a custom server name) and a file audit device can only come from a config file.
OpenBao 2.x refuses to enable audit devices over the API, so the config file is the only way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TlsListener", "render_config", "render_raft_config"]


@dataclass(frozen=True)
class TlsListener:
    """A `listener "tcp"` block with TLS; `client_ca_file` set means client certificates are required."""

    address: str
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


def render_config(listener: TlsListener | None, audit_file: Path | None) -> str:
    """HCL for the optional TLS listener and file audit device; empty text when neither is wanted."""
    blocks: list[str] = []
    if listener is not None:
        body = [
            f"address = {_string(listener.address)}",
            f"tls_cert_file = {_string(str(listener.cert_file))}",
            f"tls_key_file = {_string(str(listener.key_file))}",
        ]
        if listener.client_ca_file is not None:
            body += [
                f"tls_client_ca_file = {_string(str(listener.client_ca_file))}",
                "tls_require_and_verify_client_cert = true",
            ]
        blocks.append('listener "tcp" {\n' + "".join(f"  {line}\n" for line in body) + "}\n")
    if audit_file is not None:
        options = f"    file_path = {_string(str(audit_file))}\n"
        blocks.append('audit "file" "file" {\n  options {\n' + options + "  }\n}\n")
    return "\n".join(blocks)


def render_raft_config(host: str, port: int, node_id: str, raft_dir: Path) -> str:
    """The whole config of one raft cluster node: API on `port` (plain HTTP), cluster on `port + 1`."""
    return (
        f'storage "raft" {{\n  path = {_string(str(raft_dir))}\n  node_id = {_string(node_id)}\n'
        # The tightest raft timing (heartbeats, elections) Vault allows; the default is 5x slower.
        "  performance_multiplier = 1\n}\n"
        f'listener "tcp" {{\n  address = "{host}:{port}"\n'
        f'  cluster_address = "{host}:{port + 1}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://{host}:{port}"\n'
        f'cluster_addr = "https://{host}:{port + 1}"\n'
        "disable_mlock = true\n"
    )


def _string(value: str) -> str:
    # HCL string literals accept JSON's escapes, so JSON quoting is safe for any path.
    return json.dumps(value)
