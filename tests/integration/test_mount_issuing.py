"""Engines that issue through the real provider: PKI certificates by PUT with secretArgs, and
PostgreSQL credentials, one issuance or lease per distinct request.

Every test calls the provider over its unix socket the way the Secrets Store CSI driver
does (attributes built by `provider.tools.driver`, the driver's response checks and atomic
writer), logging in with a freshly minted service-account token; helpers are in `mounts`.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from harness import ProviderProcess
from mounts import contents, mount, spc

from devkit import PostgresServer

pytestmark = pytest.mark.integration


def _certificate(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def test_pki_certificate_and_key_come_from_one_issuance(provider: ProviderProcess) -> None:
    """Certificate, key and CA objects with the same PUT and arguments share one issuance."""
    objects = "".join(
        f"""- objectName: {name}
  secretPath: pki/issue/web
  method: PUT
  secretArgs:
    common_name: app.example.test
    ttl: 1h
  secretKey: {key}
"""
        for name, key in (("tls.crt", "certificate"), ("tls.key", "private_key"), ("ca.crt", "issuing_ca"))
    )
    files = contents(mount(provider, spc(objects)))

    cert = _certificate(files["tls.crt"])
    key = serialization.load_pem_private_key(files["tls.key"], password=None)
    assert _common_name(cert) == "app.example.test"
    assert _public_der(key.public_key()) == _public_der(cert.public_key())
    assert cert.issuer == _certificate(files["ca.crt"]).subject


def test_pki_objects_with_different_arguments_get_different_certificates(provider: ProviderProcess) -> None:
    """Deduplication includes secretArgs: two common names give two certificates."""
    objects = "".join(
        f"""- objectName: {name}.crt
  secretPath: pki/issue/web
  method: POST
  secretArgs:
    common_name: {name}.example.test
  secretKey: certificate
"""
        for name in ("alpha", "beta")
    )
    files = contents(mount(provider, spc(objects)))

    alpha, beta = _certificate(files["alpha.crt"]), _certificate(files["beta.crt"])
    assert (_common_name(alpha), _common_name(beta)) == ("alpha.example.test", "beta.example.test")
    assert alpha.serial_number != beta.serial_number


def test_database_username_and_password_come_from_one_lease(
    provider: ProviderProcess, database: PostgresServer
) -> None:
    """Username and password of one creds path are one PostgreSQL login that works."""
    result = mount(
        provider,
        spc("""
            - objectName: db/username
              secretPath: database/creds/app
              secretKey: username
            - objectName: db/password
              secretPath: database/creds/app
              secretKey: password
        """),
    )

    files = contents(result)
    username, password = files["db/username"].decode(), files["db/password"].decode()
    assert username.startswith("v-")
    assert database.psql("SELECT current_user;", login=(username, password)) == username
