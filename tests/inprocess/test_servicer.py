"""The servicer in-process (grpc_testing's server) over the real Mounter and a FakeVault.

The one table from errors to gRPC codes, the size checks against the driver's limits,
INTERNAL for a bug of ours, and the one log line per Mount, each reached the way a
real Mount reaches it: by what Vault answers, or by what the request carries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc
import pytest
from fake_vault import FakeVault, answer
from inprocess_kit import (
    ADDRESS,
    HMAC_KEY,
    ISSUER,
    NAMESPACE,
    POD,
    Call,
    composed,
    config_for,
    mount_request,
    serving,
    spc,
)

from provider import PROVIDER_NAME, __version__
from provider.errors import (
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    KubernetesUnavailable,
    PermissionDenied,
    ResponseTooLarge,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
)
from provider.render.version_hmac import object_version
from provider.serve.composition import Provider
from provider.serve.servicer import CODES, status_for
from provider.v1alpha1 import service_pb2
from provider.vault.transport import HttpResponse

KV = "/v1/secret/data/app"
WHERE = f"{ADDRESS} (from the -vault-addr flag)"
ONE_KEY = spc("- objectName: a\n  secretPath: secret/data/app\n  secretKey: password\n")
JWT = ISSUER.mint(NAMESPACE, POD.service_account, POD.name, POD.uid)


@pytest.fixture
def fake() -> FakeVault:
    vault = FakeVault()
    vault.admit("app", f"{NAMESPACE}/app")
    vault.put("app", {"password": "correct-horse"})
    return vault


@pytest.fixture
def provider(fake: FakeVault) -> Iterator[Provider]:
    with composed(fake) as built:
        yield built


def mount(provider: Provider, parameters: dict[str, str] = ONE_KEY, jwt: str = JWT) -> Call:
    with serving(provider) as call:
        return call(mount_request(parameters, jwt=jwt))


def test_the_table_covers_every_error_the_provider_raises() -> None:
    """Each class of the error tree has its code; anything else is INTERNAL."""
    assert {cls.__name__: code.name for cls, code in CODES.items()} == {
        "InvalidRequest": "INVALID_ARGUMENT",
        "PermissionDenied": "PERMISSION_DENIED",
        "SecretNotFound": "NOT_FOUND",
        "VaultRejected": "FAILED_PRECONDITION",
        "VaultUnavailable": "UNAVAILABLE",
        "KubernetesUnavailable": "UNAVAILABLE",
        "ResponseTooLarge": "RESOURCE_EXHAUSTED",
        "DeadlineExceeded": "DEADLINE_EXCEEDED",
        "Cancelled": "CANCELLED",
    }
    for cls in (InvalidRequest, PermissionDenied, SecretNotFound, VaultRejected, VaultUnavailable):
        assert status_for(cls("x")) is CODES[cls]
    for other in (KubernetesUnavailable, ResponseTooLarge, DeadlineExceeded, Cancelled):
        assert status_for(other("x")) is CODES[other]


@pytest.mark.parametrize(
    ("path", "answers", "code", "details"),
    [
        pytest.param(
            "/v1/auth/kubernetes/login",
            [answer(403, {"errors": ["service account name not authorized"]})],
            grpc.StatusCode.PERMISSION_DENIED,
            f'login to Vault at {WHERE} with role "app" on auth mount "kubernetes" as service account '
            "team-a/app was denied (HTTP 403): service account name not authorized",
            id="login-denied",
        ),
        pytest.param(
            KV,
            [answer(404, {"errors": []})],
            grpc.StatusCode.NOT_FOUND,
            'objects[0] "a": nothing at /v1/secret/data/app (404)',
            id="not-found",
        ),
        pytest.param(
            KV,
            [answer(400, {"errors": ["bad request"]})],
            grpc.StatusCode.FAILED_PRECONDITION,
            'objects[0] "a": GET /v1/secret/data/app failed: '
            "Vault rejected the request (HTTP 400): bad request",
            id="rejected",
        ),
        pytest.param(
            KV,
            [answer(503, {"errors": ["Vault is sealed"]})] * 3,
            grpc.StatusCode.UNAVAILABLE,
            f'objects[0] "a": GET /v1/secret/data/app failed: Vault at {WHERE} is sealed or unavailable '
            "(503): Vault is sealed (after 3 attempts)",
            id="sealed",
        ),
        pytest.param(
            KV,
            [HttpResponse(200, {"Content-Type": "text/html"}, b"proxy login")],
            grpc.StatusCode.UNAVAILABLE,
            f'objects[0] "a": GET /v1/secret/data/app failed: Vault at {WHERE} answered 200 with a body '
            "that is not JSON",
            id="html-page",
        ),
        pytest.param(
            KV,
            [HttpResponse(200, {}, b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")],
            grpc.StatusCode.INVALID_ARGUMENT,
            'objects[0] "a": Vault answered GET /v1/secret/data/app with a body that is not JSON (such as '
            'PEM), so secretKey "password" cannot be taken from it; remove it to write the answer as it came',
            id="raw-answer-with-a-secret-key",
        ),
    ],
)
def test_vaults_answers_become_codes(
    provider: Provider,
    fake: FakeVault,
    path: str,
    answers: list[HttpResponse],
    code: grpc.StatusCode,
    details: str,
) -> None:
    """Each answer ends the RPC with its code and a message for the SPC's author."""
    fake.fail_next(path, *answers)
    call = mount(provider)
    assert (call.code, call.details) == (code, details)


def test_a_bad_request_is_invalid_argument_before_any_network_call(
    provider: Provider, fake: FakeVault
) -> None:
    """Every problem at once, and Vault never hears of it."""
    call = mount(
        provider, {"objects": "- objectName: a\n  secretPath: secret/data/app\n  secretkey: password\n"}
    )
    assert call.code is grpc.StatusCode.INVALID_ARGUMENT
    assert call.details == (
        "roleName is required: the Vault role to log in with; "
        "objects[0] \"a\": unknown key 'secretkey' (did you mean 'secretKey'? keys are case-sensitive)"
    )
    assert fake.requests == []


def test_a_bug_of_ours_is_internal_and_the_provider_keeps_serving(
    provider: Provider, fake: FakeVault
) -> None:
    """An unexpected exception is INTERNAL with a generic message, never its text; the provider goes on."""
    fake.fail_next(KV, RuntimeError("a bug that quotes correct-horse"))
    first = mount(provider)
    assert (first.code, first.details) == (
        grpc.StatusCode.INTERNAL,
        "internal error in the Vault provider; see the provider's log",
    )
    assert mount(provider).code is grpc.StatusCode.OK


def test_a_file_over_the_per_file_limit(fake: FakeVault) -> None:
    """-max-file-bytes: RESOURCE_EXHAUSTED naming the file and the flag."""
    fake.put("app", {"password": "x" * 20})
    with composed(fake, "-max-file-bytes=10") as provider:
        call = mount(provider)
    assert (call.code, call.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "file 'a' would hold 20 bytes, over this provider's 10-byte limit per file (-max-file-bytes)",
    )


def test_a_volume_over_the_drivers_receive_limit(fake: FakeVault) -> None:
    """-max-response-bytes: the whole answer's size, the largest file, and what to change."""
    fake.put("app", {"password": "x" * 200})
    config = config_for(mount_request(ONE_KEY, jwt=JWT))
    version = object_version(HMAC_KEY, config.objects[0].fingerprint, b"x" * 200)
    size = service_pb2.MountResponse(
        files=[service_pb2.File(path="a", mode=0o644, contents=b"x" * 200)],
        object_version=[service_pb2.ObjectVersion(id="a", version=version)],
    ).ByteSize()
    with composed(fake, "-max-response-bytes=100") as provider:
        call = mount(provider)
    assert (call.code, call.details) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the volume would hold {size} bytes, over the driver's 100-byte receive limit (largest file: 'a', "
        "200 bytes); select single keys with secretKey or raise the driver's --max-call-recv-msg-size",
    )


def test_a_mount_answers_files_and_versions(provider: Provider) -> None:
    """The response carries every file with its mode and one version per object."""
    call = mount(provider)
    assert call.code is grpc.StatusCode.OK
    assert [(f.path, f.mode, f.contents) for f in call.response.files] == [("a", 0o644, b"correct-horse")]
    assert [v.id for v in call.response.object_version] == ["a"]


def test_polls_answer_what_vault_holds_now_though_an_unchanged_answer_is_kept(
    provider: Provider, fake: FakeVault
) -> None:
    """The kept answer of a volume is sent again only while its secrets are unchanged."""

    def polled() -> tuple[list[tuple[str, bytes]], list[str]]:
        call = mount(provider)
        assert call.code is grpc.StatusCode.OK
        files = [(f.path, f.contents) for f in call.response.files]
        return files, [v.version for v in call.response.object_version]

    first, again = polled(), polled()
    fake.put("app", {"password": "battery-staple"})
    rotated = polled()
    assert again == first
    assert first[0] == [("a", b"correct-horse")]
    assert rotated[0] == [("a", b"battery-staple")]
    assert rotated[1] != first[1]


def test_version_names_the_provider(provider: Provider) -> None:
    answer_ = provider.servicer.Version(service_pb2.VersionRequest(version="v1alpha1"), context=None)  # type: ignore[arg-type]
    assert (answer_.version, answer_.runtime_name, answer_.runtime_version) == (
        "v1alpha1",
        PROVIDER_NAME,
        __version__,
    )


def test_one_log_line_per_mount_and_nothing_secret(
    provider: Provider, fake: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    """pod, SPC, object count and code; never the JWT, the Vault token or a value, at any level."""
    caplog.set_level(logging.DEBUG)
    mount(provider)
    # Refused twice: the cached token, then the re-login's; Vault's reason quotes the JWT.
    denied = answer(403, {"errors": [f"denied for {JWT}"]})
    fake.fail_next(KV, denied, denied)
    mount(provider)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "provider.mount" and r.getMessage().startswith("mount")
    ]
    assert [line.split(" duration_ms=")[0] for line in lines] == [
        "mount pod=team-a/app-0 spc=app-secrets objects=1",
        "mount pod=team-a/app-0 spc=app-secrets objects=1",
    ]
    assert [line.rsplit(" code=", 1)[1] for line in lines] == ["OK", "PERMISSION_DENIED"]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (JWT, *fake.live_tokens, "correct-horse"):
        assert secret not in everything


def test_failures_are_counted_by_code(provider: Provider, fake: FakeVault) -> None:
    """mounts_total and mount_failures_total by code and SecretProviderClass, never by pod."""
    fake.fail_next(KV, answer(404, {"errors": []}))
    mount(provider)
    mount(provider)
    text = provider.metrics.exposition().decode()
    assert 'vault_csi_provider_mounts_total{code="NOT_FOUND",result="failure"} 1.0' in text
    assert 'vault_csi_provider_mounts_total{code="OK",result="success"} 1.0' in text
    assert (
        'vault_csi_provider_mount_failures_total{code="NOT_FOUND",spc_name="app-secrets",'
        'spc_namespace="team-a"} 1.0' in text
    )
    assert "app-0" not in text
