"""The Mounter in-process, composed by `build_provider` over a FakeVault: plan, tokens, leases, errors.

What these prove cheaply here, the integration suites prove again against real
OpenBao and PostgreSQL (test_caching, test_template_objects): one request per
distinct read, kept credentials, one re-login after a refused cached token and no
more, the TokenRequest fallback, and all-or-nothing answers.
"""

from __future__ import annotations

import pytest
from fake_vault import FakeVault, answer
from inprocess_kit import ADDRESS, HMAC_KEY, ISSUER, NAMESPACE, POD, composed, config_for, mount_request, spc

from provider.errors import (
    KubernetesUnavailable,
    PermissionDenied,
    ProviderError,
    SecretNotFound,
    VaultUnavailable,
)
from provider.mount.mounter import MountResult
from provider.render.version_hmac import object_version
from provider.serve.composition import Provider
from provider.vault.deadline import Deadline

KV = "/v1/secret/data/app"
WHERE = f"{ADDRESS} (from the -vault-addr flag)"
# One JWT for every poll, as the kubelet hands the driver one token until it nears expiry.
JWT = ISSUER.mint(NAMESPACE, POD.service_account, POD.name, POD.uid)
TWO_KEYS = spc(
    """
    - objectName: user
      secretPath: secret/data/app
      secretKey: username
    - objectName: password
      secretPath: secret/data/app
      secretKey: password
      filePermission: 0o600
    """
)


def mount(provider: Provider, parameters: dict[str, str], jwt: str = JWT) -> MountResult:
    config = config_for(mount_request(parameters, jwt=jwt), token_optional=provider.mounter.requests_tokens)
    return provider.mounter.mount(config, Deadline(10))


def failure(provider: Provider, parameters: dict[str, str], jwt: str = JWT) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        mount(provider, parameters, jwt)
    return caught.value


def test_two_keys_of_one_secret_are_one_read(provider: Provider, fake: FakeVault) -> None:
    """One login, one GET for both objects; files, modes and HMAC versions as the driver will see them."""
    result = mount(provider, TWO_KEYS)
    assert [(f.path, f.mode, f.contents) for f in result.files] == [
        ("user", 0o644, b"app"),
        ("password", 0o600, b"correct-horse"),
    ]
    config = config_for(mount_request(TWO_KEYS))
    assert result.versions == tuple(
        (obj.name, object_version(HMAC_KEY, obj.fingerprint, content))
        for obj, content in zip(config.objects, (b"app", b"correct-horse"), strict=True)
    )
    assert [(r.method, r.path) for r in fake.requests] == [("POST", "/v1/auth/kubernetes/login"), ("GET", KV)]
    assert [(r.name, r.source) for r in result.records] == [("user", "new"), ("password", "new")]


def test_a_warm_poll_keeps_the_token_and_the_credential(provider: Provider, fake: FakeVault) -> None:
    """The second poll logs in no more and serves the kept database credential after one lease lookup."""
    parameters = spc(
        """
        - objectName: db-user
          secretPath: database/creds/app
          secretKey: username
        - objectName: db-password
          secretPath: database/creds/app
          secretKey: password
        """
    )
    first = mount(provider, parameters)
    second = mount(provider, parameters)
    assert second.files == first.files
    assert second.versions == first.versions
    assert [r.source for r in second.records] == ["kept", "kept"]
    assert [r.path for r in fake.requests] == [
        "/v1/auth/kubernetes/login",
        "/v1/database/creds/app",
        "/v1/sys/leases/lookup",
    ]
    assert 'vault_csi_provider_cache_lookups_total{cache="token",result="hit"} 1.0' in exposition(provider)


def test_a_polls_lookups_and_reads_go_out_together(provider: Provider, fake: FakeVault) -> None:
    """A poll's lease look-up and read are both sent before either is answered, from one thread; a
    lease found gone is issued anew in the round after."""
    parameters = spc(
        """
        - objectName: db-user
          secretPath: database/creds/app
          secretKey: username
        - objectName: password
          secretPath: secret/data/app
          secretKey: password
        """
    )
    first = mount(provider, parameters)
    fake.events.clear()
    fake.fail_next("/v1/sys/leases/lookup", answer(400, {"errors": ["invalid lease ID"]}))
    second = mount(provider, parameters)
    assert fake.events == [
        ("sent", "PUT /v1/sys/leases/lookup"),
        ("sent", f"GET {KV}"),
        ("answered", "PUT /v1/sys/leases/lookup"),
        ("answered", f"GET {KV}"),
        ("sent", "GET /v1/database/creds/app"),
        ("answered", "GET /v1/database/creds/app"),
    ]
    assert [r.source for r in second.records] == ["new", "new"]
    assert second.files[0].contents != first.files[0].contents  # a new database user
    assert second.files[1] == first.files[1]


def test_every_mount_takes_its_requests_in_one_order(provider: Provider, fake: FakeVault) -> None:
    """Key locks are taken as requests are first sent: in one sorted order whatever the objects' order,
    so two volumes of a pod listing the same secrets the other way round never wait on each other."""
    fake.put("app/b", {"password": "b"})
    listed = [("a", "secret/data/app"), ("b", "secret/data/app/b")]
    sent = []
    for objects in (listed, listed[::-1]):
        fake.events.clear()
        mount(
            provider,
            spc(
                "".join(
                    f"""
        - objectName: {name}
          secretPath: {path}
          secretKey: password
        """
                    for name, path in objects
                )
            ),
        )
        sent.append([what for event, what in fake.events if event == "sent" and "/secret/" in what])
    assert sent == [[f"GET {KV}", f"GET {KV}/b"]] * 2


def test_a_missing_key_fails_the_whole_mount(provider: Provider) -> None:
    """All or nothing: the first object is fine, the second's key is absent, and the Mount is one error."""
    parameters = spc(
        """
        - objectName: user
          secretPath: secret/data/app
          secretKey: username
        - objectName: other
          secretPath: secret/data/app
          secretKey: passwd
        """
    )
    error = failure(provider, parameters)
    assert isinstance(error, SecretNotFound)
    assert str(error) == (
        'objects[1] "other": GET /v1/secret/data/app: '
        'key "passwd" does not exist in the secret (it has 2 keys)'
    )


def test_a_revoked_cached_token_earns_one_relogin(provider: Provider, fake: FakeVault) -> None:
    """Vault refuses the cached token (revoked): one fresh login, one retry, and the Mount succeeds."""
    mount(provider, TWO_KEYS)
    fake.revoke(fake.live_tokens[0])
    result = mount(provider, TWO_KEYS)
    assert [f.contents for f in result.files] == [b"app", b"correct-horse"]
    assert len(fake.logins) == 2
    assert 'vault_csi_provider_vault_logins_total{result="success"} 2.0' in exposition(provider)


def test_relogins_are_throttled_when_the_policy_keeps_refusing(provider: Provider, fake: FakeVault) -> None:
    """After a re-login, a pod still refused gets the refusal, not another login (5-minute throttle)."""
    mount(provider, TWO_KEYS)
    denied = answer(403, {"errors": ["permission denied"]})
    fake.fail_next(KV, denied, denied, denied)
    for _ in range(2):
        error = failure(provider, TWO_KEYS)
        assert isinstance(error, PermissionDenied)
        assert str(error) == (
            'objects[0] "user": GET /v1/secret/data/app was denied (403): permission denied; '
            "check the role's policies"
        )
    assert len(fake.logins) == 2  # the first Mount's, and one re-login; none for the third Mount


def test_a_fresh_token_that_is_refused_is_not_logged_in_again(provider: Provider, fake: FakeVault) -> None:
    """A refusal of a token that was just obtained is the policy's: no re-login."""
    fake.fail_next(KV, answer(403, {"errors": ["permission denied"]}))
    assert isinstance(failure(provider, TWO_KEYS), PermissionDenied)
    assert len(fake.logins) == 1


def test_a_template_and_a_plain_object_share_one_read(provider: Provider, fake: FakeVault) -> None:
    """Agent's KV v2 path shim: `secret "secret/app"` reads secret/data/app, the plain object's request."""
    parameters = spc(
        """
        - objectName: user
          secretPath: secret/data/app
          secretKey: username
        - objectName: app.env
          template: |
            {{- with secret "secret/app" -}}
            USER={{ .Data.data.username }}
            {{- end }}
        """
    )
    result = mount(provider, parameters)
    assert [f.contents for f in result.files] == [b"app", b"USER=app\n"]
    assert [r.path for r in fake.requests if r.method == "GET"] == [
        "/v1/sys/internal/ui/mounts/secret/app",
        KV,
    ]
    assert [(r.name, r.path) for r in result.records] == [("user", KV), ("app.env", KV)]


def test_the_token_request_fallback_logs_in_with_the_requested_token(fake: FakeVault) -> None:
    """Without a driver token, the requester is asked for one bound to the pod, and the login uses it."""
    asked: list[tuple[str, ...]] = []

    def requester(namespace: str, account: str, audience: str, pod: str, uid: str, seconds: int) -> str:
        asked.append((namespace, account, audience, pod, uid, str(seconds)))
        return ISSUER.mint(namespace, account, pod, uid)

    with composed(fake, "-token-request-fallback", token_requester=requester) as provider:
        mount(provider, TWO_KEYS, jwt="")
    assert asked == [(NAMESPACE, "app", "vault", POD.name, POD.uid, "600")]
    assert len(fake.logins) == 1


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        pytest.param(
            PermissionDenied("cannot create serviceaccounts/token (403)", status=403), PermissionDenied
        ),
        pytest.param(KubernetesUnavailable("the Kubernetes API is unreachable"), KubernetesUnavailable),
    ],
)
def test_a_failed_token_request_says_what_was_missing(
    fake: FakeVault, raised: ProviderError, kind: type[ProviderError]
) -> None:
    """The requester's error keeps its class and fields, behind why a token was requested at all."""

    def requester(*_: object) -> str:
        raise raised

    with composed(fake, "-token-request-fallback", token_requester=requester) as provider:
        error = failure(provider, TWO_KEYS, jwt="")
    assert type(error) is kind
    assert error.status == raised.status
    assert str(error) == (
        f"the driver passed no token for audience 'vault' and the TokenRequest fallback failed: {raised}"
    )
    assert fake.requests == []


def test_a_read_error_keeps_vaults_fields(provider: Provider, fake: FakeVault) -> None:
    """Worded for the object, the error still says it was a passing 503 (the gRPC code depends on it)."""
    sealed = answer(503, {"errors": ["Vault is sealed"]})
    fake.fail_next(KV, sealed, sealed, sealed)
    error = failure(provider, TWO_KEYS)
    assert isinstance(error, VaultUnavailable)
    assert (error.status, error.retryable, error.reasons) == (503, True, "Vault is sealed")
    assert str(error) == (
        f'objects[0] "user": GET /v1/secret/data/app failed: Vault at {WHERE} is sealed or unavailable '
        "(503): Vault is sealed (after 3 attempts)"
    )


def exposition(provider: Provider) -> str:
    return provider.metrics.exposition().decode()
