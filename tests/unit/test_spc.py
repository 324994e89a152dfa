"""provider.spc: a Mount request (attributes, secrets, target_path, permission) → MountConfig.

Validation tables start from MINIMAL (a valid request) and change one thing. Every error
test also checks that the planted service-account token never reaches the message.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provider.errors import InvalidRequest
from provider.request.mount_request import (
    DEFAULT_AUDIENCE,
    MountConfig,
    PodIdentity,
    VaultOverrides,
    parse_mount_request,
)
from provider.request.objects import VaultRequest

TESTDATA = Path(__file__).parent.parent / "testdata"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJQTEFOVEVELVRPS0VOIn0.planted-token-signature"
OTHER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJPVEhFUi1UT0tFTiJ9.other-token-signature"
TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens"
POD_KEYS = (
    "csi.storage.k8s.io/pod.namespace",
    "csi.storage.k8s.io/pod.name",
    "csi.storage.k8s.io/pod.uid",
    "csi.storage.k8s.io/serviceAccount.name",
)
HOW_TO = (
    'the driver passes a token only for audiences listed in the CSIDriver "secrets-store.csi.k8s.io" '
    'spec.tokenRequests; add {{"audience": "{0}"}} there (Helm: tokenRequests[0].audience={0})'
)


def tokens_json(tokens: dict[str, str]) -> str:
    """serviceAccount.tokens as the driver writes it."""
    return json.dumps(
        {
            audience: {"token": token, "expirationTimestamp": "2030-01-01T00:00:00Z"}
            for audience, token in tokens.items()
        }
    )


MINIMAL: dict[str, str] = {
    "csi.storage.k8s.io/pod.name": "app-0",
    "csi.storage.k8s.io/pod.namespace": "demo",
    "csi.storage.k8s.io/pod.uid": "uid-1",
    "csi.storage.k8s.io/serviceAccount.name": "app",
    TOKENS_KEY: tokens_json({"vault": TOKEN}),
    "secretProviderClass": "vault-app",
    "roleName": "app",
    "objects": "- objectName: db-password\n  secretPath: secret/data/db\n  secretKey: password\n",
}


def parse(
    remove: tuple[str, ...] = (),
    secrets: str = "null",
    target_path: str = "/var/lib/kubelet/pods/uid-1/volumes/x/mount",
    permission: str = "420",
    **changes: str,
) -> MountConfig:
    """parse_mount_request on MINIMAL with attribute `changes` applied and `remove` keys dropped."""
    attributes = {key: value for key, value in {**MINIMAL, **changes}.items() if key not in remove}
    return parse_mount_request(json.dumps(attributes), secrets, target_path, permission)


def error_of(
    remove: tuple[str, ...] = (),
    secrets: str = "null",
    target_path: str = "/t",
    permission: str = "420",
    attributes: str | None = None,
    **changes: str,
) -> str:
    """The InvalidRequest message for MINIMAL changed; asserts the planted token is not in it."""
    if attributes is None:
        attributes = json.dumps(
            {key: value for key, value in {**MINIMAL, **changes}.items() if key not in remove}
        )
    with pytest.raises(InvalidRequest) as caught:
        parse_mount_request(attributes, secrets, target_path, permission)
    message = str(caught.value)
    assert TOKEN not in message
    assert OTHER_TOKEN not in message
    assert "planted-token" not in message
    return message


def test_golden_driver_request() -> None:
    """The attributes string a real driver sends (tests/testdata) parses into the expected MountConfig."""
    attributes = (TESTDATA / "driver-attributes.json").read_text(encoding="utf-8").rstrip("\n")
    jwt = json.loads(json.loads(attributes)[TOKENS_KEY])["vault"]["token"]
    config = parse_mount_request(attributes, "null", "/var/lib/kubelet/pods/p/volumes/v/mount", "420")
    assert config.pod == PodIdentity(
        namespace="demo",
        name="app-7d9c5b8f6d-x2k4p",
        uid="0c6a9a4e-5d3b-4c1e-9f0a-2b7e8d1c3f45",
        service_account="app",
    )
    assert config.spc_name == "vault-app"
    assert config.role == "app"
    assert config.auth_mount == "kubernetes"
    assert config.audience == "vault"
    assert config.jwt == jwt
    assert config.vault_overrides == VaultOverrides(address="https://vault.vault.svc:8200")
    assert config.default_mode == 0o644
    assert config.target_path == "/var/lib/kubelet/pods/p/volumes/v/mount"
    assert [(obj.name, obj.request, obj.secret_key) for obj in config.objects] == [
        ("db-password", VaultRequest("GET", "/v1/secret/data/db-pass"), "password"),
        ("config/app.json", VaultRequest("GET", "/v1/secret/data/app"), None),
        (
            "tls/tls.key",
            VaultRequest(
                "PUT", "/v1/pki/issue/example-dot-com", (), '{"common_name":"app.demo.svc","ttl":"24h"}'
            ),
            "private_key",
        ),
    ]


def test_minimal_request() -> None:
    """A minimal request: pod identity, role, default audience token, provider defaults for the rest."""
    config = parse()
    assert config.pod == PodIdentity("demo", "app-0", "uid-1", "app")
    assert config.pod.describe() == "demo/app-0"
    assert config.spc_name == "vault-app"
    assert config.role == "app"
    assert config.auth_mount == ""
    assert config.audience == DEFAULT_AUDIENCE == "vault"
    assert config.jwt == TOKEN
    assert config.vault_overrides == VaultOverrides()
    assert config.default_mode == 420
    assert [obj.name for obj in config.objects] == ["db-password"]


def test_a_repeated_request_is_parsed_once_and_a_renewed_token_anew() -> None:
    """A rotation poll sends its volume's request again: the same config, until the token changes."""
    first = parse()
    assert parse() is first
    renewed = parse(**{TOKENS_KEY: tokens_json({"vault": OTHER_TOKEN})})
    assert (renewed.jwt, first.jwt) == (OTHER_TOKEN, TOKEN)
    assert parse(permission="256").default_mode == 256


def test_a_refused_request_is_refused_again() -> None:
    """Only valid requests are remembered: the same bad request raises the same error every time."""
    messages = [error_of(remove=("roleName",)) for _ in range(2)]
    assert messages == ["roleName is required: the Vault role to log in with"] * 2


def test_token_never_in_repr() -> None:
    """The MountConfig repr (which may reach a debug log) leaves the token out."""
    assert TOKEN not in repr(parse())


@pytest.mark.parametrize("missing", [pytest.param(key, id=key.rsplit("/", 1)[1]) for key in POD_KEYS])
def test_missing_pod_attribute(missing: str) -> None:
    """Each pod identity attribute is required; the message points at podInfoOnMount."""
    assert error_of(remove=(missing,)) == (
        f"missing pod attributes {missing}: the CSIDriver must have podInfoOnMount: true"
    )


def test_all_pod_attributes_missing_listed_together() -> None:
    """Several missing pod attributes are named in one problem."""
    assert error_of(remove=POD_KEYS) == (
        f"missing pod attributes {', '.join(POD_KEYS)}: the CSIDriver must have podInfoOnMount: true"
    )


@pytest.mark.parametrize(
    ("changes", "remove"),
    [
        pytest.param({}, ("roleName",), id="missing"),
        pytest.param({"roleName": ""}, (), id="empty"),
    ],
)
def test_role_name_required(changes: dict[str, str], remove: tuple[str, ...]) -> None:
    """roleName is required."""
    assert error_of(remove=remove, **changes) == "roleName is required: the Vault role to log in with"


def test_target_path_required() -> None:
    """An empty target_path is refused."""
    assert error_of(target_path="") == "target_path is empty"


@pytest.mark.parametrize(
    ("permission", "mode"),
    [
        pytest.param("420", 0o644, id="420"),
        pytest.param("384", 0o600, id="384"),
        pytest.param("0", 0, id="zero"),
        pytest.param("511", 0o777, id="maximum"),
        pytest.param(" 420 ", 0o644, id="json-whitespace"),
    ],
)
def test_permission(permission: str, mode: int) -> None:
    """permission is the JSON number the driver sends, the default file mode."""
    assert parse(permission=permission).default_mode == mode


@pytest.mark.parametrize(
    "permission",
    [
        pytest.param("", id="empty"),
        pytest.param("abc", id="not-json"),
        pytest.param("-1", id="negative"),
        pytest.param("512", id="above-0777"),
        pytest.param("420.0", id="float"),
        pytest.param("1e2", id="exponent"),
        pytest.param('"420"', id="json-string"),
        pytest.param("true", id="bool"),
        pytest.param("null", id="null"),
        pytest.param("0644", id="leading-zero-is-not-json"),
    ],
)
def test_bad_permission(permission: str) -> None:
    """Anything but a JSON integer in 0..511 is refused."""
    assert error_of(permission=permission) == (
        "permission must be a JSON number between 0 and 511 (0777), such as 420"
    )


@pytest.mark.parametrize(
    ("changes", "mount"),
    [
        pytest.param({}, "", id="absent-uses-provider-default"),
        pytest.param({"vaultAuthMountPath": "kubernetes"}, "kubernetes", id="auth-mount-path"),
        pytest.param({"vaultKubernetesMountPath": "kubernetes-prod"}, "kubernetes-prod", id="alias"),
        pytest.param({"vaultAuthMountPath": "auth/jwt"}, "jwt", id="auth-prefix-dropped"),
        pytest.param({"vaultAuthMountPath": "/auth/jwt/"}, "jwt", id="slashes-and-auth-prefix"),
        pytest.param({"vaultAuthMountPath": "/kubernetes/"}, "kubernetes", id="slashes"),
        pytest.param({"vaultAuthMountPath": "clusters/east"}, "clusters/east", id="nested-mount"),
        pytest.param({"vaultAuthMountPath": ""}, "", id="empty"),
    ],
)
def test_auth_mount(changes: dict[str, str], mount: str) -> None:
    """vaultAuthMountPath or its alias name the auth mount, without 'auth/' or slashes."""
    assert parse(**changes).auth_mount == mount


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"vaultAuthMountPath": "jwt", "vaultKubernetesMountPath": "kubernetes"},
            "set only one of vaultAuthMountPath and vaultKubernetesMountPath (they are aliases)",
            id="both-aliases",
        ),
        pytest.param(
            {"vaultAuthMountPath": "../sys"},
            "vaultAuthMountPath must be an auth mount name such as kubernetes or jwt",
            id="dotdot",
        ),
        pytest.param(
            {"vaultAuthMountPath": "jwt?x=1"},
            "vaultAuthMountPath must be an auth mount name such as kubernetes or jwt",
            id="query",
        ),
        pytest.param(
            {"vaultKubernetesMountPath": "my mount"},
            "vaultAuthMountPath must be an auth mount name such as kubernetes or jwt",
            id="space",
        ),
    ],
)
def test_bad_auth_mount(changes: dict[str, str], message: str) -> None:
    """Both aliases at once, or a mount that is not a plain name, is refused."""
    assert error_of(**changes) == message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        pytest.param("1", True, id="1"),
        pytest.param("t", True, id="t"),
        pytest.param("T", True, id="T"),
        pytest.param("TRUE", True, id="TRUE"),
        pytest.param("true", True, id="true"),
        pytest.param("True", True, id="True"),
        pytest.param("0", False, id="0"),
        pytest.param("f", False, id="f"),
        pytest.param("F", False, id="F"),
        pytest.param("FALSE", False, id="FALSE"),
        pytest.param("false", False, id="false"),
        pytest.param("False", False, id="False"),
    ],
)
def test_skip_tls_verify_go_parse_bool(text: str, value: bool) -> None:
    """vaultSkipTLSVerify takes every form of Go's strconv.ParseBool."""
    assert parse(vaultSkipTLSVerify=text).vault_overrides.skip_verify is value


def test_skip_tls_verify_absent_is_unset() -> None:
    """Without vaultSkipTLSVerify the SPC says nothing, so the provider's setting stays."""
    assert parse().vault_overrides.skip_verify is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("yes", id="yes"),
        pytest.param("tRUE", id="mixed-case"),
        pytest.param(" true", id="leading-space"),
        pytest.param("2", id="2"),
        pytest.param("on", id="on"),
    ],
)
def test_bad_skip_tls_verify(text: str) -> None:
    """Other spellings are refused, quoting what was written."""
    assert (
        error_of(vaultSkipTLSVerify=text)
        == f"vaultSkipTLSVerify {text!r} is not a boolean (use true or false)"
    )


def test_connection_overrides() -> None:
    """Every connection parameter of the SPC lands in VaultOverrides; the namespace loses its slashes."""
    config = parse(
        vaultAddress="https://vault.example:8200",
        vaultNamespace="/team-a/",
        vaultCACertPath="/ca.pem",
        vaultCADirectory="/cas",
        vaultTLSServerName="vault.internal",
        vaultTLSClientCertPath="/client.pem",
        vaultTLSClientKeyPath="/client.key",
        vaultSkipTLSVerify="false",
    )
    assert config.vault_overrides == VaultOverrides(
        address="https://vault.example:8200",
        namespace="team-a",
        ca_cert="/ca.pem",
        ca_directory="/cas",
        server_name="vault.internal",
        client_cert="/client.pem",
        client_key="/client.key",
        skip_verify=False,
    )


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"vaultTLSClientCertPath": "/client.pem"}, id="cert-without-key"),
        pytest.param({"vaultTLSClientKeyPath": "/client.key"}, id="key-without-cert"),
    ],
)
def test_client_cert_and_key_together(changes: dict[str, str]) -> None:
    """A client certificate without its key (or the reverse) is refused."""
    assert error_of(**changes) == "vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together"


@pytest.mark.parametrize(
    ("changes", "secrets", "audience", "token"),
    [
        pytest.param({}, "null", "vault", TOKEN, id="attributes-default-audience"),
        pytest.param(
            {TOKENS_KEY: tokens_json({"vault": TOKEN, "other": OTHER_TOKEN}), "audience": "other"},
            "null",
            "other",
            OTHER_TOKEN,
            id="custom-audience",
        ),
        pytest.param({"audience": ""}, "null", "vault", TOKEN, id="empty-audience-is-default"),
        pytest.param(
            {TOKENS_KEY: ""},
            json.dumps({TOKENS_KEY: tokens_json({"vault": TOKEN})}),
            "vault",
            TOKEN,
            id="kubernetes-1.35-tokens-in-secrets",
        ),
        pytest.param(
            {TOKENS_KEY: tokens_json({"vault": TOKEN})},
            json.dumps({TOKENS_KEY: tokens_json({"vault": OTHER_TOKEN})}),
            "vault",
            TOKEN,
            id="attributes-before-secrets",
        ),
        pytest.param(
            {TOKENS_KEY: tokens_json({"vault": TOKEN})},
            json.dumps({"clientCert": "x"}),
            "vault",
            TOKEN,
            id="unrelated-node-publish-secrets",
        ),
    ],
)
def test_service_account_token(changes: dict[str, str], secrets: str, audience: str, token: str) -> None:
    """The token for the SPC's audience (default "vault") from attributes, else from the secrets."""
    config = parse(secrets=secrets, **changes)
    assert (config.audience, config.jwt) == (audience, token)


def test_default_audience_serves_classes_that_name_none() -> None:
    """-audience picks the token of classes without `audience`; a class's own audience still wins."""
    attributes = {**MINIMAL, TOKENS_KEY: tokens_json({"vault": OTHER_TOKEN, "sts.example": TOKEN})}
    config = parse_mount_request(json.dumps(attributes), "null", "/t", "420", default_audience="sts.example")
    assert (config.audience, config.jwt) == ("sts.example", TOKEN)
    own = parse_mount_request(
        json.dumps({**attributes, "audience": "vault"}), "null", "/t", "420", default_audience="sts.example"
    )
    assert (own.audience, own.jwt) == ("vault", OTHER_TOKEN)


def test_tokens_only_in_secrets_when_attribute_absent() -> None:
    """With serviceAccountTokenInSecrets the attribute may be missing altogether."""
    config = parse(remove=(TOKENS_KEY,), secrets=json.dumps({TOKENS_KEY: tokens_json({"vault": TOKEN})}))
    assert config.jwt == TOKEN


@pytest.mark.parametrize(
    ("changes", "remove", "secrets", "message"),
    [
        pytest.param(
            {"audience": "vault-prod"},
            (),
            "null",
            'no service-account token for audience "vault-prod" (present: "vault"): '
            + HOW_TO.format("vault-prod"),
            id="audience-absent-lists-present",
        ),
        pytest.param(
            {TOKENS_KEY: tokens_json({"b": TOKEN, "a": OTHER_TOKEN})},
            (),
            "null",
            'no service-account token for audience "vault" (present: "a", "b"): ' + HOW_TO.format("vault"),
            id="several-present-sorted",
        ),
        pytest.param(
            {TOKENS_KEY: "{}"},
            (),
            "null",
            'no service-account token for audience "vault" (present: none): ' + HOW_TO.format("vault"),
            id="no-audiences",
        ),
        pytest.param(
            {},
            (TOKENS_KEY,),
            "null",
            "no service-account token in the request: " + HOW_TO.format("vault"),
            id="no-tokens-attribute",
        ),
        pytest.param(
            {TOKENS_KEY: ""},
            (),
            "",
            "no service-account token in the request: " + HOW_TO.format("vault"),
            id="empty-tokens-attribute",
        ),
        pytest.param(
            {TOKENS_KEY: '{"vault":{"token":"' + TOKEN + '"'},
            (),
            "null",
            f"{TOKENS_KEY} is not a JSON object of audience to token",
            id="truncated-tokens-json",
        ),
        pytest.param(
            {TOKENS_KEY: json.dumps([TOKEN])},
            (),
            "null",
            f"{TOKENS_KEY} is not a JSON object of audience to token",
            id="tokens-json-list",
        ),
        pytest.param(
            {TOKENS_KEY: json.dumps({"vault": TOKEN})},
            (),
            "null",
            'the service-account token for audience "vault" is empty or malformed',
            id="entry-is-a-string",
        ),
        pytest.param(
            {TOKENS_KEY: json.dumps({"vault": {"expirationTimestamp": "x"}})},
            (),
            "null",
            'the service-account token for audience "vault" is empty or malformed',
            id="entry-without-token",
        ),
        pytest.param(
            {TOKENS_KEY: json.dumps({"vault": {"token": "  "}})},
            (),
            "null",
            'the service-account token for audience "vault" is empty or malformed',
            id="blank-token",
        ),
        pytest.param(
            {TOKENS_KEY: json.dumps({"vault": {"token": 7}})},
            (),
            "null",
            'the service-account token for audience "vault" is empty or malformed',
            id="token-not-a-string",
        ),
        pytest.param(
            {},
            (TOKENS_KEY,),
            json.dumps({TOKENS_KEY: "{" + TOKEN}),
            f"{TOKENS_KEY} is not a JSON object of audience to token",
            id="malformed-tokens-in-secrets",
        ),
    ],
)
def test_token_problems(changes: dict[str, str], remove: tuple[str, ...], secrets: str, message: str) -> None:
    """A missing or malformed token explains the CSIDriver tokenRequests fix and never shows a token."""
    assert error_of(remove=remove, secrets=secrets, **changes) == message


@pytest.mark.parametrize("secrets", [pytest.param("null", id="null"), pytest.param("", id="empty")])
def test_secrets_may_be_null_or_empty(secrets: str) -> None:
    """The driver sends "null" (or nothing) when there are no node-publish secrets."""
    assert parse(secrets=secrets).jwt == TOKEN


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        pytest.param("{", "attributes is not valid JSON", id="truncated"),
        pytest.param(
            '{"roleName": "app", ' + json.dumps(TOKEN), "attributes is not valid JSON", id="token-in-bad-json"
        ),
        pytest.param("not json", "attributes is not valid JSON", id="text"),
        pytest.param("[]", "attributes must be a JSON object of strings", id="list"),
        pytest.param("null", "attributes must be a JSON object of strings", id="null"),
        pytest.param('"x"', "attributes must be a JSON object of strings", id="string"),
        pytest.param('{"roleName": 1}', "attributes must be a JSON object of strings", id="number-value"),
        pytest.param(
            json.dumps({TOKENS_KEY: {"vault": {"token": TOKEN}}}),
            "attributes must be a JSON object of strings",
            id="nested-object-value",
        ),
        pytest.param('{"roleName": null}', "attributes must be a JSON object of strings", id="null-value"),
    ],
)
def test_bad_attributes(attributes: str, message: str) -> None:
    """attributes that are not a JSON object of strings fail at once, without quoting them."""
    assert error_of(attributes=attributes) == message


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        pytest.param("{", "secrets is not valid JSON", id="truncated"),
        pytest.param("[" + json.dumps(TOKEN) + "]", "secrets must be a JSON object of strings", id="list"),
        pytest.param(
            json.dumps({TOKENS_KEY: {"vault": TOKEN}}),
            "secrets must be a JSON object of strings",
            id="nested",
        ),
    ],
)
def test_bad_secrets(secrets: str, message: str) -> None:
    """secrets that are not a JSON object of strings fail at once, without quoting them."""
    assert error_of(secrets=secrets) == message


def test_object_problems_are_request_problems() -> None:
    """A problem in `objects` fails the request, naming the object."""
    assert error_of(objects="- {objectName: a, secretPath: p, method: DELETE}") == (
        "objects[0] \"a\": method 'DELETE' is not allowed; use GET to read, PUT or POST to issue"
    )


@pytest.mark.parametrize(
    ("remove", "changes"),
    [
        pytest.param(("objects",), {}, id="missing"),
        pytest.param((), {"objects": ""}, id="empty"),
    ],
)
def test_objects_required(remove: tuple[str, ...], changes: dict[str, str]) -> None:
    """`objects` is required and must list something."""
    assert error_of(remove=remove, **changes) == (
        "objects is empty: list at least one object with objectName and secretPath"
    )


def test_every_problem_reported_at_once() -> None:
    """All problems of the request come back in one InvalidRequest, in a stable order."""
    with pytest.raises(InvalidRequest) as caught:
        parse(
            remove=("roleName", "csi.storage.k8s.io/pod.uid"),
            permission="-1",
            target_path="",
            vaultAuthMountPath="a",
            vaultKubernetesMountPath="b",
            vaultSkipTLSVerify="maybe",
            vaultTLSClientKeyPath="/k",
            audience="nope",
            objects="- {objectName: /a, secretPath: p}",
        )
    assert caught.value.problems == [
        "missing pod attributes csi.storage.k8s.io/pod.uid: the CSIDriver must have podInfoOnMount: true",
        "target_path is empty",
        "roleName is required: the Vault role to log in with",
        "permission must be a JSON number between 0 and 511 (0777), such as 420",
        "set only one of vaultAuthMountPath and vaultKubernetesMountPath (they are aliases)",
        "vaultSkipTLSVerify 'maybe' is not a boolean (use true or false)",
        "vaultTLSClientCertPath and vaultTLSClientKeyPath must be set together",
        'no service-account token for audience "nope" (present: "vault"): ' + HOW_TO.format("nope"),
        "objects[0] \"/a\": objectName must be a relative path (it starts with '/')",
    ]
    assert TOKEN not in str(caught.value)
