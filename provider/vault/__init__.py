"""Talking to Vault: a target (`target`), transports (`transport`, the seam tests use),
HTTP/1.1 of our own (`http11`, `http11_body`, `endpoint`, `pool`), the client with retries
in the deadline (`client`), which node of a cluster to ask and which redirects to follow
(`failover`), status → error (`replies`), a per-Mount `session`, the token endpoints
(`token_api`) and the KV v2 mount check (`kv_paths`).

May import request (only the pure `vault_request` type), render (only `gojson`), errors,
settings and the standard library; no HTTP library. Never the YAML or template parsers:
importing the client loads neither (a contract checks it).
"""
