"""Fuzzed Mount requests through the real provider process and a real OpenBao, over the unix socket.

A smaller sibling of tests/unit/test_fuzz.py: generated attributes, objects, tokens and
permissions are sent as they are (no driver-side checks, no retries) to the session's
provider. Whatever comes back is never INTERNAL, never quotes a planted token or secret,
and on success holds only paths the driver writes; the process keeps serving. Vault
addresses are never generated: the provider only ever talks to 127.0.0.1.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import yaml
from harness import ProviderProcess, VaultEnv, pod_uid, unique
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from devkit import ServiceAccountTokenIssuer, free_port
from provider.tools.driver import PodInfo, build_mount_payload, validate_payload_paths
from provider.v1alpha1 import service_pb2, service_pb2_grpc

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
PLANTED_TOKEN = "eyJhbGciOiJQTEFOVEVEIn0.eyJzdWIiOiJzb2NrZXQifQ.planted-socket-token-0c4f"
PLANTED_SECRET = "planted-socket-arg-e61a95"
VALUES = {
    "value": "fuzz-value-3a7c19",
    "b64": "ZnV6ei1iYXNlNjQtc2VjcmV0",
    "hex": "66757a7a2d686578",
    "map": {"nested": "fuzz-nested-9d04"},
}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ANY_CHARACTER = st.characters()


@pytest.fixture(scope="module")
def kv_path(vault: VaultEnv) -> str:
    path = unique("app/fuzz")
    vault.put_kv2(path, VALUES)
    return path


@pytest.fixture(scope="module")
def stub(provider: ProviderProcess) -> Iterator[Any]:
    """A plain channel: no waitForReady, no retries, so each example is exactly one Mount."""
    with grpc.insecure_channel(f"unix://{provider.socket_path}") as channel:
        yield service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def addresses(vault: VaultEnv) -> list[str | None]:
    """The only vaultAddress values ever sent: none, OpenBao itself, and a dead loopback port."""
    return [None, vault.address, f"http://127.0.0.1:{free_port()}"]


def call(
    stub: Any, attributes: str, secrets: str, permission: str = "420"
) -> tuple[grpc.StatusCode, str, Any]:
    request = service_pb2.MountRequest(
        attributes=attributes,
        secrets=secrets,
        target_path="/var/lib/kubelet/pods/x/mount",
        permission=permission,
    )
    try:
        return grpc.StatusCode.OK, "", stub.Mount(request, timeout=15)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", None


def judge(
    provider: ProviderProcess, code: grpc.StatusCode, message: str, response: Any, tokens: list[str]
) -> None:
    """The properties every fuzzed Mount must have."""
    event(code.name)  # --hypothesis-show-statistics shows how far the examples got
    assert code != grpc.StatusCode.INTERNAL, message
    assert code != grpc.StatusCode.UNKNOWN, message
    assert provider.proc is not None
    assert provider.proc.poll() is None, "the provider died"
    for secret in [*tokens, PLANTED_SECRET, *(v for v in VALUES.values() if isinstance(v, str))]:
        assert secret not in message
    if code == grpc.StatusCode.OK:
        paths = [file.path for file in response.files]
        assert paths
        assert response.object_version
        validate_payload_paths(paths)
        provider.contents.extend(file.contents for file in response.files)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` seven times in eight, else `odd`: most examples get past validation and reach OpenBao."""
    return st.integers(0, 7).flatmap(lambda pick: odd if pick == 5 else usual)


object_names = mostly(
    st.text(alphabet=string.ascii_lowercase[:4] + "-_", min_size=1, max_size=8)
    | st.sampled_from(["dir/file", "é/ü", "a.b"]),
    st.text(ANY_CHARACTER, max_size=12) | st.sampled_from(["..data", "../escape", "/abs", "a//b", "a/"]),
)


@st.composite
def objects_yaml(draw: st.DrawFn, kv_path: str) -> str:
    """1-3 objects aimed at the seeded KV secret (and a few other paths), any field maybe odd."""
    secret_paths = mostly(
        st.sampled_from([f"secret/data/{kv_path}", f"/v1/secret/data/{kv_path}?version=1"]),
        st.sampled_from(
            [
                f"secret/{kv_path}",
                f"secret/metadata/{kv_path}",
                "secret/data/forbidden/x",
                "pki/issue/web",
                "sys/health",
                "kv1/app/missing",
            ]
        )
        | st.text(ANY_CHARACTER, max_size=15),
    )
    optional: dict[str, st.SearchStrategy[Any]] = {
        "secretKey": mostly(
            st.sampled_from(list(VALUES)), st.sampled_from(["missing", ""]) | st.text(max_size=6)
        ),
        "encoding": mostly(st.just("utf-8"), st.sampled_from(["base64", "HEX", "rot13"])),
        "method": mostly(st.just("GET"), st.sampled_from(["put", "POST", "DELETE"])),
        "filePermission": mostly(
            st.sampled_from([0o600, "0640", "0o440"]), st.sampled_from([1000, "rw", "0x1ff"])
        ),
        "secretArgs": st.fixed_dictionaries(
            {
                "common_name": st.sampled_from(["a.example.test", PLANTED_SECRET]),
                "ttl": st.sampled_from(["1m", 5]),
            }
        ),
    }
    entries = []
    for _ in range(draw(st.integers(1, 3))):
        entry: dict[str, Any] = {"objectName": draw(object_names), "secretPath": draw(secret_paths)}
        fields = draw(st.lists(st.sampled_from(sorted(optional)), max_size=2, unique=True))
        for field in fields:
            entry[field] = draw(optional[field])
        if draw(st.integers(0, 9)) == 7:
            entry["secretkey"] = "a typo"
        entries.append(entry)
    return yaml.safe_dump(entries, allow_unicode=draw(st.booleans()))


@FUZZ
@given(data=st.data())
def test_fuzz_mounts_over_the_socket(
    provider: ProviderProcess,
    stub: Any,
    issuer: ServiceAccountTokenIssuer,
    kv_path: str,
    addresses: list[str | None],
    data: st.DataObject,
) -> None:
    """Fuzzed SPC parameters and objects with a real or planted token: never INTERNAL, nothing leaked."""
    pod_name = unique("fuzz")
    parameters: dict[str, str] = {
        "roleName": data.draw(mostly(st.just("app"), st.sampled_from(["jwt-app", "missing-role", ""]))),
        "objects": data.draw(objects_yaml(kv_path)),
    }
    address = data.draw(mostly(st.just(None), st.sampled_from(addresses)))
    if address is not None:
        parameters["vaultAddress"] = address
    for key, values in {
        "vaultAuthMountPath": ["jwt", "auth/kubernetes", "../sys", "k8s?x"],
        "vaultNamespace": ["tenant", "/tenant/", "no-such-ns"],
        "vaultSkipTLSVerify": ["true", "maybe"],
        "audience": ["vault", "custom-aud", "nobody"],
        "vaultTLSClientCertPath": ["/nonexistent/cert.pem"],
    }.items():
        if data.draw(st.integers(0, 5)) == 3:
            parameters[key] = data.draw(st.sampled_from(values))
    real = issuer.mint(
        NAMESPACE, SERVICE_ACCOUNT, pod_name, pod_uid(NAMESPACE, pod_name), audiences=["vault", "custom-aud"]
    )
    token = data.draw(
        mostly(st.just(real), st.sampled_from([PLANTED_TOKEN, PLANTED_TOKEN + "\n", f" {PLANTED_TOKEN}"]))
    )
    provider.tokens.append(token)
    audience = data.draw(mostly(st.just("vault"), st.sampled_from(["custom-aud", "other"])))
    pod = PodInfo(namespace=NAMESPACE, name=pod_name, uid=pod_uid(NAMESPACE, pod_name), service_account="app")
    attributes, secrets = build_mount_payload(
        parameters, spc_name="fuzz", pod=pod, tokens={audience: (token, "2030-01-01T00:00:00Z")}
    )
    permission = data.draw(
        mostly(st.sampled_from(["420", "384"]), st.sampled_from(["0644", "-1", "512", "null", '"420"']))
    )

    code, message, response = call(stub, attributes, secrets, permission)

    judge(provider, code, message, response, [token.strip(), PLANTED_TOKEN])


@FUZZ
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            ["roleName", "objects", "audience", "csi.storage.k8s.io/pod.name", "secretProviderClass"]
        )
        | st.text(ANY_CHARACTER, max_size=10),
        st.text(ANY_CHARACTER, max_size=40),
        max_size=4,
    ),
    secrets=st.sampled_from(["", "null", "{}", "[]", '{"a": 1}', "not json"]),
)
def test_fuzz_raw_attributes_over_the_socket(
    provider: ProviderProcess, stub: Any, kv_path: str, overrides: dict[str, str], secrets: str
) -> None:
    """Random keys and values over a valid request, sent as a forged caller would: never INTERNAL."""
    attributes: dict[str, str] = {
        "csi.storage.k8s.io/pod.namespace": NAMESPACE,
        "csi.storage.k8s.io/pod.name": "fuzz-raw",
        "csi.storage.k8s.io/pod.uid": "00000000-0000-4000-8000-000000000000",
        "csi.storage.k8s.io/serviceAccount.name": SERVICE_ACCOUNT,
        "roleName": "app",
        "objects": f"- objectName: value\n  secretPath: secret/data/{kv_path}\n  secretKey: value\n",
        "csi.storage.k8s.io/serviceAccount.tokens": json.dumps({"vault": {"token": PLANTED_TOKEN}}),
    }
    attributes.update(overrides)
    attributes.pop("vaultAddress", None)

    code, message, response = call(stub, json.dumps(attributes), secrets)

    judge(provider, code, message, response, [PLANTED_TOKEN])


@pytest.mark.parametrize(
    "namespace", [pytest.param("tenant-名前", id="cjk"), pytest.param("ząb", id="latin-ext")]
)
def test_non_latin1_vault_namespace(
    provider: ProviderProcess, stub: Any, kv_path: str, namespace: str
) -> None:
    """A vaultNamespace that cannot be an HTTP header is INVALID_ARGUMENT naming vaultNamespace."""
    pod = PodInfo(namespace=NAMESPACE, name="ns", uid=pod_uid(NAMESPACE, "ns"), service_account="app")
    parameters = {
        "roleName": "app",
        "vaultNamespace": namespace,
        "objects": f"- objectName: value\n  secretPath: secret/data/{kv_path}\n",
    }
    attributes, secrets = build_mount_payload(
        parameters, spc_name="fuzz", pod=pod, tokens={"vault": (PLANTED_TOKEN, "2030-01-01T00:00:00Z")}
    )

    code, message, _ = call(stub, attributes, secrets)

    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert "vaultNamespace" in message


def test_control_character_in_objects_over_the_socket(provider: ProviderProcess, stub: Any) -> None:
    """An objects string with a BEL character is INVALID_ARGUMENT saying objects is not valid YAML."""
    pod = PodInfo(namespace=NAMESPACE, name="bel", uid=pod_uid(NAMESPACE, "bel"), service_account="app")
    attributes, secrets = build_mount_payload(
        {"roleName": "app", "objects": "- objectName: a\x07\n  secretPath: secret/data/x\n"},
        spc_name="fuzz",
        pod=pod,
        tokens={"vault": (PLANTED_TOKEN, "2030-01-01T00:00:00Z")},
    )

    code, message, _ = call(stub, attributes, secrets)

    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert message.startswith("objects is not valid YAML")


def test_deeply_nested_attributes_over_the_socket(provider: ProviderProcess, stub: Any) -> None:
    """attributes nested 5000 deep (a forged caller): INVALID_ARGUMENT about attributes, not INTERNAL."""
    code, message, _ = call(stub, "[" * 5000 + "]" * 5000, "")

    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert re.fullmatch(
        r"attributes is (not valid JSON|nested too deeply)( \(or is nested too deeply\))?", message
    )


def test_provider_still_serves_after_the_fuzzing(provider: ProviderProcess, kv_path: str) -> None:
    """After every fuzzed request above, an ordinary Mount through the driver's client succeeds."""
    objects = f"- objectName: value\n  secretPath: secret/data/{kv_path}\n  secretKey: value\n"
    result = provider.mount(
        {"roleName": "app", "objects": objects}, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT
    )
    assert result.files[0].contents == VALUES["value"].encode()
