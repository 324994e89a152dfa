"""Fuzzing the Mount request parser (`provider.spc.parse_mount_request`) with Hypothesis.

Properties, for any `attributes`, `objects` YAML, token and permission string:

- parsing raises nothing but InvalidRequest (which the servicer maps to INVALID_ARGUMENT);
- no message quotes a planted service-account token or a planted `secretArgs` value;
- every accepted objectName is a path the driver writes (`provider.driver.validate_payload_paths`),
  every accepted mode is within 0..0o777 and every accepted request targets `/v1/...`.

The runs are derandomized and use no example database, so CI sees the same examples every
time; FUZZ_EXAMPLES=<n> scales them up for a longer local run. Edge cases the fuzzing
found (characters YAML refuses, surrogate escapes, deep JSON nesting) are pinned at the end.
"""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import yaml
from fuzzing import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from provider.errors import InvalidRequest, ProviderError
from provider.mount.object_files import render_template
from provider.request.mount_request import MountConfig, parse_mount_request
from provider.request.objects import METHODS
from provider.tools.driver import validate_payload_paths

PLANTED_TOKEN = "eyJhbGciOiJQTEFOVEVEIn0.eyJzdWIiOiJmdXp6In0.planted-token-sig-51c0de"
PLANTED_SECRET = "planted-secret-arg-9f3b7e"
TOKENS_KEY = "csi.storage.k8s.io/serviceAccount.tokens"
TARGET = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets-store/mount"
BASE_ATTRIBUTES = {
    "csi.storage.k8s.io/pod.namespace": "team-a",
    "csi.storage.k8s.io/pod.name": "app-0",
    "csi.storage.k8s.io/pod.uid": "4b2f3c1e-0000-4000-8000-000000000001",
    "csi.storage.k8s.io/serviceAccount.name": "app",
    "csi.storage.k8s.io/ephemeral": "false",
    "secretProviderClass": "app-secrets",
    "roleName": "app",
    "objects": "- objectName: value\n  secretPath: secret/data/app\n  secretKey: value\n",
    TOKENS_KEY: json.dumps(
        {"vault": {"token": PLANTED_TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"}}
    ),
}
KNOWN_KEYS = sorted(
    {
        *BASE_ATTRIBUTES,
        "vaultAddress",
        "vaultNamespace",
        "vaultAuthMountPath",
        "vaultKubernetesMountPath",
        "vaultSkipTLSVerify",
        "vaultCACertPath",
        "vaultCADirectory",
        "vaultTLSServerName",
        "vaultTLSClientCertPath",
        "vaultTLSClientKeyPath",
        "audience",
    }
)
OBJECT_FIELDS = (
    "objectName",
    "secretPath",
    "secretKey",
    "method",
    "secretArgs",
    "encoding",
    "filePermission",
)


def any_text(max_size: int) -> st.SearchStrategy[str]:
    """Any characters (control characters included; lone surrogates come from JSON and YAML escapes)."""
    return st.text(st.characters(), max_size=max_size)


def check(attributes: str, secrets: str = "", permission: str = "420") -> MountConfig | None:
    """Parse; the config when accepted, None when refused. Any other exception fails the test."""
    try:
        config = parse_mount_request(attributes, secrets, TARGET, permission)
    except InvalidRequest as exc:
        refusal = exc
    else:
        check_accepted(config)
        return config
    check_refusal(refusal)
    return None


def check_refusal(refusal: InvalidRequest) -> None:
    """A refusal lists its problems and quotes no planted token or secret."""
    assert refusal.problems
    assert all(refusal.problems)
    assert PLANTED_TOKEN not in str(refusal)
    assert PLANTED_SECRET not in str(refusal)


def check_accepted(config: MountConfig) -> None:
    """An accepted request is one the driver can write and Vault can be asked, with secrets kept hidden."""
    names = [obj.name for obj in config.objects]
    assert names, "an accepted request has objects"
    assert len(set(names)) == len(names)
    validate_payload_paths(names)
    assert 0 <= config.default_mode <= 0o777
    for obj in config.objects:
        assert obj.file_mode is None or 0 < obj.file_mode <= 0o777
        assert obj.requests, "every object reads something"
        for request in obj.requests:
            assert request.method in METHODS
            assert request.path.startswith("/v1/")
            assert request.body is None or isinstance(json.loads(request.body), dict)
            assert PLANTED_SECRET not in request.describe()
        assert PLANTED_SECRET not in repr(obj)
    assert PLANTED_TOKEN not in repr(config)


def attributes_with(**changes: str | None) -> str:
    """The base attributes with keys replaced (a value) or removed (None), as the driver's JSON."""
    attributes = dict(BASE_ATTRIBUTES)
    for key, value in changes.items():
        if value is None:
            attributes.pop(key, None)
        else:
            attributes[key] = value
    return json.dumps(attributes)


def test_base_request_is_accepted() -> None:
    """The generators' starting point is a valid request, so accepted cases really are exercised."""
    config = check(json.dumps(BASE_ATTRIBUTES))
    assert config is not None
    assert config.jwt == PLANTED_TOKEN


# --- attributes ----------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text(20)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text(8), children, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    overrides=st.dictionaries(st.sampled_from(KNOWN_KEYS) | any_text(30), any_text(60), max_size=6),
    removed=st.sets(st.sampled_from(sorted(BASE_ATTRIBUTES)), max_size=3),
)
def test_fuzz_attribute_values(overrides: dict[str, str], removed: set[str]) -> None:
    """Known and random keys with any string values, some base keys gone: InvalidRequest or a sound config."""
    attributes = {key: value for key, value in BASE_ATTRIBUTES.items() if key not in removed}
    attributes.update(overrides)
    check(json.dumps(attributes))


@FUZZ
@given(document=json_values)
def test_fuzz_attributes_any_json(document: Any) -> None:
    """attributes as any JSON value (not only an object of strings): refused cleanly unless it is one."""
    check(json.dumps(document))


@FUZZ
@given(text=st.text(max_size=200))
def test_fuzz_attributes_raw_text(text: str) -> None:
    """attributes as arbitrary text: never anything but InvalidRequest."""
    check(text)


# --- objects: structured ------------------------------------------------------------------------

path_text = st.text(alphabet=string.ascii_letters[:6] + "./-_~ 0", max_size=20)
object_names = st.one_of(
    path_text,
    any_text(30),
    st.sampled_from(
        [
            "value",
            "a/b",
            "a",
            "..",
            "..data",
            "a/../b",
            "/abs",
            "a//b",
            "a/",
            "./a",
            ".",
            "a/.",
            "x" * 256,
            "é" * 130,
        ]
    ),
)
secret_paths = st.one_of(
    path_text,
    any_text(30),
    st.sampled_from(
        [
            "secret/data/app",
            "/v1/secret/data/app",
            "v1/kv/x",
            "https://evil.example/v1/x",
            "x/../y",
            "x?version=3",
            "x?a=1;b=2",
            "x?%zz",
            "x#frag",
            "/",
            "",
            "/v1//x",
        ]
    ),
)
methods = st.sampled_from(["GET", "get", "Put", "POST", "DELETE", "LIST", "PATCH", ""]) | any_text(8)
encodings = st.sampled_from(["utf-8", "UTF-8", "base64", "Hex", "latin1", ""]) | any_text(8)
permissions = st.one_of(
    st.integers(-10, 5000),
    st.sampled_from(
        ["0600", "0o600", "0x180", "384", "0777", "0o1000", "-1", "abc", "0b11", "1e3", "0", " 0644 "]
    ),
    any_text(8),
)
arg_values = st.recursive(
    st.sampled_from([PLANTED_SECRET, f"prefix {PLANTED_SECRET} suffix"])
    | st.floats()
    | st.integers()
    | st.booleans()
    | st.none(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text(6), children, max_size=3),
    max_leaves=8,
)
secret_args = st.one_of(
    st.dictionaries(any_text(10), arg_values, max_size=4),
    st.sampled_from([PLANTED_SECRET, [PLANTED_SECRET], 5]),
)


@st.composite
def secret_objects(draw: st.DrawFn) -> Any:
    """One entry of `objects`: usually a mapping with some fields (valid or not), sometimes not a mapping."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_scalars | st.lists(any_text(5), max_size=2))
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "objectName": object_names,
        "secretPath": secret_paths,
        "secretKey": any_text(12) | st.none() | st.integers(),
        "method": methods,
        "secretArgs": secret_args,
        "encoding": encodings,
        "filePermission": permissions,
    }
    chosen = draw(st.sets(st.sampled_from(OBJECT_FIELDS), max_size=len(OBJECT_FIELDS)))
    entry: dict[Any, Any] = {"objectName": draw(object_names), "secretPath": draw(secret_paths)}
    entry.update({field: draw(strategies[field]) for field in chosen})
    if draw(st.booleans()) and draw(st.booleans()):
        entry.update(draw(st.dictionaries(any_text(12), any_text(8), max_size=2)))
    return entry


objects_documents = st.one_of(
    st.lists(secret_objects(), min_size=1, max_size=5),
    st.lists(secret_objects(), max_size=0),
    json_values,
)


@FUZZ
@given(document=objects_documents, unicode=st.booleans())
def test_fuzz_objects_structured(document: Any, unicode: bool) -> None:
    """objects YAML written from generated entries: InvalidRequest or objects the driver can write."""
    text = yaml.safe_dump(document, allow_unicode=unicode)
    config = check(attributes_with(objects=text))
    if config is not None:
        assert [obj.name for obj in config.objects] == [entry["objectName"] for entry in document]


@FUZZ
@given(document=st.lists(secret_objects(), min_size=1, max_size=5), ascii=st.booleans())
def test_fuzz_objects_as_json(document: Any, ascii: bool) -> None:
    """objects written as JSON (which is YAML too): the same outcome rules."""
    check(attributes_with(objects=json.dumps(document, ensure_ascii=ascii)))


YAML_PIECES = st.sampled_from(
    [
        "- ",
        "  ",
        "\n",
        "objectName: ",
        "secretPath: ",
        "secretKey: ",
        "method: ",
        "encoding: ",
        "filePermission: ",
        "secretArgs: ",
        "a",
        "secret/data/app",
        "0600",
        "0o777",
        "0x1ff",
        ":",
        "{",
        "}",
        "[",
        "]",
        ",",
        '"',
        "'",
        "#",
        "&a ",
        "*a",
        "!!str ",
        "!!int ",
        "!!float ",
        "!!binary ",
        "!!map ",
        "!!python/object ",
        "!custom ",
        "<<: ",
        "---\n",
        "...\n",
        "|\n",
        ">-\n",
        "? ",
        "%YAML 1.1\n",
        "\t",
        "~",
        "null",
        "yes",
        "no",
        ".nan",
        "\\",
        "é",
    ]
)


@FUZZ
@given(pieces=st.lists(YAML_PIECES | any_text(40), max_size=40))
def test_fuzz_objects_yaml_like_text(pieces: list[str]) -> None:
    """Raw text built from YAML syntax pieces: InvalidRequest or a sound config, never a parser crash."""
    check(attributes_with(objects="".join(pieces)))


@FUZZ
@given(text=any_text(40))
def test_fuzz_objects_raw_text(text: str) -> None:
    """objects as arbitrary (printable) text: InvalidRequest or a sound config."""
    check(attributes_with(objects=text))


ARG_TAGS = ["", "!!str ", "!!int ", "!!float ", "!!bool ", "!!binary ", "!!timestamp ", "!!null ", "!!map ",
            "!!seq ", "!custom ", "&anchor ", "!!python/name:os.system ", "? "]  # fmt: skip
ARG_FORMS = [
    PLANTED_SECRET,
    f'"{PLANTED_SECRET}"',
    f"'{PLANTED_SECRET}'",
    f"[{PLANTED_SECRET}, {{x: {PLANTED_SECRET}}}]",
    f"{{{PLANTED_SECRET}: 1}}",
    f"|\n      {PLANTED_SECRET}",
    f'"{PLANTED_SECRET}\\q"',
    f"{PLANTED_SECRET}: {PLANTED_SECRET}: x",
    f"{PLANTED_SECRET} # {PLANTED_SECRET}",
]


@FUZZ
@given(tag=st.sampled_from(ARG_TAGS), form=st.sampled_from(ARG_FORMS), twice=st.booleans())
def test_fuzz_secret_args_values_never_shown(tag: str, form: str, twice: bool) -> None:
    """A secretArgs value under odd tags, anchors and broken syntax never appears in the error."""
    duplicate = f"\n    common_name: {tag}{form}" if twice else ""
    objects = (
        "- objectName: cert\n  secretPath: pki/issue/web\n  method: PUT\n  secretArgs:\n"
        f"    common_name: {tag}{form}{duplicate}\n"
    )
    check(attributes_with(objects=objects))


# --- tokens, secrets and permission -------------------------------------------------------------

token_texts = st.builds(lambda before, after: before + PLANTED_TOKEN + after, any_text(5), any_text(5))
token_entries = st.one_of(
    st.fixed_dictionaries({"token": token_texts}),
    st.fixed_dictionaries({"token": token_texts, "expirationTimestamp": any_text(25)}),
    st.fixed_dictionaries({"token": json_scalars}),
    token_texts,
    json_values,
)
token_documents = st.one_of(
    st.dictionaries(st.sampled_from(["vault", "custom", ""]) | any_text(8), token_entries, max_size=3),
    st.lists(token_texts, max_size=2),
    token_texts,
)


@FUZZ
@given(
    tokens=token_documents,
    raw=st.booleans(),
    audience=st.sampled_from([None, "vault", "custom", ""]) | any_text(8),
    in_secrets=st.booleans(),
)
def test_fuzz_service_account_tokens(tokens: Any, raw: bool, audience: str | None, in_secrets: bool) -> None:
    """serviceAccount.tokens of any shape, in attributes or secrets: the token is never quoted in an error."""
    value = tokens if raw and isinstance(tokens, str) else json.dumps(tokens)
    changes: dict[str, str | None] = {"audience": audience, TOKENS_KEY: None if in_secrets else value}
    secrets = json.dumps({TOKENS_KEY: value}) if in_secrets else ""
    config = check(attributes_with(**changes), secrets)
    if config is not None:
        # A token the document holds: the planted one, or a plain string (`{"token": "0"}`).
        assert config.jwt in strings_in(tokens if raw and isinstance(tokens, str) else json.loads(value))


def strings_in(document: Any) -> set[str]:
    """Every string a JSON document holds, keys and values, at any depth; the document if a string."""
    if isinstance(document, str):
        return {document}
    if isinstance(document, dict):
        return set(document) | {text for item in document.values() for text in strings_in(item)}
    if isinstance(document, list):
        return {text for item in document for text in strings_in(item)}
    return set()


@FUZZ
@given(secrets=st.one_of(any_text(40), json_values.map(json.dumps), st.just("null")))
def test_fuzz_secrets_field(secrets: str) -> None:
    """The `secrets` field as anything (the driver may send the literal null): refused or ignored, cleanly."""
    check(json.dumps(BASE_ATTRIBUTES), secrets)


@FUZZ
@given(
    permission=st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats().map(str),
        st.sampled_from(
            ["420", "0644", "0o644", "0x1a4", "4.2e2", "true", "null", '"420"', "[420]", "", " 420 "]
        ),
        any_text(12),
    )
)
def test_fuzz_permission(permission: str) -> None:
    """The permission field: a JSON number 0..511 is the default mode; anything else is refused cleanly."""
    config = check(json.dumps(BASE_ATTRIBUTES), "", permission)
    if config is not None:
        number = json.loads(permission)
        assert isinstance(number, int)
        assert not isinstance(number, bool)
        assert config.default_mode == number


@FUZZ
@given(mode=st.integers(-1000, 5000), form=st.sampled_from(["{:d}", "0{:o}", "0o{:o}", "0x{:x}", "'{:d}'"]))
def test_fuzz_file_permission_numbers(mode: int, form: str) -> None:
    """filePermission in every notation: accepted exactly when 1..0o777 (0 is the default), else refused."""
    text = form.format(mode) if mode >= 0 else str(mode)
    objects = f"- objectName: value\n  secretPath: secret/data/app\n  filePermission: {text}\n"
    config = check(attributes_with(objects=objects))
    assert (config is not None) == (0 <= mode <= 0o777)
    if config is not None:
        assert config.objects[0].file_mode == (mode or None)


# --- Edge cases the fuzzing found, pinned ---------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "character"),
    [
        pytest.param("- objectName: a\x07\n  secretPath: x\n", "U+0007", id="c0-control"),
        pytest.param("- objectName: a\n  secretPath: x\x9f\n", "U+009F", id="c1-control"),
        pytest.param("- objectName: a\n  secretPath: x\ufffe\n", "U+FFFE", id="non-character"),
    ],
)
def test_characters_yaml_refuses(objects: str, character: str) -> None:
    """A character PyYAML's reader refuses is INVALID_ARGUMENT about objects, naming the character."""
    with pytest.raises(InvalidRequest) as caught:
        parse_mount_request(attributes_with(objects=objects), "", TARGET, "420")
    assert str(caught.value).startswith("objects is not valid YAML: ")
    assert character in str(caught.value)


@pytest.mark.parametrize(
    ("objects", "name"),
    [
        pytest.param('- objectName: "a\\ud800"\n  secretPath: x\n', "a\ufffd", id="lone-surrogate-escape"),
        pytest.param(
            json.dumps([{"objectName": "\U0001f600", "secretPath": "x"}]),
            "\U0001f600",
            id="surrogate-pair-escapes",
        ),
    ],
)
def test_surrogate_escapes_become_text(objects: str, name: str) -> None:
    """YAML \\u escapes of surrogates: a pair joins into one character, a lone half is U+FFFD (as in Go)."""
    config = check(attributes_with(objects=objects))
    assert config is not None
    assert config.objects[0].name == name


@pytest.mark.parametrize(
    ("attributes", "secrets", "permission"),
    [
        pytest.param("[" * 5000 + "]" * 5000, "", "420", id="attributes"),
        pytest.param(json.dumps(BASE_ATTRIBUTES), "[" * 5000, "420", id="secrets"),
        pytest.param(json.dumps(BASE_ATTRIBUTES), "", "[" * 5000, id="permission"),
        pytest.param(attributes_with(**{TOKENS_KEY: "[" * 5000}), "", "420", id="service-account-tokens"),
    ],
)
def test_deeply_nested_json_is_refused(attributes: str, secrets: str, permission: str) -> None:
    """JSON nested 5000 deep in any request field is INVALID_ARGUMENT, not a RecursionError."""
    with pytest.raises(InvalidRequest):
        parse_mount_request(attributes, secrets, TARGET, permission)


def test_nan_secret_args_are_refused_by_key() -> None:
    """Control case for the generators: non-finite numbers in secretArgs are refused naming the key only."""
    objects = (
        "- objectName: a\n  secretPath: x\n  secretArgs:\n    ttl: .nan\n    cn: " + PLANTED_SECRET + "\n"
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_mount_request(attributes_with(objects=objects), "", TARGET, "420")
    assert str(caught.value) == 'objects[0] "a": secretArgs ttl must be finite numbers'


TEMPLATE_PIECES = st.sampled_from(
    [
        "{{", "}}", "{{- ", " -}}", "{{ end }}", "{{ else }}", 'with secret "secret/data/a"',
        'secret "pki/issue/web" "common_name=x"', 'secret "a" "b"', "secret", ".Data.data.x", ".Data",
        ".Data.data", "range $k, $v := ", "if ", "$k", "$v", "$x := ", " | ", "(", ")", '"', "printf \"%s\" ",
        'index . "x"', "toJSON", "toYAML", "base64Decode", "len", "and", "or", "not", " ", "\n", "x", "-3",
        "/* c */", "`raw`", "'a'", "nil", "true", "1.5e3",
    ]
)  # fmt: skip
TEMPLATE_ACTIONS = st.sampled_from(
    [
        "{{ .Data.data.x }}", "{{ .Data.data.y }}", '{{ index .Data.data "q" }}', "{{ .Data.data.missing }}",
        "{{ .Data.data.x | base64Decode }}", "{{ range $k, $v := .Data.data }}{{ $k }}={{ $v }}{{ end }}",
        "{{ toJSON .Data }}", "{{ toYAML .Data.data }}", '{{ printf "%d|%v" .Data.data.x .Data.data.y }}',
        "{{ .Data.data.x | toUpper | trimSpace }}", "{{ if .Data.data.y }}y{{ else }}n{{ end }}",
        '{{ split "-" .Data.data.x | join "+" }}', "{{ len .Data.data.x }}", "{{ .Data.data.x.z }}",
        "{{ range .Data.data.y }}{{ . }}{{ end }}", "{{ .LeaseID }}{{ .Renewable }}",
    ]
)  # fmt: skip
RENDERED: list[str] = []  # what each accepted template rendered to, for the coverage check below
TEMPLATE_ANSWER = {"data": {"data": {"x": PLANTED_SECRET, "y": [1, {"z": None}]}, "metadata": {}}}


@FUZZ
@given(
    wrapped=st.booleans(),
    pieces=st.lists(TEMPLATE_ACTIONS | TEMPLATE_PIECES | any_text(8), max_size=30),
)
def test_fuzz_templates(wrapped: bool, pieces: list[str]) -> None:
    """Any template: refused with problems, or planned and rendered to bytes or a ProviderError.

    Half are pieces inside a `with secret` block, so many parse and reach rendering, which
    runs over an answer holding a planted value that no error may quote.
    """
    body = "".join(pieces)
    template = f'{{{{ with secret "secret/data/a" }}}}{body}{{{{ end }}}}' if wrapped else body
    config = check(attributes_with(objects=json.dumps([{"objectName": "t", "template": template}])))
    if config is None:
        return
    (obj,) = config.objects
    assert obj.template is not None
    payloads = {request: TEMPLATE_ANSWER for request in obj.requests}
    outcome: bytes | ProviderError
    try:
        outcome = render_template("t", obj.template, payloads, max_output=4096)
    except ProviderError as exc:
        outcome = exc
    assert isinstance(outcome, bytes) or PLANTED_SECRET not in str(outcome)
    RENDERED.append(type(outcome).__name__)


def test_fuzz_templates_reached_rendering() -> None:
    """The template fuzzing is not vacuous: some templates were accepted, rendered, and failed."""
    if not RENDERED:
        pytest.skip("runs after test_fuzz_templates in the same session")
    assert "bytes" in RENDERED
    assert len(set(RENDERED)) > 1, RENDERED
