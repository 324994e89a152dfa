"""The Agent-style template engine: syntax, functions, errors and the common Agent Injector templates.

Expected outputs are written by hand from Go text/template and consul-template semantics.
"""

from __future__ import annotations

from typing import Any

import pytest

from provider.render.gojson import JsonNumber
from provider.render.templates import Limits, SecretCall, TemplateError, parse, render

KV2 = {
    "request_id": "r-1",
    "lease_id": "",
    "lease_duration": 0,
    "renewable": False,
    "data": {
        "data": {"username": "app", "password": "s3cr<t>&", "port": JsonNumber("5432")},
        "metadata": {"version": 3},
    },
}
DB = {
    "lease_id": "database/creds/app/abc",
    "lease_duration": 3600,
    "renewable": True,
    "data": {"username": "v-app-x1", "password": "A1a-pass"},
}
PKI = {
    "lease_id": "",
    "lease_duration": 0,
    "renewable": False,
    "data": {
        "certificate": "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----",
        "ca_chain": [
            "-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----",
            "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----",
        ],
        "private_key": "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----",
    },
}
RESPONSES = {
    "secret/data/app": KV2,
    "database/creds/app": DB,
    "pki/issue/web": PKI,
    "kv/app": {"data": {"a": "1"}},
}


class Vault:
    """A fetch callback answering from RESPONSES and recording every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, str]]] = []

    def __call__(self, read: SecretCall) -> dict[str, Any]:
        self.calls.append((read.path, dict(read.arguments)))
        return RESPONSES[read.path]


def run(source: str, data: Any = None, limits: Limits | None = None) -> str:
    return render("tpl", source, Vault(), data, limits)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("{{ .a", "line 1, column 1: unclosed action", id="unclosed-action"),
        pytest.param("x\n  {{ if .a }}", "line 2, column 3: {{if}} has no matching {{end}}", id="no-end"),
        pytest.param("{{ end }}", "line 1, column 4: unexpected {{end}}", id="stray-end"),
        pytest.param("{{ else }}", "line 1, column 4: unexpected {{else}}", id="stray-else"),
        pytest.param("{{ if }}{{ end }}", "line 1, column 7: missing value for if", id="empty-if"),
        pytest.param("{{ }}", "line 1, column 4: missing value for command", id="empty-action"),
        pytest.param('{{ env "HOME" }}', "line 1, column 4: function 'env' not defined", id="no-env"),
        pytest.param('{{ file "/etc/passwd" }}', "function 'file' not defined", id="no-file"),
        pytest.param("{{ $x }}", "line 1, column 4: undefined variable '$x'", id="undefined-variable"),
        pytest.param('{{ "a }}', "line 1, column 4: unterminated quoted string", id="unterminated-string"),
        pytest.param('{{ "\\q" }}', "line 1, column 5: unknown escape \\q in string", id="bad-escape"),
        pytest.param("{{ .a | }}", "line 1, column 9: missing value for command", id="empty-stage"),
        pytest.param(
            "{{ (.a }}", 'line 1, column 8: unexpected "}}" in parenthesized pipeline', id="unclosed-paren"
        ),
        pytest.param("{{ .a# }}", "line 1, column 6: unexpected '#' in action", id="bad-character"),
        pytest.param('{{ define "x" }}', "line 1, column 4: {{ define }} is not supported", id="define"),
        pytest.param(
            "{{/* c */ x }}", "line 1, column 1: comment ends before closing delimiter", id="comment"
        ),
        pytest.param("{{ 1x }}", "line 1, column 4: bad number syntax: '1x'", id="bad-number"),
        pytest.param(
            "{{ " + "(" * 101 + "1" + ")" * 101 + " }}", "nested more than 100 levels", id="deep-parens"
        ),
        pytest.param("{{ if 1 }}" * 101, "column 1001: nested more than 100 levels", id="deep-branches"),
    ],
)
def test_parse_errors_name_line_and_column(source: str, message: str) -> None:
    """A template that cannot be parsed is rejected with the template name, line and column."""
    with pytest.raises(TemplateError, match=r"^template 'tpl': ") as caught:
        parse("tpl", source)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('a {{- " b " -}} c', "a b c", id="both-sides"),
        pytest.param("a\n\t {{- 1 }}\n", "a1\n", id="left-only"),
        pytest.param("a {{ 1 -}} \n\n b", "a 1b", id="right-only"),
        pytest.param("{{-3}}", "-3", id="dash-without-space-is-a-number"),
        pytest.param("a {{- /* note */ -}} b", "ab", id="trimmed-comment"),
        pytest.param("x{{/* note */}}y", "xy", id="comment"),
    ],
)
def test_trimming(source: str, expected: str) -> None:
    """`{{-` and `-}}` remove the whitespace beside the action, and only with a space after the dash."""
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param("{{ . }}", "raw", "raw", id="string-raw"),
        pytest.param("{{ . }}", 42, "42", id="int"),
        pytest.param("{{ . }}", 1.5, "1.5", id="float"),
        pytest.param("{{ . }}", 1e6, "1e+06", id="float-exponent"),
        pytest.param("{{ . }}", True, "true", id="bool"),
        pytest.param("{{ . }}", {"b": 1, "a": [1, "x"]}, "map[a:[1 x] b:1]", id="map-sorted"),
        pytest.param("{{ .a.b.c }}", {"a": {"b": {"c": "deep"}}}, "deep", id="field-chain"),
        pytest.param(
            "{{ $.a }}{{ with .b }}{{ $.a }}{{ . }}{{ end }}", {"a": "A", "b": "B"}, "AAB", id="root"
        ),
        pytest.param('{{ (index . "k-1").x }}', {"k-1": {"x": "y"}}, "y", id="chain-on-parens"),
        pytest.param('{{ index . "a" 1 }}', {"a": ["p", "q"]}, "q", id="index-nested"),
        pytest.param('{{ $x := .a }}{{ $x }}{{ $x = "B" }}{{ $x }}', {"a": "A"}, "AB", id="variables"),
        pytest.param(
            "{{ if .a }}y{{ else if .b }}b{{ else }}n{{ end }}", {"a": 0, "b": "x"}, "b", id="else-if"
        ),
        pytest.param("{{ if .a }}y{{ else }}n{{ end }}", {"a": []}, "n", id="empty-list-false"),
        pytest.param("{{ with .a }}{{ . }}{{ else }}none{{ end }}", {"a": ""}, "none", id="with-else"),
        pytest.param(
            "{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}", {"b": 2, "a": 1}, "a=1;b=2;", id="range-map"
        ),
        pytest.param(
            "{{ range $i, $v := . }}{{ $i }}:{{ $v }} {{ end }}", ["x", "y"], "0:x 1:y ", id="range-list"
        ),
        pytest.param("{{ range $v := . }}{{ $v }}{{ end }}", {"b": 2, "a": 1}, "12", id="range-one-variable"),
        pytest.param("{{ range . }}{{ . }}{{ else }}empty{{ end }}", [], "empty", id="range-else"),
        pytest.param("{{ range .a }}x{{ end }}", {"a": None}, "", id="range-nil"),
        pytest.param('{{ . | toUpper | printf "<%s>" }}', "a", "<A>", id="pipeline"),
        pytest.param('{{ and 1 "" 2 }}|{{ or 0 "" "z" }}', None, "|z", id="and-or"),
        pytest.param("{{ or .a .missing }}", {"a": "short"}, "short", id="or-short-circuits"),
    ],
)
def test_syntax(source: str, data: Any, expected: str) -> None:
    """Actions print values as Go's text/template does and control structures follow its rules."""
    assert run(source, data) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('{{ "aGVsbG8=" | base64Decode }}', "hello", id="base64Decode"),
        pytest.param('{{ "aGVs\\nbG8=" | base64Decode }}', "hello", id="base64Decode-newlines"),
        pytest.param('{{ "hello" | base64Encode }}', "aGVsbG8=", id="base64Encode"),
        pytest.param('{{ "  x \\n" | trimSpace }}', "x", id="trimSpace"),
        pytest.param('{{ split "," " a,b " }}', "[a b]", id="split"),
        pytest.param('{{ split "," "" | len }}', "0", id="split-empty"),
        pytest.param('{{ split "," "a,b" | join ";" }}', "a;b", id="join"),
        pytest.param('{{ "a-b-c" | replaceAll "-" "_" }}', "a_b_c", id="replaceAll"),
        pytest.param('{{ "ÄbC" | toLower }} {{ "straße" | toUpper }}', "äbc STRAßE", id="case"),
        pytest.param('{{ "prod,web" | split "," | contains "web" }}', "true", id="contains-list"),
        pytest.param('{{ "production" | contains "prod" }}', "true", id="contains-string"),
        pytest.param('{{ eq 1 2 1 }} {{ ne 1 2 }} {{ eq "a" "a" }}', "true true true", id="eq-ne"),
        pytest.param(
            '{{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge "b" "a" }}', "true true false true", id="order"
        ),
        pytest.param('{{ not "" }} {{ not 1 }}', "true false", id="not"),
        pytest.param('{{ len "héllo" }}', "6", id="len-bytes"),
        pytest.param(
            '{{ printf "%s|%d|%v|%q|%%" "a" 5 true "q\\"\\n" }}', 'a|5|true|"q\\"\\n"|%', id="printf"
        ),
        pytest.param('{{ printf "%d %s" "x" }}', "%!d(string=x) %!s(MISSING)", id="printf-bad"),
        pytest.param('{{ printf "%s" "a" "b" }}', "a%!(EXTRA string=b)", id="printf-extra"),
    ],
)
def test_functions(source: str, expected: str) -> None:
    """Each function behaves as consul-template's Go implementation does."""
    assert run(source) == expected


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param(
            "{{ toJSON . }}",
            {"b": "<&>", "a": [1, None, True]},
            '{"a":[1,null,true],"b":"\\u003c\\u0026\\u003e"}',
            id="toJSON",
        ),
        pytest.param(
            "{{ toJSONPretty . }}",
            {"b": {"c": []}, "a": [1, {}]},
            '{\n  "a": [\n    1,\n    {}\n  ],\n  "b": {\n    "c": []\n  }\n}',
            id="toJSONPretty",
        ),
        pytest.param(
            "{{ toYAML . }}",
            {"b": "true", "a": ["x", 1], "c": "", "d": "a: b", "e": {"f": "l1\nl2"}},
            'a:\n- x\n- 1\nb: "true"\nc: ""\nd: \'a: b\'\ne:\n  f: |-\n    l1\n    l2',
            id="toYAML",
        ),
    ],
)
def test_encoders(source: str, data: Any, expected: str) -> None:
    """toJSON is json.Marshal, toJSONPretty MarshalIndent with two spaces, toYAML yaml.v2; all trimmed."""
    assert run(source, data) == expected


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        pytest.param(
            "a\n {{ .Data.pasword }}",
            {"Data": {}},
            'line 2, column 2: map has no entry for key "pasword"',
            id="missing-key",
        ),
        pytest.param(
            "{{ .a.b }}", {"a": "text"}, "can't evaluate field b in type string", id="field-of-string"
        ),
        pytest.param("{{ .a.b }}", {"a": None}, "nil pointer evaluating interface {}.b", id="field-of-nil"),
        pytest.param("{{ . 1 }}", {}, "can't give argument to non-function", id="argument-to-value"),
        pytest.param(
            '{{ base64Decode "!!" }}', None, "error calling base64Decode: illegal base64 data", id="base64"
        ),
        pytest.param(
            "{{ toJSONPretty . }}",
            [1],
            "expected map[string]interface {}; got []interface {}",
            id="pretty-list",
        ),
        pytest.param("{{ toYAML . }}", "s", "expected map[string]interface {}; got string", id="yaml-string"),
        pytest.param(
            '{{ eq 1 "1" }}', None, "incompatible types for comparison: int and string", id="eq-types"
        ),
        pytest.param("{{ index . 5 }}", [1], "error calling index: index out of range: 5", id="index-range"),
        pytest.param('{{ split "," }}', None, "wrong number of args for split: want 2 got 1", id="arity"),
        pytest.param(
            "{{ range . }}{{ end }}",
            "abc",
            "range can't iterate over a value of type string",
            id="range-string",
        ),
        pytest.param("{{ trimSpace 1 }}", None, "expected string; got int", id="wrong-type"),
        # Go prints "<no value>"; a file with those words in place of a secret is worse than an error.
        pytest.param("{{ .a }}", {"a": None}, "line 1, column 1: nothing to print", id="null"),
        pytest.param(
            'x\n {{ index . "b" }}', {"a": 1}, "line 2, column 2: nothing to print", id="index-missing"
        ),
    ],
)
def test_render_errors(source: str, data: Any, message: str) -> None:
    """Rendering fails with the action's line and column, and never shows a secret value."""
    with pytest.raises(TemplateError) as caught:
        run(source, data)
    assert message in str(caught.value)


def test_missing_key_in_a_secret_names_the_action() -> None:
    """A key missing from a secret's data is an error at the action, not `<no value>`."""
    source = '{{ with secret "secret/data/app" }}\n  {{ .Data.data.pasword }}\n{{ end }}'
    with pytest.raises(TemplateError) as caught:
        run(source)
    assert str(caught.value) == "template 'tpl': line 2, column 3: map has no entry for key \"pasword\""
    assert "s3cr" not in str(caught.value)


def test_limits_bound_output_and_steps() -> None:
    """Output size and evaluation steps are bounded, so a template cannot loop or grow without end."""
    with pytest.raises(TemplateError, match="output exceeds 10 bytes"):
        run("{{ range . }}abcdef{{ end }}", [1, 2], Limits(max_output=10))
    with pytest.raises(TemplateError, match="more than 50 evaluation steps"):
        run("{{ range . }}{{ range . }}{{ end }}{{ end }}", [list(range(10))] * 10, Limits(max_steps=50))


def test_secret_with_arguments_passes_them_as_a_dict() -> None:
    """`secret "path" "k=v"` hands the arguments to fetch as a dict (the caller issues a write)."""
    vault = Vault()
    source = (
        '{{ with secret "pki/issue/web" "common_name=a.example.com" "ttl=24h" }}'
        "{{ .Data.private_key }}{{ end }}"
    )
    assert render("tpl", source, vault).endswith("END RSA PRIVATE KEY-----")
    assert vault.calls == [("pki/issue/web", {"common_name": "a.example.com", "ttl": "24h"})]


def test_bad_secret_argument() -> None:
    """An argument without `=` is rejected before anything is fetched."""
    vault = Vault()
    with pytest.raises(TemplateError, match="secret: argument 'ttl' must be key=value"):
        render("tpl", '{{ secret "pki/issue/web" "ttl" }}', vault)
    assert vault.calls == []


def test_identical_secret_calls_fetch_once_per_render() -> None:
    """The same path and arguments are fetched once in a render (a cert and its key from one issuance)."""
    vault = Vault()
    source = (
        '{{ with secret "pki/issue/web" "common_name=a" }}{{ .Data.certificate }}{{ end }}\n'
        '{{ with secret "pki/issue/web" "common_name=a" }}{{ .Data.private_key }}{{ end }}\n'
        '{{ with secret "pki/issue/web" "common_name=b" }}{{ end }}'
    )
    render("tpl", source, vault)
    assert vault.calls == [("pki/issue/web", {"common_name": "a"}), ("pki/issue/web", {"common_name": "b"})]
    render("tpl", source, vault)
    assert len(vault.calls) == 4


def test_envelope_fields() -> None:
    """A secret exposes the envelope as consul-template's Secret: LeaseID, LeaseDuration, Renewable, Data."""
    source = (
        '{{ with secret "database/creds/app" }}{{ .LeaseID }} {{ .LeaseDuration }} {{ .Renewable }}{{ end }}'
    )
    assert run(source) == "database/creds/app/abc 3600 true"
    with pytest.raises(TemplateError, match=r"can't evaluate field Lease in type \*dependency.Secret"):
        run('{{ with secret "database/creds/app" }}{{ .Lease }}{{ end }}')


AGENT_TEMPLATES = [
    pytest.param(
        """{{- with secret "secret/data/app" -}}
export USER="{{ .Data.data.username }}"
export PASSWORD="{{ .Data.data.password }}"
{{- end }}
""",
        'export USER="app"\nexport PASSWORD="s3cr<t>&"\n',
        id="dotenv",
    ),
    pytest.param(
        '{{ with secret "secret/data/app" }}{{ .Data.data | toJSON }}{{ end }}',
        '{"password":"s3cr\\u003ct\\u003e\\u0026","port":5432,"username":"app"}',
        id="json-config",
    ),
    pytest.param(
        """{{- with secret "secret/data/app" -}}
spring:
  datasource:
    url: jdbc:postgresql://db:{{ .Data.data.port }}/app
    username: {{ .Data.data.username }}
    password: {{ .Data.data.password }}
{{ end -}}
""",
        "spring:\n  datasource:\n    url: jdbc:postgresql://db:5432/app\n"
        "    username: app\n    password: s3cr<t>&\n",
        id="spring-yaml",
    ),
    pytest.param(
        """{{- with secret "secret/data/app" }}
{{- range $key, $value := .Data.data }}
{{ $key }}={{ $value }}
{{- end }}
{{ end -}}
""",
        "\npassword=s3cr<t>&\nport=5432\nusername=app\n",
        id="java-properties",
    ),
    pytest.param(
        """{{- with secret "pki/issue/web" "common_name=web.example.com" -}}
{{ .Data.certificate }}
{{ range .Data.ca_chain }}{{ . }}
{{ end }}{{ end -}}
""",
        "-----BEGIN CERTIFICATE-----\nLEAF\n-----END CERTIFICATE-----\n"
        "-----BEGIN CERTIFICATE-----\nINT\n-----END CERTIFICATE-----\n"
        "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n",
        id="pki-cert-chain",
    ),
    pytest.param(
        """{{- with secret "database/creds/app" -}}
postgresql://{{ .Data.username }}:{{ .Data.password }}@postgres:5432/app
{{- end }}
""",
        "postgresql://v-app-x1:A1a-pass@postgres:5432/app\n",
        id="postgresql-url",
    ),
    pytest.param(
        '{{ with secret "kv/app" }}{{ .Data.a }}{{ end }}',
        "1",
        id="kv-v1",
    ),
]


@pytest.mark.parametrize(("source", "expected"), AGENT_TEMPLATES)
def test_agent_injector_templates(source: str, expected: str) -> None:
    """The common Agent Injector templates render what Vault Agent writes for the same data."""
    assert run(source) == expected


# A certificate body as some tools write it: 76-column lines, which Go's encoder re-wraps at 64.
LONG_BODY = "QUJD" * 30
PKI_PEM = {
    "data": {
        "certificate": (
            f"-----BEGIN CERTIFICATE-----\n{LONG_BODY[:76]}\n{LONG_BODY[76:]}\n-----END CERTIFICATE-----"
        ),
        "issuing_ca": "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----",
        "private_key": "-----BEGIN EC PRIVATE KEY-----\nS0VZ\n-----END EC PRIVATE KEY-----",
        "ca_chain": ["-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----"],
        "serial_number": "01:02",
    }
}


def test_pki_cert_gives_go_encoded_pems() -> None:
    """pkiCert: .Cert, .Key and .CA (and the same under .Data) re-encoded as Go's pem.EncodeToMemory."""
    seen: list[SecretCall] = []

    def fetch(read: SecretCall) -> dict[str, Any]:
        seen.append(read)
        return PKI_PEM

    source = (
        '{{ with pkiCert "pki/issue/web" "common_name=a.test" }}{{ .Cert }}{{ .Key }}{{ .CA }}{{ end }}'
        '{{ with pkiCert "pki/issue/web" "common_name=a.test" }}{{ .Data.Cert }}{{ end }}'
    )
    cert = f"-----BEGIN CERTIFICATE-----\n{LONG_BODY[:64]}\n{LONG_BODY[64:]}\n-----END CERTIFICATE-----\n"
    key = "-----BEGIN EC PRIVATE KEY-----\nS0VZ\n-----END EC PRIVATE KEY-----\n"
    ca = "-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n"
    assert render("tpl", source, fetch) == cert + key + ca + cert
    assert seen == [SecretCall("pki/issue/web", (("common_name", "a.test"),), write=True)]


def test_pki_cert_without_arguments_is_still_a_write() -> None:
    """Unlike secret, pkiCert always issues; a missing field is empty, as in Go's zero PemEncoded."""
    seen: list[SecretCall] = []

    def fetch(read: SecretCall) -> dict[str, Any]:
        seen.append(read)
        return {"data": {"certificate": "not a pem"}}

    assert render("tpl", '{{ with pkiCert "pki/issue/web" }}[{{ .Cert }}|{{ .CA }}]{{ end }}', fetch) == "[|]"
    assert seen == [SecretCall("pki/issue/web", (), write=True)]
    with pytest.raises(
        TemplateError, match=r"can't evaluate field certificate in type dependency.PemEncoded"
    ):
        render("tpl", '{{ with pkiCert "pki/issue/web" }}{{ .certificate }}{{ end }}', fetch)
