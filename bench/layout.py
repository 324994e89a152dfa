"""What the benchmark puts into Vault and asks for: paths, roles, secrets and object lists (pure).

`backends` writes this layout into OpenBao; `workload` builds the SecretProviderClass
parameters that read it. One kubernetes auth role admits every benchmark pod through
globs on namespace and service-account names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTH_MOUNT",
    "DB_MOUNT",
    "DB_ROLE",
    "KV_MOUNT",
    "PKI_COMMON_NAME",
    "PKI_DOMAIN",
    "PKI_MOUNT",
    "PKI_ROLE",
    "POLICY",
    "POLICY_NAME",
    "ROLE",
    "ROLE_NAMESPACES",
    "ROLE_SERVICE_ACCOUNTS",
    "TOKEN_TTL",
    "KvSecret",
    "dynamic_objects",
    "kv_secrets",
    "objects_yaml",
    "scale_objects",
    "static_objects",
    "storm_objects",
    "template_objects",
]

AUTH_MOUNT = "kubernetes"
ROLE = "bench"
ROLE_NAMESPACES = ("bench-*",)
ROLE_SERVICE_ACCOUNTS = ("bench-*",)
# The Vault token a login returns lives this long (the role's token_ttl).
TOKEN_TTL = "1h"  # noqa: S105 - a duration
POLICY_NAME = "bench"

KV_MOUNT = "secret"  # the dev server's KV v2
PKI_MOUNT = "pki"
PKI_ROLE = "web"
PKI_DOMAIN = "example.test"
PKI_COMMON_NAME = f"app.{PKI_DOMAIN}"
DB_MOUNT = "database"
DB_ROLE = "app"

POLICY = f"""
path "{KV_MOUNT}/data/bench/*" {{ capabilities = ["read"] }}
path "{PKI_MOUNT}/issue/{PKI_ROLE}" {{ capabilities = ["create", "update"] }}
path "{DB_MOUNT}/creds/{DB_ROLE}" {{ capabilities = ["read"] }}
"""


@dataclass(frozen=True)
class KvSecret:
    """A KV v2 secret: its path under the mount and its data."""

    path: str
    data: dict[str, Any]


_APP_SECRETS = (
    KvSecret("bench/app/db", {"username": "app", "password": "s3cr3t-benchmark-password"}),
    KvSecret("bench/app/api", {"key": "bench-api-key-0123456789abcdef"}),
    KvSecret("bench/app/config", {"flags": {"beta": True, "limit": 10}, "region": "eu-west-1"}),
)


def _storm_secret(index: int) -> KvSecret:
    return KvSecret(f"bench/storm/s{index}", {"a": f"storm-{index}-a" * 4, "b": f"storm-{index}-b" * 4})


def _storm_paths(objects: int) -> int:
    return (objects + 1) // 2


def kv_secrets(storm_objects: int) -> list[KvSecret]:
    """Every KV secret the scenarios read: the app's three, and the storm's (two keys per path)."""
    return [*_APP_SECRETS, *(_storm_secret(i) for i in range(_storm_paths(storm_objects)))]


def _kv_object(name: str, path: str, key: str) -> dict[str, Any]:
    return {"objectName": name, "secretPath": f"{KV_MOUNT}/data/{path}", "secretKey": key}


def static_objects() -> list[dict[str, Any]]:
    """Scenario a: five objects over three KV v2 paths."""
    db, api, config = (secret.path for secret in _APP_SECRETS)
    return [
        _kv_object("db-username", db, "username"),
        _kv_object("db-password", db, "password"),
        _kv_object("api-key", api, "key"),
        _kv_object("config/flags.json", config, "flags"),
        _kv_object("config/region", config, "region"),
    ]


def static_read_paths() -> list[str]:
    """The HTTP paths of scenario a's distinct reads, as a provider sends them, first use first."""
    return list(dict.fromkeys(f"/v1/{obj['secretPath']}" for obj in static_objects()))


def template_objects() -> list[dict[str, Any]]:
    """Scenario e: the Agent Injector's usual shapes (.env, properties, JSON, YAML) over a's paths."""
    db, api, config = (f'secret "{KV_MOUNT}/data/{secret.path}"' for secret in _APP_SECRETS)
    return [
        {
            "objectName": "db.env",
            "template": f"{{{{- with {db} -}}}}\nDB_USER={{{{ .Data.data.username }}}}\n"
            "DB_PASSWORD={{ .Data.data.password }}\n{{- end }}\n",
        },
        {
            "objectName": "api.properties",
            "template": f"{{{{ with {api} }}}}{{{{ range $k, $v := .Data.data }}}}"
            "api.{{ $k }}={{ $v }}\n{{ end }}{{ end }}",
        },
        {
            "objectName": "config.json",
            "template": f"{{{{ with {config} }}}}{{{{ toJSON .Data.data }}}}{{{{ end }}}}",
        },
        {
            "objectName": "config.yaml",
            "template": f"{{{{ with {config} }}}}{{{{ toYAML .Data.data }}}}{{{{ end }}}}",
        },
        {
            "objectName": "all.env",
            "template": f"{{{{ with {db} }}}}USER={{{{ .Data.data.username }}}}\n{{{{ end }}}}"
            f"{{{{ with {api} }}}}API_KEY={{{{ .Data.data.key }}}}\n{{{{ end }}}}"
            f"{{{{ with {config} }}}}REGION={{{{ .Data.data.region }}}}\n"
            '{{ index .Data.data.flags "limit" | printf "LIMIT=%v" }}\n{{ end }}',
        },
    ]


def dynamic_objects() -> list[dict[str, Any]]:
    """Scenario b: a's objects, a database credential (one lease) and a PKI certificate (one issuance)."""
    creds = f"{DB_MOUNT}/creds/{DB_ROLE}"
    issue = {
        "secretPath": f"{PKI_MOUNT}/issue/{PKI_ROLE}",
        "method": "PUT",
        "secretArgs": {"common_name": PKI_COMMON_NAME, "ttl": "24h"},
    }
    return [
        *static_objects(),
        {"objectName": "pg/username", "secretPath": creds, "secretKey": "username"},
        {"objectName": "pg/password", "secretPath": creds, "secretKey": "password"},
        {"objectName": "tls/tls.crt", **issue, "secretKey": "certificate"},
        {"objectName": "tls/tls.key", **issue, "secretKey": "private_key", "filePermission": 0o600},
    ]


def scale_objects() -> list[dict[str, Any]]:
    """`python -m bench.scale`: a's five KV objects and one database credential (one lease)."""
    creds = f"{DB_MOUNT}/creds/{DB_ROLE}"
    return [
        *static_objects(),
        {"objectName": "pg/username", "secretPath": creds, "secretKey": "username"},
        {"objectName": "pg/password", "secretPath": creds, "secretKey": "password"},
    ]


def storm_objects(count: int) -> list[dict[str, Any]]:
    """Scenario c: `count` objects, two keys per KV path."""
    objects = []
    for index in range(count):
        secret = _storm_secret(index // 2)
        key = "a" if index % 2 == 0 else "b"
        objects.append(_kv_object(f"storm/{index:02d}", secret.path, key))
    return objects


def objects_yaml(objects: list[dict[str, Any]]) -> str:
    """The SPC `objects` parameter. JSON is YAML, and leaves nothing to YAML's type guessing."""
    return "\n".join(f"- {json.dumps(item, sort_keys=True)}" for item in objects) + "\n"
