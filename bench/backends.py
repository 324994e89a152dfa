"""Start and configure the real backends: OpenBao with a file audit device, the TokenReview
stand-in, and PostgreSQL for the database engine (optional: without it scenario b is skipped).

Everything listens on 127.0.0.1 and is registered on the caller's ExitStack, so it is
stopped on every way out of the run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac.exceptions

from bench import layout
from devkit import (
    BackendMissing,
    DevkitError,
    FakeApiServer,
    OpenBaoServer,
    PostgresServer,
    ServiceAccountTokenIssuer,
)
from devkit import vault_setup as setup

__all__ = ["Backends", "count_database_leases", "start_backends"]


@dataclass
class Backends:
    """The running backends; `postgres` is None when PostgreSQL could not be started (`why_no_database`)."""

    bao: OpenBaoServer
    root: Any  # an hvac client with the root token
    issuer: ServiceAccountTokenIssuer
    apiserver: FakeApiServer
    postgres: PostgresServer | None
    why_no_database: str

    @property
    def audit_log(self) -> Path:
        assert self.bao.audit_log_path is not None
        return self.bao.audit_log_path


def start_backends(stack: contextlib.ExitStack, *, database: bool, storm_objects: int) -> Backends:
    """Start everything and write the benchmark layout into OpenBao."""
    issuer = ServiceAccountTokenIssuer()
    apiserver = stack.enter_context(FakeApiServer(issuer))
    bao = OpenBaoServer(audit=True)
    stack.callback(bao.stop)
    bao.start()
    root = bao.client()
    setup.write_policy(root, layout.POLICY_NAME, layout.POLICY)
    setup.enable_kubernetes_auth(root, layout.AUTH_MOUNT, apiserver.url)
    setup.kubernetes_role(
        root,
        layout.AUTH_MOUNT,
        layout.ROLE,
        layout.ROLE_SERVICE_ACCOUNTS,
        layout.ROLE_NAMESPACES,
        [layout.POLICY_NAME],
        ttl=layout.TOKEN_TTL,
    )
    for secret in layout.kv_secrets(storm_objects):
        setup.put_kv(root, layout.KV_MOUNT, secret.path, secret.data)
    setup.enable_pki(root, layout.PKI_MOUNT, layout.PKI_ROLE, [layout.PKI_DOMAIN])

    postgres: PostgresServer | None = None
    why_no_database = "not needed (scenario b not selected)"
    if database:
        postgres, why_no_database = _start_postgres(stack)
        if postgres is not None:
            setup.enable_database(
                root,
                layout.DB_MOUNT,
                postgres.vault_connection_url,
                postgres.superuser,
                postgres.password,
                layout.DB_ROLE,
                default_ttl="1h",
                max_ttl="24h",
            )
    return Backends(bao, root, issuer, apiserver, postgres, why_no_database)


def _start_postgres(stack: contextlib.ExitStack) -> tuple[PostgresServer | None, str]:
    server = PostgresServer()
    stack.callback(server.stop)
    try:
        server.start()
    except (BackendMissing, DevkitError) as exc:
        return None, str(exc)
    return server, ""


def count_database_leases(root: Any) -> int:
    """How many leases of the database role exist right now (a LIST on sys/leases/lookup, as root)."""
    try:
        response = root.adapter.list(f"/v1/sys/leases/lookup/{layout.DB_MOUNT}/creds/{layout.DB_ROLE}/")
    except hvac.exceptions.InvalidPath:  # 404: there are none
        return 0
    keys = (response or {}).get("data", {}).get("keys", []) if isinstance(response, dict) else []
    return len(keys)
