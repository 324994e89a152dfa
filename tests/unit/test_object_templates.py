"""`template:` objects: planned into Vault requests when parsed, rendered from the answers."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from provider.errors import InvalidRequest, SecretNotFound, VaultUnavailable
from provider.mount.object_files import render_template
from provider.render import gojson
from provider.request.objects import SecretObject, VaultRequest, parse_objects


def objects_of(text: str) -> tuple[tuple[SecretObject, ...], list[str]]:
    return parse_objects(textwrap.dedent(text).lstrip())


def template_objects(template: str, **fields: str) -> tuple[tuple[SecretObject, ...], list[str]]:
    extra = "".join(f"  {key}: {value}\n" for key, value in fields.items())
    return parse_objects(f"- objectName: cfg\n{extra}  template: |\n{textwrap.indent(template, '    ')}\n")


def one(template: str, **fields: str) -> SecretObject:
    objects, problems = template_objects(template, **fields)
    assert problems == []
    (obj,) = objects
    return obj


def problems_of(template: str, **fields: str) -> list[str]:
    objects, problems = template_objects(template, **fields)
    assert objects == ()
    return problems


def test_secret_calls_become_the_objects_requests_in_order_once_each() -> None:
    """Each distinct call is one request; arguments make a PUT with a JSON body; queries are kept."""
    obj = one(
        '{{ with secret "secret/data/a" }}{{ .Data.data.x }}{{ end }}\n'
        '{{ with secret "/v1/pki/issue/web" "common_name=a.test" "ttl=1h" }}{{ .Data.certificate }}'
        "{{ end }}\n"
        '{{ with secret "pki/issue/web" "ttl=1h" "common_name=a.test" }}{{ .Data.private_key }}{{ end }}\n'
        '{{ with secret "secret/data/a?version=2" }}{{ end }}{{ with secret "secret/data/a" }}{{ end }}'
    )
    assert obj.requests == (
        VaultRequest("GET", "/v1/secret/data/a"),
        VaultRequest("PUT", "/v1/pki/issue/web", (), '{"common_name":"a.test","ttl":"1h"}'),
        VaultRequest("GET", "/v1/secret/data/a", (("version", "2"),)),
    )
    assert (obj.secret_key, obj.format, obj.encoding, obj.file_mode) == (None, "", "utf-8", None)


def test_pki_cert_is_always_a_write_and_shares_secrets_issuance() -> None:
    """pkiCert issues even without arguments; with the same arguments it is secret's very request."""
    obj = one(
        '{{ with pkiCert "pki/issue/web" }}{{ .Cert }}{{ end }}'
        '{{ with pkiCert "pki/issue/web" "common_name=a" }}{{ .Key }}{{ end }}'
        '{{ with secret "pki/issue/web" "common_name=a" }}{{ .Data.certificate }}{{ end }}'
        '{{ with secret "pki/issue/web" }}{{ end }}'
    )
    assert obj.requests == (
        VaultRequest("PUT", "/v1/pki/issue/web"),
        VaultRequest("PUT", "/v1/pki/issue/web", (), '{"common_name":"a"}'),
        VaultRequest("GET", "/v1/pki/issue/web"),
    )


def test_a_template_and_a_plain_object_make_the_same_request() -> None:
    """So the Mount sends it once: one database credential, one certificate for both."""
    objects, problems = objects_of("""
        - objectName: url
          template: '{{ with secret "database/creds/app" }}{{ .Data.username }}{{ end }}'
        - objectName: username
          secretPath: database/creds/app
          secretKey: username
        - objectName: cert
          template: '{{ with secret "pki/issue/web" "common_name=a" }}{{ .Data.certificate }}{{ end }}'
        - objectName: key
          secretPath: pki/issue/web
          method: PUT
          secretArgs: {common_name: a}
          secretKey: private_key
    """)
    assert problems == []
    url, username, cert, key = objects
    assert url.requests == username.requests
    assert cert.requests == key.requests


@pytest.mark.parametrize(
    ("template", "fields", "problem"),
    [
        pytest.param(
            '{{ with secret "secret/data/a" }}{{ end }}',
            {"secretPath": "secret/data/a", "secretKey": "x"},
            "a template names its own reads; remove secretPath, secretKey",
            id="with-secret-path",
        ),
        pytest.param(
            '{{ with secret "secret/data/a" }}{{ end }}',
            {"format": "files"},
            "a template names its own reads; remove format",
            id="with-format",
        ),
        pytest.param("plain text", {}, "template reads no secret; read one with", id="no-secret"),
        pytest.param(
            '{{ with secret "a" }}\n  {{ .Data.x }\n{{ end }}',
            {},
            "template line 2, column 14: unexpected '}' in action",
            id="syntax",
        ),
        pytest.param(
            '{{ $p := "secret/data/a" }}{{ with secret $p }}{{ end }}',
            {},
            "template line 1, column 36: secret's path and arguments must be quoted strings",
            id="variable-path",
        ),
        pytest.param(
            '{{ "secret/data/a" | secret }}',
            {},
            "template line 1, column 22: secret must start its pipeline",
            id="piped-path",
        ),
        pytest.param(
            "{{ index (secret) 0 }}", {}, "template line 1, column 11: secret needs a path", id="no-path"
        ),
        pytest.param(
            '{{ if true }}{{ else }}{{ with secret "pki/issue/web" "ttl" }}{{ end }}{{ end }}',
            {},
            "template line 1, column 32: secret: argument 'ttl' must be key=value",
            id="argument-without-equals",
        ),
        pytest.param(
            '{{ with secret "https://evil.example/v1/x" }}{{ end }}',
            {},
            "template line 1, column 9: the path must be a path inside Vault (like secret/data/app), "
            "not a URL",
            id="url",
        ),
        pytest.param(
            '{{ with secret "secret/data/a" }}{{ end }}',
            {"encoding": "rot13"},
            "encoding 'rot13' is not one of utf-8, base64, hex",
            id="encoding",
        ),
    ],
)
def test_bad_template_objects(template: str, fields: dict[str, str], problem: str) -> None:
    """Every problem names the object, and template problems the line and column."""
    (found,) = problems_of(template, **fields)
    assert found.startswith(f'objects[0] "cfg": {problem}')


def test_empty_template_is_refused() -> None:
    objects, problems = objects_of("""
        - objectName: cfg
          template: ""
    """)
    assert (objects, problems) == ((), ['objects[0] "cfg": template is empty'])


def test_fingerprint_covers_the_template_text() -> None:
    """The version's HMAC input changes with the template, so a new template is a new version."""
    first = one('{{ with secret "secret/data/a" }}{{ .Data.data.x }}{{ end }}')
    second = one('{{ with secret "secret/data/a" }}{{ .Data.data.y }}{{ end }}')
    assert first.fingerprint != second.fingerprint
    assert gojson.loads(first.fingerprint)["template"].startswith('{{ with secret "secret/data/a" }}')


KV2: dict[str, Any] = {"data": {"data": {"user": "app", "blob": "AAH/"}, "metadata": {"version": 1}}}


def render(obj: SecretObject, payload: Any, max_output: int = 1 << 20) -> bytes:
    assert obj.template is not None
    return render_template(obj.name, obj.template, {obj.request: payload}, max_output)


def test_render_reads_only_the_answers_given() -> None:
    obj = one('{{ with secret "secret/data/a" }}user={{ .Data.data.user }}{{ end }}')
    assert render(obj, KV2) == b"user=app\n"


def test_binary_values_survive_rendering() -> None:
    """base64Decode of non-UTF-8 bytes writes those bytes, as Agent writes them."""
    obj = one('{{ with secret "secret/data/a" }}{{ .Data.data.blob | base64Decode }}{{ end -}}')
    assert render(obj, KV2) == b"\x00\x01\xff"


def test_missing_key_is_not_found_with_the_position() -> None:
    obj = one('{{ with secret "secret/data/a" }}\n{{ .Data.data.usr }}{{ end }}')
    with pytest.raises(SecretNotFound) as caught:
        render(obj, KV2)
    assert str(caught.value) == 'template line 2, column 1: map has no entry for key "usr"'


def test_other_render_errors_are_invalid_requests() -> None:
    obj = one('{{ with secret "secret/data/a" }}{{ .Data.data.user | base64Decode }}{{ end }}')
    with pytest.raises(InvalidRequest) as caught:
        render(obj, KV2)
    assert str(caught.value) == (
        "template line 1, column 34: error calling base64Decode: illegal base64 data"
    )
    assert "app" not in str(caught.value)


def test_output_is_bounded() -> None:
    obj = one('{{ with secret "secret/data/a" }}{{ .Data.data.user }}{{ end }}')
    with pytest.raises(InvalidRequest, match="template output exceeds 2 bytes"):
        render(obj, KV2, max_output=2)


def test_an_empty_answer_is_reported_as_vaults() -> None:
    obj = one('{{ with secret "secret/data/a" }}{{ end }}')
    with pytest.raises(VaultUnavailable, match="Vault answered GET /v1/secret/data/a with an empty body"):
        render(obj, None)
