"""Configure a (root-token) OpenBao client the way the tests and the demo need it.

Each function sets up one engine or auth method at a caller-chosen mount path. Mounts
that already exist are reused and configuration writes overwrite, so calling a function
twice with the same arguments is harmless. Bodies are written to the documented API paths
with hvac's adapter, which raises hvac's exceptions on errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import hvac
import hvac.exceptions

from devkit.errors import DevkitError

__all__ = [
    "VaultClient",
    "create_namespace",
    "enable_database",
    "enable_jwt_auth",
    "enable_kubernetes_auth",
    "enable_kv",
    "enable_pki",
    "jwt_role",
    "kubernetes_role",
    "namespace_client",
    "put_kv",
    "tokens_of_role",
    "write_policy",
]

# hvac ships without type hints; this alias marks where an hvac.Client is expected.
VaultClient = Any

# kubernetes_ca_cert is required even for an http apiserver, where it is never used.
_PLACEHOLDER_CA = "unused: the apiserver is reached over plain http"

_PG_CREATE = [
    """CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';""",
    """GRANT CONNECT ON DATABASE postgres TO "{{name}}";""",
]
_PG_REVOKE = [
    """REVOKE ALL PRIVILEGES ON DATABASE postgres FROM "{{name}}";""",
    """DROP ROLE IF EXISTS "{{name}}";""",
]


def enable_kv(client: VaultClient, path: str, version: int = 2) -> None:
    """Mount a KV engine of `version` (1 or 2) at `path`; an existing KV mount of that version is kept."""
    if version not in (1, 2):
        raise ValueError(f"KV version must be 1 or 2, got {version}")
    existing = _secret_mounts(client).get(f"{path}/")
    if existing is None:
        client.sys.enable_secrets_engine("kv", path=path, options={"version": str(version)})
        return
    mounted = str((existing.get("options") or {}).get("version", "1"))
    if existing.get("type") != "kv" or mounted != str(version):
        raise DevkitError(f"mount {path}/ exists as {existing.get('type')} v{mounted}, not kv v{version}")


def put_kv(client: VaultClient, mount: str, path: str, data: Mapping[str, Any], version: int = 2) -> None:
    """Write `data` as the secret at `path` in the KV mount (a new version on v2)."""
    if version == 2:
        client.secrets.kv.v2.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)
    elif version == 1:
        client.secrets.kv.v1.create_or_update_secret(path=path, secret=dict(data), mount_point=mount)
    else:
        raise ValueError(f"KV version must be 1 or 2, got {version}")


def enable_kubernetes_auth(
    client: VaultClient,
    mount: str,
    apiserver_url: str,
    ca_pem: str | None = None,
    token_reviewer_jwt: str | None = None,
) -> None:
    """Enable kubernetes auth at `mount`, pointed at `apiserver_url`, for use outside a pod.

    `ca_pem` verifies an https apiserver; leave it None for http. Without `token_reviewer_jwt`
    OpenBao presents each login's own JWT as the TokenReview bearer.
    """
    _enable_auth(client, "kubernetes", mount)
    config: dict[str, Any] = {
        "kubernetes_host": apiserver_url,
        "kubernetes_ca_cert": ca_pem or _PLACEHOLDER_CA,
        # Outside a pod there is no mounted service-account token or CA to fall back on.
        "disable_local_ca_jwt": True,
    }
    if token_reviewer_jwt is not None:
        config["token_reviewer_jwt"] = token_reviewer_jwt
    _write(client, f"auth/{mount}/config", config)


def kubernetes_role(
    client: VaultClient,
    mount: str,
    role: str,
    service_accounts: Sequence[str],
    namespaces: Sequence[str],
    policies: Sequence[str],
    audience: str | None = "vault",
    ttl: str = "1h",
) -> None:
    """Create or replace a kubernetes auth role binding service accounts in namespaces (globs allowed)."""
    body: dict[str, Any] = {
        "bound_service_account_names": list(service_accounts),
        "bound_service_account_namespaces": list(namespaces),
        "token_policies": list(policies),
        # The default token TTL would be the system maximum (32 days).
        "token_ttl": ttl,
    }
    if audience is not None:
        body["audience"] = audience
    _write(client, f"auth/{mount}/role/{role}", body)


def enable_jwt_auth(client: VaultClient, mount: str, public_key_pem: str) -> None:
    """Enable jwt auth at `mount`, trusting tokens signed by `public_key_pem` (no discovery, no JWKS)."""
    _enable_auth(client, "jwt", mount)
    _write(client, f"auth/{mount}/config", {"jwt_validation_pubkeys": [public_key_pem]})


def jwt_role(
    client: VaultClient,
    mount: str,
    role: str,
    policies: Sequence[str],
    bound_subject: str | None = None,
    bound_claims: Mapping[str, str | Sequence[str]] | None = None,
    audiences: Sequence[str] = ("vault",),
    ttl: str = "1h",
) -> None:
    """Create or replace a jwt auth role (`role_type=jwt`, `user_claim=sub`).

    At least one of `bound_subject` or `bound_claims` is required so the role never accepts
    every token the key signed. Claim keys may be JSON pointers (`/kubernetes.io/namespace`).
    """
    if bound_subject is None and not bound_claims:
        raise ValueError("jwt_role needs bound_subject or bound_claims")
    body: dict[str, Any] = {
        "role_type": "jwt",
        "user_claim": "sub",
        "bound_audiences": list(audiences),
        "token_policies": list(policies),
        "token_ttl": ttl,
    }
    if bound_subject is not None:
        body["bound_subject"] = bound_subject
    if bound_claims:
        body["bound_claims"] = {
            key: value if isinstance(value, str) else list(value) for key, value in bound_claims.items()
        }
    _write(client, f"auth/{mount}/role/{role}", body)


def write_policy(client: VaultClient, name: str, hcl: str) -> None:
    """Create or replace the ACL policy `name`."""
    client.sys.create_or_update_policy(name=name, policy=hcl)


def enable_pki(
    client: VaultClient, mount: str, role: str, allowed_domains: Sequence[str], max_ttl: str = "24h"
) -> None:
    """Mount PKI at `mount` with an internal root CA and a role issuing for subdomains of `allowed_domains`.

    The root is generated only when the mount is new; the role is (re)written every time.
    """
    if f"{mount}/" not in _secret_mounts(client):
        client.sys.enable_secrets_engine("pki", path=mount, config={"max_lease_ttl": "720h"})
        root = {"common_name": f"devkit {mount} root", "ttl": "720h"}
        _write(client, f"{mount}/root/generate/internal", root)
    role_body = {
        "allowed_domains": list(allowed_domains),
        "allow_subdomains": True,
        "max_ttl": max_ttl,
        # EC keys are generated in milliseconds; RSA-2048 would dominate issue latency.
        "key_type": "ec",
        "key_bits": 256,
    }
    _write(client, f"{mount}/roles/{role}", role_body)


def enable_database(
    client: VaultClient,
    mount: str,
    connection_url: str,
    username: str,
    password: str,
    role: str,
    default_ttl: str = "1h",
    max_ttl: str = "24h",
    connection: str = "postgres",
) -> None:
    """Mount the database engine with a PostgreSQL connection and a dynamic-credentials role.

    `connection_url` keeps `{{username}}` and `{{password}}` as templates (see
    `PostgresServer.vault_connection_url`); `username`/`password` are the admin credentials.
    Each credential is a login role with a password that expires with its lease
    (`VALID UNTIL`) and is dropped on revocation.
    """
    if f"{mount}/" not in _secret_mounts(client):
        client.sys.enable_secrets_engine("database", path=mount)
    config = {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": connection_url,
        "username": username,
        "password": password,
        "allowed_roles": [role],
        "verify_connection": True,
    }
    _write(client, f"{mount}/config/{connection}", config)
    role_body = {
        "db_name": connection,
        "creation_statements": _PG_CREATE,
        "revocation_statements": _PG_REVOKE,
        "default_ttl": default_ttl,
        "max_ttl": max_ttl,
    }
    _write(client, f"{mount}/roles/{role}", role_body)


def create_namespace(client: VaultClient, name: str) -> None:
    """Create namespace `name` under the client's own namespace; an existing one is kept."""
    try:
        client.sys.create_namespace(path=name)
    except hvac.exceptions.InvalidRequest as exc:
        if "already exists" not in str(exc):
            raise


def namespace_client(client: VaultClient, namespace: str) -> VaultClient:
    """A client like `client` (address, token, TLS settings) scoped to `namespace`.

    `namespace` is relative to the client's own namespace, so nesting composes.
    """
    adapter = type(client.adapter).from_adapter(client.adapter)
    parent = (client.adapter.namespace or "").strip("/")
    adapter.namespace = f"{parent}/{namespace}" if parent else namespace
    # hvac.Client builds its API objects from the adapter it constructs, and assigning
    # `client.adapter` afterwards does not reach the nested KV v1/v2 objects (they would keep
    # the parent's namespace). Handing the constructor a factory for the copy avoids that.
    return hvac.Client(adapter=lambda **_settings: adapter)


def _enable_auth(client: VaultClient, method: str, mount: str) -> None:
    existing = _auth_mounts(client).get(f"{mount}/")
    if existing is None:
        client.sys.enable_auth_method(method, path=mount)
    elif existing.get("type") != method:
        raise DevkitError(f"auth mount {mount}/ exists as {existing.get('type')}, not {method}")


def _secret_mounts(client: VaultClient) -> dict[str, Any]:
    return _mount_table(client.sys.list_mounted_secrets_engines())


def _auth_mounts(client: VaultClient) -> dict[str, Any]:
    return _mount_table(client.sys.list_auth_methods())


def _mount_table(response: Mapping[str, Any]) -> dict[str, Any]:
    # Vault answers with the table under "data" and (for old clients) copied at the top level.
    table = response.get("data", response)
    return {key: value for key, value in table.items() if key.endswith("/") and isinstance(value, dict)}


def _write(client: VaultClient, path: str, body: Mapping[str, Any]) -> None:
    client.adapter.post(f"/v1/{path}", json=dict(body))


def tokens_of_role(client: VaultClient, role: str) -> list[dict[str, Any]]:
    """Every live token Vault issued for an auth role (lookup-accessor data), found with a root client."""
    accessors = client.adapter.list("/v1/auth/token/accessors")["data"]["keys"]
    found = []
    for accessor in accessors:
        try:
            data = client.adapter.post("/v1/auth/token/lookup-accessor", json={"accessor": accessor})["data"]
        except hvac.exceptions.InvalidRequest:
            continue  # expired between the list and the lookup
        if (data.get("meta") or {}).get("role") == role:
            found.append(data)
    return found
