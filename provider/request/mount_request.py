"""A Mount request (`attributes`, `secrets`, `permission`, `target_path`) → `MountConfig`.

Pure: no I/O, no clock. The whole request is parsed and checked here before
anything touches the network, and every problem is reported at once as one
InvalidRequest. `attributes` holds the SecretProviderClass parameters overlaid
with the pod's volume context; the kubelet's keys are authoritative.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from provider.errors import InvalidRequest
from provider.go_syntax import parse_bool
from provider.request.cache_policy import CachePolicy, parse_cache_policy
from provider.request.object_fields import MAX_FILE_MODE
from provider.request.objects import SecretObject, parse_objects
from provider.request.parameter_names import resolve_aliases, unknown_parameters

__all__ = [
    "DEFAULT_AUDIENCE",
    "MountConfig",
    "PodIdentity",
    "VaultOverrides",
    "identify",
    "parse_mount_request",
]

DEFAULT_AUDIENCE = "vault"
POD_NAME = "csi.storage.k8s.io/pod.name"
POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
POD_UID = "csi.storage.k8s.io/pod.uid"
POD_SERVICE_ACCOUNT = "csi.storage.k8s.io/serviceAccount.name"
SERVICE_ACCOUNT_TOKENS = "csi.storage.k8s.io/serviceAccount.tokens"
SPC_NAME = "secretProviderClass"
MAX_NAME_LENGTH = 253  # a Kubernetes object name
# Distinct requests remembered: each volume on the node sends the same request on every poll.
REQUEST_CACHE_SIZE = 256
# Sent as the X-Vault-Namespace header: printable ASCII, no spaces.
NAMESPACE_PATTERN = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    name: str
    uid: str
    service_account: str

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class VaultOverrides:
    """What a SecretProviderClass says about which Vault and how to trust it; None/empty: not set."""

    address: str = ""
    namespace: str = ""
    ca_cert: str = ""
    ca_directory: str = ""
    server_name: str = ""
    client_cert: str = ""
    client_key: str = ""
    skip_verify: bool | None = None


@dataclass(frozen=True)
class MountConfig:
    pod: PodIdentity
    spc_name: str
    role: str
    auth_mount: str  # empty: the provider's -vault-mount
    audience: str
    jwt: str = field(repr=False)
    vault_overrides: VaultOverrides
    objects: tuple[SecretObject, ...]
    default_mode: int
    target_path: str
    cache_policy: CachePolicy = field(default_factory=CachePolicy)
    # Parameter keys no one reads (typos?), for a warning; never their values.
    unknown_parameters: tuple[str, ...] = ()


def _string_map(text: str, what: str, allow_null: bool) -> dict[str, str]:
    try:
        value: Any = json.loads(text) if text else None
    except ValueError:
        raise InvalidRequest(f"{what} is not valid JSON") from None
    except RecursionError:
        raise InvalidRequest(f"{what} is nested too deeply") from None
    if value is None and (allow_null or not text):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest(f"{what} must be a JSON object of strings")
    return value


def _permission(text: str, problems: list[str]) -> int:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FILE_MODE:
        problems.append("permission must be a JSON number between 0 and 511 (0777), such as 420")
        return 0
    return value


def _token_for(
    audience: str, attributes: dict[str, str], secrets: dict[str, str], problems: list[str], optional: bool
) -> str:
    """The pod's JWT for the audience; "" when absent and `optional` (the TokenRequest fallback)."""
    # Drivers up to 1.5 put the tokens in attributes; with Kubernetes >= 1.35 and
    # serviceAccountTokenInSecrets they may arrive in the secrets instead.
    raw = attributes.get(SERVICE_ACCOUNT_TOKENS) or secrets.get(SERVICE_ACCOUNT_TOKENS) or ""
    how_to = (
        f'the driver passes a token only for audiences listed in the CSIDriver "secrets-store.csi.k8s.io" '
        f'spec.tokenRequests; add {{"audience": "{audience}"}} there '
        f"(Helm: tokenRequests[0].audience={audience})"
    )
    if not raw:
        if not optional:
            problems.append(f"no service-account token in the request: {how_to}")
        return ""
    try:
        tokens = json.loads(raw)
    except (ValueError, RecursionError):
        tokens = None
    if not isinstance(tokens, dict):
        problems.append(f"{SERVICE_ACCOUNT_TOKENS} is not a JSON object of audience to token")
        return ""
    entry = tokens.get(audience)
    if entry is None and optional:
        return ""
    if entry is None:
        present = ", ".join(f'"{name}"' for name in sorted(tokens)) or "none"
        problems.append(f'no service-account token for audience "{audience}" (present: {present}): {how_to}')
        return ""
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(token, str) or not token.strip():
        problems.append(f'the service-account token for audience "{audience}" is empty or malformed')
        return ""
    return token


def _auth_mount(params: dict[str, str], problems: list[str]) -> str:
    kubernetes_path = params.get("vaultKubernetesMountPath", "")
    auth_path = params.get("vaultAuthMountPath", "")
    if kubernetes_path and auth_path:
        problems.append("set only one of vaultAuthMountPath and vaultKubernetesMountPath (they are aliases)")
        return ""
    mount = (auth_path or kubernetes_path).strip("/")
    if mount.startswith("auth/"):
        # A common spelling of the same mount; the login URL adds "auth/" itself.
        mount = mount[len("auth/") :]
    if any(part in (".", "..") for part in mount.split("/")) or any(c in mount for c in "?#% \t\n"):
        problems.append("vaultAuthMountPath must be an auth mount name such as kubernetes or jwt")
        return ""
    return mount


def _vault_overrides(params: dict[str, str], problems: list[str]) -> VaultOverrides:
    skip_text = params.get("vaultSkipTLSVerify", "")
    skip_verify = parse_bool(skip_text) if skip_text else None
    if skip_text and skip_verify is None:
        problems.append(f"vaultSkipTLSVerify {skip_text!r} is not a boolean (use true or false)")
    overrides = VaultOverrides(
        address=params.get("vaultAddress", ""),
        namespace=params.get("vaultNamespace", "").strip("/"),
        ca_cert=params.get("vaultCACertPath", ""),
        ca_directory=params.get("vaultCADirectory", ""),
        server_name=params.get("vaultTLSServerName", ""),
        client_cert=params.get("vaultTLSClientCertPath", ""),
        client_key=params.get("vaultTLSClientKeyPath", ""),
        skip_verify=skip_verify,
    )
    if overrides.namespace and not NAMESPACE_PATTERN.fullmatch(overrides.namespace):
        problems.append(
            "vaultNamespace must be a Vault namespace path of printable ASCII, such as team-a/apps"
        )
    if bool(overrides.client_cert) != bool(overrides.client_key):
        problems.append("vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together")
    return overrides


def identify(attributes: str) -> tuple[str, str, str]:
    """Best-effort (pod namespace, pod name, SPC name) for the log line of any request, even a bad one."""
    try:
        params = json.loads(attributes)
    except (ValueError, RecursionError):
        params = None
    if not isinstance(params, dict):
        return "unknown", "unknown", "unknown"

    def text(key: str) -> str:
        value = params.get(key)
        # Only short, printable names: this goes to the log as it is.
        if isinstance(value, str) and value.isprintable() and 0 < len(value) <= MAX_NAME_LENGTH:
            return value
        return "unknown"

    return text(POD_NAMESPACE), text(POD_NAME), text(SPC_NAME)


def _pod_identity(params: dict[str, str], problems: list[str]) -> PodIdentity:
    """The pod the kubelet says the volume is for (podInfoOnMount)."""
    fields = {key: params.get(key, "") for key in (POD_NAMESPACE, POD_NAME, POD_UID, POD_SERVICE_ACCOUNT)}
    missing = [key for key, value in fields.items() if not value]
    if missing:
        problems.append(
            f"missing pod attributes {', '.join(missing)}: the CSIDriver must have podInfoOnMount: true"
        )
    return PodIdentity(
        namespace=fields[POD_NAMESPACE],
        name=fields[POD_NAME],
        uid=fields[POD_UID],
        service_account=fields[POD_SERVICE_ACCOUNT],
    )


def parse_mount_request(
    attributes: str,
    secrets: str,
    target_path: str,
    permission: str,
    token_optional: bool = False,
    default_audience: str = DEFAULT_AUDIENCE,
) -> MountConfig:
    """Parse and check the whole request; raises InvalidRequest listing every problem.

    With `token_optional` (the TokenRequest fallback is on) a request without a token
    for the audience is valid and `jwt` is empty. `default_audience` (-audience) serves
    classes that name none.

    A rotation poll repeats its volume's request byte for byte (the token changes when the
    kubelet renews it), so valid requests are remembered (MountConfig is immutable). The
    cache holds their tokens in memory only, as the token cache holds Vault's.
    """
    return _parse_remembered(attributes, secrets, target_path, permission, token_optional, default_audience)


@functools.lru_cache(maxsize=REQUEST_CACHE_SIZE)
def _parse_remembered(
    attributes: str,
    secrets: str,
    target_path: str,
    permission: str,
    token_optional: bool,
    default_audience: str,
) -> MountConfig:
    # An InvalidRequest is not remembered: it is raised anew each time.
    problems: list[str] = []
    raw_params = _string_map(attributes, "attributes", allow_null=False)
    # OpenBao's spellings become ours here, before anything reads a parameter.
    params = resolve_aliases(raw_params, problems)
    secret_map = _string_map(secrets, "secrets", allow_null=True)

    pod = _pod_identity(params, problems)
    if not target_path:
        problems.append("target_path is empty")
    role = params.get("roleName", "")
    if not role:
        problems.append("roleName is required: the Vault role to log in with")
    default_mode = _permission(permission, problems)
    auth_mount = _auth_mount(params, problems)
    vault_overrides = _vault_overrides(params, problems)
    audience = params.get("audience") or default_audience
    jwt = _token_for(audience, params, secret_map, problems, token_optional)
    cache_policy = parse_cache_policy(params, problems)
    objects, object_problems = parse_objects(params.get("objects", ""))
    problems.extend(object_problems)
    if problems:
        raise InvalidRequest(problems)

    return MountConfig(
        pod=pod,
        spc_name=params.get(SPC_NAME, ""),
        role=role,
        auth_mount=auth_mount,
        audience=audience,
        jwt=jwt,
        vault_overrides=vault_overrides,
        objects=objects,
        default_mode=default_mode,
        target_path=target_path,
        cache_policy=cache_policy,
        unknown_parameters=unknown_parameters(raw_params),
    )
