"""The `attributes` and `secrets` strings of a MountRequest, built as kubelet and the driver build them.

Three layers, each overriding the one before (later wins on equal keys):

1. the SecretProviderClass `spec.parameters`;
2. the volume context kubelet sends in NodePublishVolume, which the driver copies
   over the parameters key by key. Kubelet builds it from the pod author's
   `volumeAttributes` (with `secretProviderClass`), then writes its own keys over
   them: pod name, namespace, UID, service account, `ephemeral`, and the
   `serviceAccount.tokens` JSON when the CSIDriver has `tokenRequests`;
3. with `serviceAccountTokenInSecrets` (Kubernetes 1.35+), kubelet puts the tokens
   into the CSI secrets instead; driver 1.6 copies them back into the attributes,
   and they stay in the `secrets` JSON as well.

So a pod author can shadow any SPC parameter, but not kubelet's keys. Both strings
are Go `json.Marshal` output of a `map[string]string`: sorted keys, HTML escaping,
and `null` for an absent map.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from provider.render import gojson

__all__ = [
    "EPHEMERAL",
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_UID",
    "SECRET_PROVIDER_CLASS",
    "SERVICE_ACCOUNT_NAME",
    "SERVICE_ACCOUNT_TOKENS",
    "PodInfo",
    "build_mount_payload",
    "service_account_tokens_json",
]

POD_NAME = "csi.storage.k8s.io/pod.name"
POD_NAMESPACE = "csi.storage.k8s.io/pod.namespace"
POD_UID = "csi.storage.k8s.io/pod.uid"
SERVICE_ACCOUNT_NAME = "csi.storage.k8s.io/serviceAccount.name"
SERVICE_ACCOUNT_TOKENS = "csi.storage.k8s.io/serviceAccount.tokens"
EPHEMERAL = "csi.storage.k8s.io/ephemeral"
SECRET_PROVIDER_CLASS = "secretProviderClass"  # noqa: S105 - an attribute name, not a secret


@dataclass(frozen=True)
class PodInfo:
    """The pod a volume is published for, as kubelet reports it (`podInfoOnMount`)."""

    namespace: str
    name: str
    uid: str
    service_account: str


def service_account_tokens_json(tokens: Mapping[str, tuple[str, str]]) -> str:
    """Kubelet's `serviceAccount.tokens` value for {audience: (token, RFC 3339 expiration)}.

    Kubelet marshals a map of TokenRequestStatus structs: audiences sorted, and in
    each entry `token` before `expirationTimestamp` (struct field order, not sorted).
    """
    entries = [
        gojson.dumps(audience)
        + ":"
        + gojson.dumps_fields([("token", token), ("expirationTimestamp", expiration)])
        for audience, (token, expiration) in sorted(tokens.items())
    ]
    return "{" + ",".join(entries) + "}"


def build_mount_payload(
    parameters: Mapping[str, str],
    *,
    spc_name: str,
    pod: PodInfo,
    tokens: Mapping[str, tuple[str, str]] | None,
    volume_attributes: Mapping[str, str] | None = None,
    ephemeral: bool = True,
    tokens_in_secrets: bool = False,
    node_publish_secrets: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """Return (attributes, secrets) JSON exactly as driver 1.6 sends them to the provider.

    `parameters` are the SPC's; `volume_attributes` the pod's own `volumeAttributes`
    besides `secretProviderClass`, which comes from `spc_name`. `tokens` is None when
    the CSIDriver has no `tokenRequests`. `ephemeral` defaults to True because the
    secrets-store CSIDriver only allows inline volumes; kubelet sends "false" for a
    persistent one. `node_publish_secrets` is the data of `nodePublishSecretRef`.
    """
    context = dict(volume_attributes or {})
    named = context.setdefault(SECRET_PROVIDER_CLASS, spc_name)
    if named != spc_name:
        raise ValueError(
            f"volume_attributes names SecretProviderClass {named!r} but spc_name is {spc_name!r}"
        )
    # Kubelet's keys are merged last, so the pod author cannot forge the pod identity.
    context.update(
        {
            POD_NAME: pod.name,
            POD_NAMESPACE: pod.namespace,
            POD_UID: pod.uid,
            SERVICE_ACCOUNT_NAME: pod.service_account,
            EPHEMERAL: "true" if ephemeral else "false",
        }
    )
    secrets = dict(node_publish_secrets or {})
    tokens_value = service_account_tokens_json(tokens) if tokens else None
    if tokens_value is not None:
        (secrets if tokens_in_secrets else context)[SERVICE_ACCOUNT_TOKENS] = tokens_value

    attributes = dict(parameters)
    attributes.update(context)
    if tokens_value is not None and tokens_in_secrets:
        attributes[SERVICE_ACCOUNT_TOKENS] = tokens_value
    # CSI carries secrets as a protobuf map: an empty one arrives as a nil Go map,
    # which json.Marshal writes as null.
    return gojson.dumps(attributes), gojson.dumps(secrets) if secrets else "null"
