"""The driver-side request strings: SecretProviderClass manifests in, `attributes`/`secrets` out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provider.tools.driver import (
    InvalidSecretProviderClass,
    PodInfo,
    build_mount_payload,
    load_secret_provider_classes,
    parse_secret_provider_classes,
    service_account_tokens_json,
)

TESTDATA = Path(__file__).parent.parent / "testdata"

# The inputs behind tests/testdata/driver-attributes.json.
GOLDEN_SPC = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app
  namespace: demo
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: vault-app
  namespace: demo
spec:
  provider: vault
  parameters:
    roleName: "app"
    vaultAddress: "https://vault.vault.svc:8200"
    vaultAuthMountPath: "kubernetes"
    objects: |
      - objectName: "db-password"
        secretPath: "secret/data/db-pass"
        secretKey: "password"
      - objectName: "config/app.json"
        secretPath: "secret/data/app"
      - objectName: "tls/tls.key"
        secretPath: "pki/issue/example-dot-com"
        secretKey: "private_key"
        method: "PUT"
        secretArgs:
          common_name: "app.demo.svc"
          ttl: "24h"
"""
GOLDEN_POD = PodInfo(
    namespace="demo",
    name="app-7d9c5b8f6d-x2k4p",
    uid="0c6a9a4e-5d3b-4c1e-9f0a-2b7e8d1c3f45",
    service_account="app",
)
# Header, claims and a signature that reads "FAKE-SIGNATURE-...": never a usable token.
FAKE_JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IkZBS0UtS0VZLUlELWZvci10ZXN0cy1vbmx5In0."
    "eyJhdWQiOlsidmF1bHQiXSwiZXhwIjoxNzM1NzMzNDAwLCJpYXQiOjE3MzU3MzI4MDAsImlzcyI6Imh0dHBzOi8va3ViZXJu"
    "ZXRlcy5kZWZhdWx0LnN2Yy5jbHVzdGVyLmxvY2FsIiwia3ViZXJuZXRlcy5pbyI6eyJuYW1lc3BhY2UiOiJkZW1vIiwibm9k"
    "ZSI6eyJuYW1lIjoid29ya2VyLTEiLCJ1aWQiOiIxMTExMTExMS0yMjIyLTMzMzMtNDQ0NC01NTU1NTU1NTU1NTUifSwicG9k"
    "Ijp7Im5hbWUiOiJhcHAtN2Q5YzViOGY2ZC14Mms0cCIsInVpZCI6IjBjNmE5YTRlLTVkM2ItNGMxZS05ZjBhLTJiN2U4ZDFj"
    "M2Y0NSJ9LCJzZXJ2aWNlYWNjb3VudCI6eyJuYW1lIjoiYXBwIiwidWlkIjoiOWIyZjdjMWUtMGQ0YS00ZThiLThjM2YtNmE1"
    "ZDRlM2IyYTEwIn19LCJuYmYiOjE3MzU3MzI4MDAsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpkZW1vOmFwcCJ9."
    "RkFLRS1TSUdOQVRVUkUtdGhpcy1pcy1ub3QtYS1yZWFsLXNlcnZpY2UtYWNjb3VudC10b2tlbg"
)
GOLDEN_TOKENS = {"vault": (FAKE_JWT, "2025-01-01T12:10:00Z")}

POD = PodInfo(namespace="ns", name="pod", uid="uid-1", service_account="sa")
TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens"


def test_golden_attributes_reproduced_byte_for_byte() -> None:
    """An SPC file, a pod and a kubelet token give exactly the attributes string the driver sends."""
    (spc,) = parse_secret_provider_classes(GOLDEN_SPC)
    attributes, secrets = build_mount_payload(
        spc.parameters, spc_name=spc.name, pod=GOLDEN_POD, tokens=GOLDEN_TOKENS
    )
    expected = (TESTDATA / "driver-attributes.json").read_text(encoding="utf-8").rstrip("\n")
    assert attributes == expected
    assert secrets == "null"


def payload(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """build_mount_payload from a minimal valid call with `changes` applied, both strings decoded."""
    arguments: dict[str, Any] = {
        "parameters": {"roleName": "app"},
        "spc_name": "spc",
        "pod": POD,
        "tokens": None,
    }
    arguments.update(changes)
    parameters = arguments.pop("parameters")
    attributes, secrets = build_mount_payload(parameters, **arguments)
    return json.loads(attributes), json.loads(secrets)


MINIMAL_ATTRIBUTES = {
    "roleName": "app",
    "secretProviderClass": "spc",
    "csi.storage.k8s.io/pod.name": "pod",
    "csi.storage.k8s.io/pod.namespace": "ns",
    "csi.storage.k8s.io/pod.uid": "uid-1",
    "csi.storage.k8s.io/serviceAccount.name": "sa",
    "csi.storage.k8s.io/ephemeral": "true",
}
TOKENS_JSON = '{"a":{"token":"t-a","expirationTimestamp":"2030-01-01T00:00:00Z"}}'


@pytest.mark.parametrize(
    ("changes", "extra_attributes", "secrets"),
    [
        pytest.param({}, {}, None, id="minimal"),
        pytest.param(
            {"volume_attributes": {"roleName": "other", "custom": "x"}},
            {"roleName": "other", "custom": "x"},
            None,
            id="pod-volume-attributes-shadow-spc-parameters",
        ),
        pytest.param(
            {"volume_attributes": {"csi.storage.k8s.io/pod.name": "forged"}},
            {},
            None,
            id="kubelet-pod-name-beats-pod-author",
        ),
        pytest.param(
            {"parameters": {"roleName": "app", "csi.storage.k8s.io/pod.uid": "forged"}},
            {},
            None,
            id="kubelet-pod-uid-beats-spc-parameter",
        ),
        pytest.param({"ephemeral": False}, {"csi.storage.k8s.io/ephemeral": "false"}, None, id="persistent"),
        pytest.param(
            {"tokens": {"a": ("t-a", "2030-01-01T00:00:00Z")}},
            {TOKENS_KEY: TOKENS_JSON},
            None,
            id="tokens-in-volume-context",
        ),
        pytest.param(
            {"tokens": {"a": ("t-a", "2030-01-01T00:00:00Z")}, "volume_attributes": {TOKENS_KEY: "forged"}},
            {TOKENS_KEY: TOKENS_JSON},
            None,
            id="kubelet-tokens-beat-pod-author",
        ),
        pytest.param({"tokens": {}}, {}, None, id="no-token-requests"),
        pytest.param(
            {"tokens": {"a": ("t-a", "2030-01-01T00:00:00Z")}, "tokens_in_secrets": True},
            {TOKENS_KEY: TOKENS_JSON},
            {TOKENS_KEY: TOKENS_JSON},
            id="tokens-in-secrets-copied-back",
        ),
        pytest.param(
            {
                "tokens": {"a": ("t-a", "2030-01-01T00:00:00Z")},
                "tokens_in_secrets": True,
                "node_publish_secrets": {"clientKey": "k"},
            },
            {TOKENS_KEY: TOKENS_JSON},
            {"clientKey": "k", TOKENS_KEY: TOKENS_JSON},
            id="tokens-and-node-publish-secrets",
        ),
        pytest.param(
            {"node_publish_secrets": {"b": "2", "a": "1"}},
            {},
            {"a": "1", "b": "2"},
            id="node-publish-secrets-only",
        ),
        pytest.param({"node_publish_secrets": {}}, {}, None, id="empty-secret-is-null"),
    ],
)
def test_layers_and_overrides(
    changes: dict[str, Any], extra_attributes: dict[str, str], secrets: dict[str, str] | None
) -> None:
    """SPC parameters < pod volumeAttributes < kubelet keys; tokens go where kubelet puts them."""
    attributes, actual_secrets = payload(**changes)
    assert attributes == {**MINIMAL_ATTRIBUTES, **extra_attributes}
    assert actual_secrets == secrets


def test_strings_are_go_json() -> None:
    """Keys sorted, no spaces, HTML characters escaped as Go does, secrets null when absent."""
    attributes, secrets = build_mount_payload(
        {"z": "a<b>&c", "a": "é"}, spc_name="s", pod=POD, tokens=None, ephemeral=False
    )
    assert attributes == (
        '{"a":"é","csi.storage.k8s.io/ephemeral":"false","csi.storage.k8s.io/pod.name":"pod",'
        '"csi.storage.k8s.io/pod.namespace":"ns","csi.storage.k8s.io/pod.uid":"uid-1",'
        '"csi.storage.k8s.io/serviceAccount.name":"sa","secretProviderClass":"s",'
        '"z":"a\\u003cb\\u003e\\u0026c"}'
    )
    assert secrets == "null"


def test_tokens_json_keeps_struct_field_order() -> None:
    """Audiences sorted; inside each entry `token` comes before `expirationTimestamp`, as kubelet writes."""
    assert service_account_tokens_json({"vault": ("t2", "e2"), "": ("t1", "e1")}) == (
        '{"":{"token":"t1","expirationTimestamp":"e1"},"vault":{"token":"t2","expirationTimestamp":"e2"}}'
    )


def test_volume_attributes_naming_another_spc_rejected() -> None:
    """secretProviderClass in volume_attributes must agree with spc_name."""
    with pytest.raises(
        ValueError, match=r"^volume_attributes names SecretProviderClass 'a' but spc_name is 'b'$"
    ):
        build_mount_payload(
            {}, spc_name="b", pod=POD, tokens=None, volume_attributes={"secretProviderClass": "a"}
        )


SPC_HEADER = "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"


def test_spc_multi_document_file(tmp_path: Path) -> None:
    """All SecretProviderClasses of a file, in order; other kinds and empty documents are skipped."""
    manifest = tmp_path / "spc.yaml"
    manifest.write_text(
        "---\n"
        + SPC_HEADER
        + "metadata: {name: one, namespace: ns1}\nspec: {provider: vault, parameters: {roleName: r}}\n"
        + "---\nkind: Pod\napiVersion: v1\nmetadata: {name: p}\n---\n"
        + SPC_HEADER
        + "metadata: {name: two}\nspec: {provider: vault}\n",
        encoding="utf-8",
    )
    first, second = load_secret_provider_classes(manifest)
    assert (first.name, first.namespace, first.provider, first.parameters) == (
        "one",
        "ns1",
        "vault",
        {"roleName": "r"},
    )
    assert (second.name, second.namespace, second.provider, second.parameters) == (
        "two",
        "default",
        "vault",
        {},
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            SPC_HEADER
            + "metadata: {name: s}\nspec:\n  provider: vault\n  parameters:\n    objects:\n      - a: b\n",
            "<yaml>: document 1 (SecretProviderClass 's'): spec.parameters.objects must be a string, "
            "got a list; quote it, or write a nested document as a block string (`key: |`)",
            id="objects-as-list",
        ),
        pytest.param(
            SPC_HEADER
            + "metadata: {name: s}\nspec: {provider: vault, parameters: {vaultSkipTLSVerify: true}}\n",
            "<yaml>: document 1 (SecretProviderClass 's'): spec.parameters.vaultSkipTLSVerify "
            "must be a string, got a boolean; "
            "quote it, or write a nested document as a block string (`key: |`)",
            id="unquoted-boolean",
        ),
        pytest.param(
            SPC_HEADER + "metadata: {name: s}\nspec: {provider: vault, parameters: {ttl: }}\n",
            "<yaml>: document 1 (SecretProviderClass 's'): spec.parameters.ttl must be a string, got null; "
            "quote it, or write a nested document as a block string (`key: |`)",
            id="null-value",
        ),
        pytest.param(
            SPC_HEADER + "metadata: {name: s}\nspec: {provider: vault, parameters: {1: x}}\n",
            "<yaml>: document 1 (SecretProviderClass 's'): spec.parameters key 1 must be a string",
            id="numeric-key",
        ),
        pytest.param(
            SPC_HEADER + "metadata: {name: s}\nspec: {parameters: {}}\n",
            "<yaml>: document 1 (SecretProviderClass 's'): spec.provider must be a non-empty string",
            id="no-provider",
        ),
        pytest.param(
            SPC_HEADER + "metadata: {namespace: x}\nspec: {provider: vault}\n",
            "<yaml>: document 1: metadata.name must be a non-empty string",
            id="no-name",
        ),
        pytest.param(
            "apiVersion: v1\nkind: SecretProviderClass\nmetadata: {name: s}\nspec: {provider: vault}\n",
            "<yaml>: document 1: apiVersion must be secrets-store.csi.x-k8s.io/v1, got 'v1'",
            id="wrong-api-group",
        ),
        pytest.param(
            "kind: Pod\napiVersion: v1\n", "<yaml>: no document of kind SecretProviderClass", id="no-spc"
        ),
        pytest.param("- a\n- b\n", "<yaml>: document 1: expected a mapping, got list", id="not-a-mapping"),
    ],
)
def test_spc_rejected(text: str, message: str) -> None:
    """Manifests the API server would refuse fail with the document and key named."""
    with pytest.raises(InvalidSecretProviderClass) as caught:
        parse_secret_provider_classes(text)
    assert str(caught.value) == message


def test_spc_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    """Broken YAML is reported against the file, with the parser's position."""
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("spec: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidSecretProviderClass) as caught:
        load_secret_provider_classes(manifest)
    assert (
        str(caught.value)
        == f"{manifest}: not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"
    )
