"""A stand-in for the Secrets Store CSI driver's side of the provider contract.

For tests, the demo, and trying a SecretProviderClass without a cluster:

    classes = load_secret_provider_classes("spc.yaml")
    attributes, secrets = build_mount_payload(
        classes[0].parameters, spc_name=classes[0].name, pod=pod, tokens=tokens
    )
    with ProviderClient("/provider/vault.sock") as client:
        result = client.mount_into("/tmp/volume", attributes, secrets)

Modules, each importing only those listed before it: `spc` (manifests),
`attributes` (the request strings), `paths` (the driver's path checks), `writer`
(the kubelet atomic writer), `client` (gRPC and the driver's response checks).
"""

from __future__ import annotations

from provider.tools.driver.attributes import PodInfo, build_mount_payload, service_account_tokens_json
from provider.tools.driver.client import (
    DEFAULT_PERMISSION,
    MAX_RECEIVE_BYTES,
    MountResult,
    ProviderCallError,
    ProviderClient,
)
from provider.tools.driver.manifests import (
    InvalidSecretProviderClass,
    SecretProviderClass,
    load_secret_provider_classes,
    parse_secret_provider_classes,
)
from provider.tools.driver.paths import InvalidPayloadPath, validate_payload_paths
from provider.tools.driver.writer import DATA_DIR, File, write_payloads

__all__ = [
    "DATA_DIR",
    "DEFAULT_PERMISSION",
    "MAX_RECEIVE_BYTES",
    "File",
    "InvalidPayloadPath",
    "InvalidSecretProviderClass",
    "MountResult",
    "PodInfo",
    "ProviderCallError",
    "ProviderClient",
    "SecretProviderClass",
    "build_mount_payload",
    "load_secret_provider_classes",
    "parse_secret_provider_classes",
    "service_account_tokens_json",
    "validate_payload_paths",
    "write_payloads",
]
