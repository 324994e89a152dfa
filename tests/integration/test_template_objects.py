"""`template:` objects against real OpenBao (and PostgreSQL): the common Agent Injector templates.

Each expected file is written out by hand from Vault Agent's documented semantics
(consul-template on Go text/template: `{{-`/`-}}` trim the whitespace beside them,
`range` walks a map in key order, `toJSON` is Go's json.Marshal, numbers in Vault's
answers stay as written). Dynamic secrets are checked for what Agent guarantees: the
certificate, chain and key come from one issuance; the URL logs in to PostgreSQL.
"""

from __future__ import annotations

import textwrap
from urllib.parse import urlsplit

import grpc
import pytest
import requests
from cluster_kit import health_base, metric_samples
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from harness import ProviderProcess, StartProvider, VaultEnv, unique
from mounts import contents, mount, spc

from devkit import PostgresServer
from provider.tools.driver import ProviderCallError

pytestmark = pytest.mark.integration

SECRET = {"username": "app", "password": "s3cr<t>&", "port": 5432, "pool": {"max": 10}}


def template_object(name: str, template: str, **fields: str) -> str:
    """One objects entry whose template is a YAML block scalar, as SecretProviderClasses write it."""
    extra = "".join(f"  {key}: {value}\n" for key, value in fields.items())
    text = template if template.endswith("\n") else template + "\n"
    return f"- objectName: {name}\n{extra}  template: |\n{textwrap.indent(text, '    ')}"


def test_common_agent_templates_render_as_vault_agent_writes_them(
    provider: ProviderProcess, vault: VaultEnv
) -> None:
    """.env, JSON, Spring YAML and Java properties from one KV v2 secret, each byte for byte."""
    path = unique("app/tpl")
    vault.put_kv2(path, SECRET)
    templates = {
        "app.env": (
            f'{{{{- with secret "secret/data/{path}" -}}}}\n'
            'DB_USER="{{ .Data.data.username }}"\n'
            'DB_PASSWORD="{{ .Data.data.password }}"\n'
            "{{- end }}\n"
        ),
        "app.json": f'{{{{ with secret "secret/data/{path}" }}}}{{{{ .Data.data | toJSON }}}}{{{{ end }}}}\n',
        "application.yaml": (
            f'{{{{- with secret "secret/data/{path}" -}}}}\n'
            "spring:\n"
            "  datasource:\n"
            "    url: jdbc:postgresql://db:{{ .Data.data.port }}/app\n"
            "    username: {{ .Data.data.username }}\n"
            "    password: {{ .Data.data.password }}\n"
            "    hikari:\n"
            "      maximum-pool-size: {{ .Data.data.pool.max }}\n"
            "{{ end -}}\n"
        ),
        "app.properties": (
            f'{{{{- with secret "secret/data/{path}" }}}}\n'
            "{{- range $key, $value := .Data.data }}\n"
            "{{ $key }}={{ $value }}\n"
            "{{- end }}\n"
            "{{ end -}}\n"
        ),
    }
    objects = "".join(template_object(name, text) for name, text in templates.items())
    result = mount(provider, {"roleName": "app", "objects": objects})
    assert contents(result) == {
        "app.env": b'DB_USER="app"\nDB_PASSWORD="s3cr<t>&"\n',
        "app.json": (
            b'{"password":"s3cr\\u003ct\\u003e\\u0026","pool":{"max":10},"port":5432,"username":"app"}\n'
        ),
        "application.yaml": (
            b"spring:\n  datasource:\n    url: jdbc:postgresql://db:5432/app\n    username: app\n"
            b"    password: s3cr<t>&\n    hikari:\n      maximum-pool-size: 10\n"
        ),
        # range over a map prints its keys in order; a nested map prints as Go's map[k:v].
        "app.properties": b"\npassword=s3cr<t>&\npool=map[max:10]\nport=5432\nusername=app\n",
    }
    assert sorted(result.versions) == sorted(templates)


def test_certificate_chain_and_key_come_from_one_issuance(provider: ProviderProcess, vault: VaultEnv) -> None:
    """Two templates and a plain object on the same PKI call share one issuance, as in Agent's one render."""
    call = 'secret "pki/issue/web" "common_name=api.example.test" "ttl=1h"'
    objects = (
        template_object(
            "tls.crt",
            f"{{{{- with {call} -}}}}\n{{{{ .Data.certificate }}}}\n"
            "{{ .Data.issuing_ca }}\n{{- end }}\n",
        )
        + template_object("tls.key", f"{{{{ with {call} }}}}{{{{ .Data.private_key }}}}{{{{ end }}}}\n")
        + "- objectName: serial\n  secretPath: pki/issue/web\n  method: PUT\n  secretKey: serial_number\n"
        + '  secretArgs:\n    common_name: api.example.test\n    ttl: "1h"\n'
    )
    files = contents(mount(provider, {"roleName": "app", "objects": objects}, pod_name=unique("pki")))

    ca_pem = vault.root.read("pki/cert/ca")["data"]["certificate"]
    leaf_pem, _, rest = files["tls.crt"].partition(b"-----END CERTIFICATE-----\n")
    leaf_pem += b"-----END CERTIFICATE-----"
    # The file is the leaf, a newline, the issuing CA and the template's closing newline.
    assert rest == ca_pem.strip().encode() + b"\n"
    leaf = x509.load_pem_x509_certificate(leaf_pem)
    key = serialization.load_pem_private_key(files["tls.key"].strip(), password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert leaf.public_key().public_bytes(der, public) == key.public_key().public_bytes(der, public)
    # The plain object's serial (Vault writes it as colon-separated hex) is the same certificate's.
    assert int(files["serial"].decode().replace(":", ""), 16) == leaf.serial_number
    assert files["tls.key"].endswith(b"-----\n")


def test_pki_cert_templates_share_one_issuance(provider: ProviderProcess, vault: VaultEnv) -> None:
    """pkiCert (Agent's recommended PKI function): .Cert, .Key and .CA of one issuance, Go-encoded PEM."""
    call = 'pkiCert "pki/issue/web" "common_name=pem.example.test" "ttl=1h"'
    objects = template_object(
        "tls.crt", f"{{{{ with {call} }}}}{{{{ .Cert }}}}{{{{ .CA }}}}{{{{ end -}}}}"
    ) + (template_object("tls.key", f"{{{{ with {call} }}}}{{{{ .Data.Key }}}}{{{{ end -}}}}"))
    files = contents(mount(provider, {"roleName": "app", "objects": objects}, pod_name=unique("pkicert")))

    ca_pem = vault.root.read("pki/cert/ca")["data"]["certificate"].strip() + "\n"
    leaf_pem, _, ca = files["tls.crt"].partition(b"-----END CERTIFICATE-----\n")
    assert ca == ca_pem.encode()
    leaf = x509.load_pem_x509_certificate(leaf_pem + b"-----END CERTIFICATE-----\n")
    key = serialization.load_pem_private_key(files["tls.key"], password=None)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    assert leaf.public_key().public_bytes(der, public) == key.public_key().public_bytes(der, public)
    assert files["tls.key"].endswith(b"-----\n")


def test_postgresql_url_logs_in_and_shares_the_plain_objects_credential(
    provider: ProviderProcess, database: PostgresServer
) -> None:
    """A template and a plain object on one database role get one credential, kept across polls."""
    url = (
        '{{- with secret "database/creds/app" -}}\n'
        f"postgresql://{{{{ .Data.username }}}}:{{{{ .Data.password }}}}@127.0.0.1:{database.port}/postgres\n"
        "{{- end }}\n"
    )
    objects = template_object("db.url", url) + (
        "- objectName: username\n  secretPath: database/creds/app\n  secretKey: username\n"
    )
    pod = unique("db")
    first = contents(mount(provider, {"roleName": "app", "objects": objects}, pod_name=pod))
    again = contents(mount(provider, {"roleName": "app", "objects": objects}, pod_name=pod))

    parsed = urlsplit(first["db.url"].decode().strip())
    assert (parsed.scheme, parsed.hostname, parsed.port, parsed.path) == (
        "postgresql",
        "127.0.0.1",
        database.port,
        "/postgres",
    )
    assert first["db.url"].endswith(b"/postgres\n")
    assert parsed.username == first["username"].decode()
    assert parsed.password
    assert database.psql("SELECT current_user;", login=(parsed.username, parsed.password)) == parsed.username
    assert again == first


def test_version_follows_the_rendered_file(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A poll that renders the same bytes keeps the version; a changed secret changes it."""
    path = unique("app/tpl-version")
    vault.put_kv2(path, {"a": "1"})
    parameters = {
        "roleName": "app",
        "objects": template_object(
            "a", f'{{{{ with secret "secret/data/{path}" }}}}{{{{ .Data.data.a }}}}{{{{ end }}}}'
        ),
    }
    first, again = mount(provider, parameters), mount(provider, parameters)
    vault.put_kv2(path, {"a": "2"})
    changed = mount(provider, parameters)
    assert first.versions == again.versions
    assert changed.versions["a"] != first.versions["a"]
    assert contents(changed) == {"a": b"2\n"}


def test_missing_key_names_the_object_line_and_column(provider: ProviderProcess, vault: VaultEnv) -> None:
    """A key the secret lacks is NOT_FOUND with the object and the template position, never a value."""
    path = unique("app/tpl-missing")
    vault.put_kv2(path, {"password": "hunter2-value"})
    template = (
        f'{{{{ with secret "secret/data/{path}" }}}}\n  pw={{{{ .Data.data.pasword }}}}\n{{{{ end }}}}\n'
    )
    with pytest.raises(ProviderCallError) as caught:
        mount(provider, {"roleName": "app", "objects": template_object("cfg", template)})
    assert caught.value.code == grpc.StatusCode.NOT_FOUND
    assert caught.value.message == (
        'objects[0] "cfg": template line 2, column 6: map has no entry for key "pasword"'
    )


@pytest.mark.parametrize(
    ("template", "code", "message"),
    [
        pytest.param(
            '{{ with secret (printf "secret/data/%s" "x") }}{{ end }}',
            grpc.StatusCode.INVALID_ARGUMENT,
            'objects[0] "cfg": template line 1, column 9: secret\'s path and arguments must be quoted '
            "strings written in the template, so every read is known before the Mount talks to Vault",
            id="computed-path",
        ),
        pytest.param(
            '{{ with secret "secret/data/app/x" }}\n{{ .Data.data.a',
            grpc.StatusCode.INVALID_ARGUMENT,
            'objects[0] "cfg": template line 2, column 1: unclosed action',
            id="syntax",
        ),
        pytest.param(
            '{{ env "VAULT_TOKEN" }}',
            grpc.StatusCode.INVALID_ARGUMENT,
            "objects[0] \"cfg\": template line 1, column 4: function 'env' not defined",
            id="no-environment",
        ),
        pytest.param(
            '{{ with secret "secret/data/../sys/raw" }}{{ end }}',
            grpc.StatusCode.INVALID_ARGUMENT,
            "objects[0] \"cfg\": template line 1, column 9: the path must not contain '.' or '..' elements",
            id="dot-dot-path",
        ),
    ],
)
def test_bad_templates_are_refused_before_vault(
    provider: ProviderProcess, template: str, code: grpc.StatusCode, message: str
) -> None:
    """Templates are checked with the rest of the request: nothing is read when one is wrong."""
    with pytest.raises(ProviderCallError) as caught:
        mount(provider, {"roleName": "app", "objects": template_object("cfg", template + "\n")})
    assert caught.value.code == code
    assert caught.value.message == message


def test_a_template_renders_through_base64_into_a_binary_file(
    provider: ProviderProcess, vault: VaultEnv
) -> None:
    """encoding applies to the rendered text, so a base64 keystore in Vault becomes the binary file."""
    path = unique("app/tpl-binary")
    vault.put_kv2(path, {"keystore": "AAH/fw=="})
    template = f'{{{{- with secret "secret/data/{path}" }}}}{{{{ .Data.data.keystore }}}}{{{{ end -}}}}'
    files = contents(
        mount(
            provider, {"roleName": "app", "objects": template_object("ks.p12", template, encoding="base64")}
        )
    )
    assert files == {"ks.p12": b"\x00\x01\xff\x7f"}


def vault_requests(process: ProviderProcess) -> dict[str, float]:
    """The provider's Vault requests so far, by kind (successful ones)."""
    text = requests.get(f"{health_base(process)}/metrics", timeout=5).text
    return {
        dict(labels)["kind"]: value
        for (name, labels), value in metric_samples(text).items()
        if name == "vault_csi_provider_vault_requests_total" and dict(labels).get("status") == "200"
    }


def test_legacy_kv2_paths_read_the_data_path_as_agent_does(
    start_provider: StartProvider, vault: VaultEnv
) -> None:
    """`secret "secret/app/x"` on KV v2 reads secret/data/app/x (Agent's shim); KV v1 paths stay as written.

    The mount is looked up once and remembered; a template and a plain object on the data
    path then share one read.
    """
    process = start_provider()
    path = unique("app/legacy")
    vault.put_kv2(path, {"user": "from-v2"})
    vault.root.secrets.kv.v1.create_or_update_secret(path=path, secret={"user": "from-v1"}, mount_point="kv1")
    objects = (
        template_object("v2", f'{{{{ with secret "secret/{path}" }}}}{{{{ .Data.data.user }}}}{{{{ end -}}}}')
        + template_object("v1", f'{{{{ with secret "kv1/{path}" }}}}{{{{ .Data.user }}}}{{{{ end -}}}}')
        + f"- objectName: plain\n  secretPath: secret/data/{path}\n  secretKey: user\n"
    )
    parameters = {"roleName": "app", "objects": objects}

    before = vault_requests(process)
    first = mount(process, parameters)
    after_first = vault_requests(process)
    again = mount(process, parameters)
    after_again = vault_requests(process)

    assert contents(first) == {"v2": b"from-v2", "v1": b"from-v1", "plain": b"from-v2"}
    assert contents(again) == contents(first)
    delta = {kind: after_first.get(kind, 0) - before.get(kind, 0) for kind in ("mount-info", "read")}
    # Two template paths looked up; two reads (the v2 data path once for both objects, and kv1).
    assert delta == {"mount-info": 2, "read": 2}
    delta = {kind: after_again.get(kind, 0) - after_first.get(kind, 0) for kind in ("mount-info", "read")}
    assert delta == {"mount-info": 0, "read": 2}


def test_plain_objects_keep_upstreams_paths(provider: ProviderProcess, vault: VaultEnv) -> None:
    """Without a template, secret/app/x on KV v2 is sent as written, as upstream sends it (here: denied)."""
    path = unique("app/legacy-plain")
    vault.put_kv2(path, {"user": "x"})
    with pytest.raises(ProviderCallError) as caught:
        mount(provider, spc(f"- objectName: a\n  secretPath: secret/{path}\n  secretKey: user\n"))
    assert caught.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.message == (
        f'objects[0] "a": GET /v1/secret/{path} was denied (403): permission denied; '
        "check the role's policies"
    )
