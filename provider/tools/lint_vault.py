"""`lint --vault`: try a SecretProviderClass against a real Vault without writing anything.

After the static checks pass, a class is tried with a given Vault token, or by logging
in with a given service-account JWT as its `roleName` (as the pod would; that token is
revoked afterwards). Then every distinct request is checked against the token's
policies (`sys/capabilities-self`), and those that are plain KV reads are made, so a
missing secret, a missing `secretKey`, a key that cannot be a file name or a template
that does not render is caught in CI. Requests that could change Vault's state (writes
such as a PKI issue, and reads of other engines, which may issue credentials) are only
checked for permission: the dry run creates no lease, certificate or credential.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from provider.errors import ProviderError, redact
from provider.mount.object_files import object_files
from provider.mount.plan import MountPlan
from provider.mount.read_errors import read_error
from provider.mount.target_policy import resolve_target
from provider.render import gojson
from provider.request.jwt_claims import jwt_claims
from provider.request.mount_request import MountConfig, VaultOverrides
from provider.request.vault_request import VaultRequest
from provider.settings import parse_settings
from provider.vault.client import VaultClient
from provider.vault.deadline import Deadline
from provider.vault.kv_paths import KvV2Paths, mount_info
from provider.vault.session import VaultSession
from provider.vault.target import VaultTarget
from provider.vault.token_api import login, revoke_self

__all__ = ["DryRun", "Note", "dry_run"]

# Engines whose reads only read: anything else may mint a credential on GET (database, aws, ...).
READ_ONLY_ENGINES = ("kv", "generic")
# What a request needs in the token's capabilities (any one of them; root allows everything).
NEEDED = {"GET": ("read",), "PUT": ("update", "create"), "POST": ("update", "create")}
REVOKE_SECONDS = 5.0
_LOOKUP_SELF = VaultRequest("GET", "/v1/auth/token/lookup-self")


@dataclass(frozen=True)
class DryRun:
    """Where CI reaches Vault and with what identity; the SecretProviderClass's TLS files are node paths."""

    address: str
    ca_cert: str = ""
    token: str = field(default="", repr=False)
    jwt: str = field(default="", repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class Note:
    text: str
    problem: bool


def dry_run(config: MountConfig, options: DryRun, client: VaultClient) -> Iterator[Note]:
    """Notes for one parsed class: each problem, what was only checked by permission, and a summary."""
    try:
        session = VaultSession(client, _target(config, options), Deadline(options.timeout))
    except ProviderError as exc:
        yield Note(f"--vault: {exc}", problem=True)
        return
    sensitive = [options.token, options.jwt]
    logged_in = ""
    try:
        if options.jwt:
            auth_mount = config.auth_mount or "kubernetes"
            account = _service_account(config, options.jwt)
            token = login(session, auth_mount, config.role, options.jwt, account).value
            logged_in = token
            sensitive.append(token)
        else:
            token = options.token
            try:
                session.with_token(token).send(_LOOKUP_SELF)
            except ProviderError as exc:
                raise exc.prefixed("the given token does not work") from None
    except ProviderError as exc:
        yield Note(f"--vault: {redact(str(exc), sensitive)}", problem=True)
        return
    how = f'logged in as role "{config.role}"' if options.jwt else "with the given token"
    try:
        yield from _try_objects(config, session.with_token(token), sensitive, how)
    finally:
        if logged_in:
            revoke_self(VaultSession(client, session.target, Deadline(REVOKE_SECONDS), logged_in))


def _target(config: MountConfig, options: DryRun) -> VaultTarget:
    flags = [f"-vault-addr={options.address}"]
    if options.ca_cert:
        flags.append(f"-vault-tls-ca-cert={options.ca_cert}")
    # Only the namespace is kept from the class: its address and TLS files are the node's.
    overrides = VaultOverrides(namespace=config.vault_overrides.namespace)
    return resolve_target(parse_settings(flags, environ={}), overrides)


def _service_account(config: MountConfig, jwt: str) -> str:
    """The JWT's own service account for messages ("namespace/name"), else the stand-in pod's."""
    kubernetes = jwt_claims(jwt).get("kubernetes.io")
    namespace, account = config.pod.namespace, config.pod.service_account
    if isinstance(kubernetes, dict):
        namespace = _text(kubernetes.get("namespace")) or namespace
        service_account = kubernetes.get("serviceaccount")
        if isinstance(service_account, dict):
            account = _text(service_account.get("name")) or account
    return f"{namespace}/{account}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _try_objects(
    config: MountConfig, session: VaultSession, sensitive: list[str], how: str
) -> Iterator[Note]:
    kv2 = KvV2Paths()
    plan = MountPlan.of(config.objects, lambda request: kv2.resolve(session, request))
    try:
        allowed = _capabilities(session, plan.requests)
    except ProviderError as exc:
        yield Note(f"--vault: cannot ask for the token's capabilities: {redact(str(exc), sensitive)}", True)
        return

    payloads: dict[VaultRequest, Any] = {}
    unread: dict[VaultRequest, str] = {}
    problems = 0
    for request, obj in plan.first_user.items():
        capabilities = allowed[request]
        if not (set(capabilities) & {*NEEDED[request.method], "root"}):
            problems += 1
            yield Note(
                f"{obj.label()}: {request.describe()}: the token's policies do not allow it "
                f"(capabilities: {', '.join(capabilities) or 'none'}; "
                f"needs {' or '.join(NEEDED[request.method])})",
                problem=True,
            )
            continue
        engine = _engine(session, request) if request.method == "GET" else ""
        if engine not in READ_ONLY_ENGINES:
            unread[request] = (
                "a write" if request.method != "GET" else f"a read of a {engine or 'non-KV'} engine"
            )
            continue
        try:
            payloads[request] = session.send(request).payload
        except ProviderError as exc:
            problems += 1
            yield Note(str(read_error(obj, request, exc, sensitive)), problem=True)

    checked = 0
    for planned in plan.objects:
        obj = planned.obj
        skipped = [request for request in planned.sent if request in unread]
        if skipped:
            reasons = "; ".join(f"{request.describe()} is {unread[request]}" for request in skipped)
            yield Note(f"{obj.label()}: permitted, not fetched ({reasons}, which may issue a secret)", False)
            continue
        if not all(request in payloads for request in planned.sent):
            continue  # its request failed above
        try:
            object_files(obj, planned.answers(payloads), sensitive, max_file_bytes=1 << 30)
            checked += 1
        except ProviderError as exc:
            problems += 1
            yield Note(redact(str(exc), sensitive), problem=True)
    if not problems:
        yield Note(
            f"--vault: ok ({how}; {len(payloads)} reads; {checked} of {len(config.objects)} objects "
            "fetched and extracted)",
            problem=False,
        )


def _capabilities(session: VaultSession, requests: list[VaultRequest]) -> dict[VaultRequest, list[str]]:
    """The token's capabilities on each request's path (one call for all of them)."""
    paths = sorted({request.api_path for request in requests})
    ask = VaultRequest("POST", "/v1/sys/capabilities-self", body=gojson.dumps({"paths": paths}))
    payload = session.send(ask).payload
    data = (
        payload.get("data")
        if isinstance(payload, dict) and isinstance(payload.get("data"), dict)
        else payload
    )
    found = data if isinstance(data, dict) else {}

    def of(request: VaultRequest) -> list[str]:
        listed = found.get(request.api_path)
        if listed is None and len(paths) == 1:
            listed = found.get("capabilities")
        return [str(item) for item in listed] if isinstance(listed, list) else []

    return {request: of(request) for request in requests}


def _engine(session: VaultSession, request: VaultRequest) -> str:
    """The type of the secrets engine mounted over the request's path ("" when Vault will not say)."""
    info = mount_info(session, request.api_path) or {}
    engine = info.get("type")
    return engine if isinstance(engine, str) else ""
