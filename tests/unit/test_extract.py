"""provider.extract: a Vault response → the bytes of one file, as the upstream provider writes them.

Expected envelopes are written out by hand in Go's api.Secret field order (checked
against json.Marshal of vault/api v1.15.0's ParseSecret result).
"""

from __future__ import annotations

from typing import Any

import pytest

from provider.errors import SecretNotFound, VaultUnavailable
from provider.render.extract import (
    ExtractError,
    decode,
    envelope,
    require_data,
    response_data,
    select_key,
    select_pointer,
)
from provider.render.gojson import loads

KV1 = loads(
    '{"request_id":"r1","lease_id":"","lease_duration":2764800,"renewable":false,"data":'
    '{"password":"s3cr3t","port":5432,"ratio":1.50,"tags":["b","a"],"on":true,"none":null,'
    '"nested":{"z":"<&>","a":1e3}},"wrap_info":null,"warnings":null,"auth":null}'
)
KV2 = loads(
    '{"request_id":"r2","lease_id":"","lease_duration":0,"renewable":false,"data":'
    '{"data":{"password":"v2-s3cr3t","count":10},"metadata":{"version":3,"created_time":"2024-01-01T00:00:00Z"}},'
    '"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}'
)


@pytest.mark.parametrize(
    ("payload", "key", "expected"),
    [
        pytest.param(KV1, "password", b"s3cr3t", id="kv1-string-raw"),
        pytest.param(KV2, "password", b"v2-s3cr3t", id="kv2-inside-data-data"),
        pytest.param(KV2, "count", b"10", id="kv2-number"),
        pytest.param(KV1, "port", b"5432", id="integer-as-json"),
        pytest.param(KV1, "ratio", b"1.50", id="number-verbatim"),
        pytest.param(KV1, "on", b"true", id="bool-as-json"),
        pytest.param(KV1, "none", b"null", id="present-null-as-json"),
        pytest.param(KV1, "tags", b'["b","a"]', id="list-as-json"),
        pytest.param(KV1, "nested", b'{"a":1e3,"z":"\\u003c\\u0026\\u003e"}', id="map-as-go-json"),
        pytest.param(loads('{"data":{"k":""}}'), "k", b"", id="empty-string"),
        pytest.param(loads('{"data":{"k":"line1\\nline2\\n"}}'), "k", b"line1\nline2\n", id="newlines-kept"),
        pytest.param(loads('{"data":{"k":"<é>"}}'), "k", "<é>".encode(), id="string-not-escaped"),
        pytest.param(loads('{"data":{"k":"1.50"}}'), "k", b"1.50", id="numeric-string-raw"),
        # A data.data that is not a map (a KV v1 key named "data"): look in data itself.
        pytest.param(loads('{"data":{"data":"plain","k":"v"}}'), "k", b"v", id="data-key-not-a-map"),
        pytest.param(loads('{"data":{"data":"plain"}}'), "data", b"plain", id="select-data-key-itself"),
        pytest.param(loads('{"data":{"data":null,"k":"v"}}'), "k", b"v", id="deleted-kv2-version"),
        pytest.param(
            loads('{"data":{"data":{"k":"inner"},"k":"outer"}}'), "k", b"inner", id="data-data-wins"
        ),
        pytest.param(loads('{"keys":["a"]}'), "keys", b'["a"]', id="bare-body"),
        # Go decodes "\ud800" to U+FFFD and writes it as UTF-8.
        pytest.param(loads('{"data":{"k":"a\\ud800b"}}'), "k", b"a\xef\xbf\xbdb", id="lone-surrogate"),
    ],
)
def test_select_key(payload: Any, key: str, expected: bytes) -> None:
    """Strings are written raw; anything else as Go's compact JSON with Vault's numbers verbatim."""
    data = response_data(payload)
    assert data is not None
    assert select_key(data, key) == expected


@pytest.mark.parametrize(
    ("payload", "key", "count"),
    [
        pytest.param(KV1, "pasword", 7, id="kv1-typo"),
        pytest.param(KV2, "metadata", 2, id="kv2-outer-key-not-searched"),
        pytest.param(KV2, "Password", 2, id="case-sensitive"),
        pytest.param(loads('{"data":{"data":{}}}'), "k", 0, id="empty-kv2"),
    ],
)
def test_missing_key(payload: Any, key: str, count: int) -> None:
    """A missing key is SecretNotFound naming the key and how many there are, never their values."""
    data = response_data(payload)
    assert data is not None
    with pytest.raises(SecretNotFound) as caught:
        select_key(data, key)
    message = str(caught.value)
    assert message == f'key "{key}" does not exist in the secret (it has {count} keys)'
    assert "s3cr3t" not in message


@pytest.mark.parametrize(
    ("value", "encoding", "expected"),
    [
        pytest.param(b"hello", "utf-8", b"hello", id="utf-8-as-is"),
        pytest.param(b"\xff", "utf-8", b"\xff", id="utf-8-not-validated"),
        pytest.param(b"aGVsbG8=", "base64", b"hello", id="base64"),
        pytest.param(b"aGVsbG8gd29ybGQ=\n", "base64", b"hello world", id="base64-trailing-newline"),
        pytest.param(b"aGVs\nbG8g\r\nd29y\nbGQ=", "base64", b"hello world", id="base64-wrapped-lines"),
        pytest.param(b"", "base64", b"", id="base64-empty"),
        pytest.param(b"+/8=", "base64", b"\xfb\xff", id="base64-standard-alphabet"),
        pytest.param(b"68656c6c6f", "hex", b"hello", id="hex"),
        pytest.param(b"DEADbeef", "hex", b"\xde\xad\xbe\xef", id="hex-mixed-case"),
        pytest.param(b"", "hex", b"", id="hex-empty"),
    ],
)
def test_decode(value: bytes, encoding: str, expected: bytes) -> None:
    """utf-8 is the value itself; base64 (Go's StdEncoding, CR/LF skipped) and hex are decoded."""
    assert decode(value, encoding) == expected


BAD_BASE64 = "is not valid base64 (standard alphabet, with padding)"
BAD_HEX = "is not valid hex (an even number of 0-9, a-f digits)"


@pytest.mark.parametrize(
    ("value", "encoding", "message"),
    [
        pytest.param(b"aGVsbG8", "base64", BAD_BASE64, id="base64-missing-padding"),
        pytest.param(b"aGk", "base64", BAD_BASE64, id="base64-missing-padding-short"),
        pytest.param(b"-_8=", "base64", BAD_BASE64, id="base64-url-alphabet"),
        pytest.param(b"aGVs bG8=", "base64", BAD_BASE64, id="base64-space"),
        pytest.param(b"aGVsbG8=\t", "base64", BAD_BASE64, id="base64-tab"),
        pytest.param(b"aGk=aGk=", "base64", BAD_BASE64, id="base64-padding-in-middle"),
        pytest.param(b"a===", "base64", BAD_BASE64, id="base64-too-much-padding"),
        pytest.param(b"s3cr3t!", "base64", BAD_BASE64, id="base64-not-base64"),
        pytest.param(b"686", "hex", BAD_HEX, id="hex-odd-length"),
        pytest.param(b"zz", "hex", BAD_HEX, id="hex-non-hex"),
        pytest.param(b"68 65", "hex", BAD_HEX, id="hex-space"),
        pytest.param(b"6865\n", "hex", BAD_HEX, id="hex-trailing-newline"),
        pytest.param(b"0x68", "hex", BAD_HEX, id="hex-prefix"),
        pytest.param("٦٨".encode(), "hex", BAD_HEX, id="hex-non-ascii-digits"),
        pytest.param(b"x", "rot13", "has an unknown encoding 'rot13'", id="unknown-encoding"),
    ],
)
def test_decode_errors(value: bytes, encoding: str, message: str) -> None:
    """Undecodable values are an ExtractError that never echoes the value."""
    with pytest.raises(ExtractError) as caught:
        decode(value, encoding)
    assert str(caught.value) == message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            '{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":2764800,'
            '"data":{"password":"x","n":1.50},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}',
            b'{"request_id":"r1","lease_id":"","lease_duration":2764800,"renewable":false,'
            b'"data":{"n":1.50,"password":"x"},"warnings":null,"mount_type":"kv"}',
            id="kv1-with-mount-type",
        ),
        pytest.param(
            '{"request_id":"r","data":{"data":{"k":"<v>"},"metadata":{"version":3}}}',
            b'{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,'
            b'"data":{"data":{"k":"\\u003cv\\u003e"},"metadata":{"version":3}},"warnings":null}',
            id="kv2-html-escaped",
        ),
        pytest.param(
            '{"request_id":"","data":null,"lease_id":"database/creds/app/abc","lease_duration":3600,'
            '"renewable":true}',
            b'{"request_id":"","lease_id":"database/creds/app/abc","lease_duration":3600,"renewable":true,'
            b'"data":null,"warnings":null}',
            id="lease-without-data",
        ),
        pytest.param(
            '{"request_id":"r","data":null,"warnings":["w1"]}',
            b'{"request_id":"r","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":["w1"]}',
            id="warnings",
        ),
        pytest.param(
            '{"warnings":[]}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":[]}',
            id="empty-warnings-not-null",
        ),
        pytest.param(
            '{"data":{}}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":{},"warnings":null}',
            id="empty-data-not-null",
        ),
        pytest.param(
            "{}",
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":null}',
            id="empty-object",
        ),
        pytest.param(
            '{"keys":["b","a"]}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,'
            b'"data":{"keys":["b","a"]},"warnings":null}',
            id="bare-body-becomes-data",
        ),
        pytest.param(
            '{"lease_duration":0,"renewable":false,"x":1}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,'
            b'"data":{"lease_duration":0,"renewable":false,"x":1},"warnings":null}',
            id="bare-body-with-zero-envelope-fields",
        ),
        pytest.param(
            '{"auth":{"client_token":"t","accessor":"a","policies":["default"],"token_policies":["default"],'
            '"metadata":{"role":"r"},"lease_duration":60,"renewable":true,"entity_id":"e",'
            '"token_type":"service","orphan":true,"mfa_requirement":null,"num_uses":0},"request_id":"x"}',
            b'{"request_id":"x","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":null,'
            b'"auth":{"client_token":"t","accessor":"a","policies":["default"],"token_policies":["default"],'
            b'"identity_policies":null,"metadata":{"role":"r"},"orphan":true,"entity_id":"e",'
            b'"lease_duration":60,"renewable":true,"mfa_requirement":null}}',
            id="auth-struct-order",
        ),
        pytest.param(
            '{"wrap_info":{"token":"w","accessor":"a","ttl":300,"creation_time":"2024-01-01T00:00:00Z",'
            '"creation_path":"p","wrapped_accessor":""}}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":null,'
            b'"wrap_info":{"token":"w","accessor":"a","ttl":300,"creation_time":"2024-01-01T00:00:00Z",'
            b'"creation_path":"p","wrapped_accessor":""}}',
            id="wrap-info-struct-order",
        ),
        pytest.param(
            '{"wrap_info":{"token":"w"}}',
            b'{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,"data":null,"warnings":null,'
            b'"wrap_info":{"token":"w","accessor":"","ttl":0,"creation_time":"0001-01-01T00:00:00Z",'
            b'"creation_path":"","wrapped_accessor":""}}',
            id="wrap-info-zero-values",
        ),
        pytest.param(
            '{"data":{"k":"\\u2028\\u00e9\\ud800"}}',
            '{"request_id":"","lease_id":"","lease_duration":0,"renewable":false,'
            '"data":{"k":"\\u2028é\ufffd"},"warnings":null}'.encode(),
            id="unicode",
        ),
    ],
)
def test_envelope(body: str, expected: bytes) -> None:
    """Without secretKey the file is Go's api.Secret marshalled: fixed field order, optional tail fields."""
    assert envelope(loads(body)) == expected


@pytest.mark.parametrize(
    ("payload", "data"),
    [
        pytest.param(loads('{"data":{"a":"1"}}'), {"a": "1"}, id="data"),
        pytest.param(loads('{"data":{}}'), {}, id="empty-data"),
        pytest.param(loads('{"keys":["a"]}'), {"keys": ["a"]}, id="bare"),
        pytest.param(loads('{"request_id":"r","data":null}'), None, id="envelope-without-data"),
        pytest.param(loads("{}"), None, id="empty-object"),
        pytest.param(loads('{"errors":[]}'), None, id="only-errors"),
        pytest.param(None, None, id="no-body"),
        pytest.param(loads("[1]"), None, id="list"),
        pytest.param(loads('"text"'), None, id="string"),
    ],
)
def test_response_data(payload: Any, data: dict[str, Any] | None) -> None:
    """The data map as Go's ParseSecret sees it; a bare body is the data, an errors-only body is none."""
    assert response_data(payload) == data


def test_require_data_returns_data() -> None:
    """With data present, require_data returns it."""
    assert require_data(loads('{"data":{"a":"1"}}'), "GET /v1/secret/a") == {"a": "1"}


@pytest.mark.parametrize(
    ("payload", "error", "message"),
    [
        pytest.param(None, VaultUnavailable, "Vault answered GET /v1/x with an empty body", id="empty-body"),
        pytest.param(
            loads("{}"), SecretNotFound, "Vault's answer to GET /v1/x has no data", id="empty-object"
        ),
        pytest.param(
            loads('{"request_id":"r","data":null,"lease_id":"l/1"}'),
            SecretNotFound,
            "Vault's answer to GET /v1/x has no data",
            id="no-data",
        ),
        pytest.param(
            loads('{"errors":[]}'), SecretNotFound, "Vault's answer to GET /v1/x has no data", id="errors"
        ),
        pytest.param(
            loads("[]"), SecretNotFound, "Vault's answer to GET /v1/x has no data", id="not-an-object"
        ),
    ],
)
def test_require_data_errors(payload: Any, error: type[Exception], message: str) -> None:
    """No data is a clear error (never a crash): an empty body is Vault misbehaving, no data is not found."""
    with pytest.raises(error) as caught:
        require_data(payload, "GET /v1/x")
    assert str(caught.value) == message


NESTED = loads(
    b'{"data": {"data": {"config": {"db": {"password": "p", "port": 5432}, "list": [{"h": "x"}, 7]}}}}'
)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        pytest.param(("config", "db", "password"), b"p", id="string-raw"),
        pytest.param(("config", "db", "port"), b"5432", id="number-as-go-json"),
        pytest.param(("config", "db"), b'{"password":"p","port":5432}', id="map-as-go-json"),
        pytest.param(("config", "list", "0", "h"), b"x", id="list-index"),
        pytest.param(("config", "list", "1"), b"7", id="last-index"),
    ],
)
def test_select_pointer(keys: tuple[str, ...], expected: bytes) -> None:
    """A JSON Pointer's keys walk KV v2's data.data; values are written as secretKey writes them."""
    assert select_pointer(NESTED["data"], keys) == expected


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param(("nope",), 'secretKeyPointer: the secret is a map without "nope"', id="top"),
        pytest.param(
            ("config", "db", "user"), 'secretKeyPointer: "/config/db" is a map without "user"', id="deep"
        ),
        pytest.param(
            ("config", "list", "2"), 'secretKeyPointer: "/config/list" is a list without "2"', id="index"
        ),
        pytest.param(
            ("config", "list", "01"), 'secretKeyPointer: "/config/list" is a list without "01"', id="zero"
        ),
        pytest.param(
            ("config", "db", "port", "x"),
            'secretKeyPointer: "/config/db/port" is a value without "x"',
            id="leaf",
        ),
    ],
)
def test_select_pointer_missing(keys: tuple[str, ...], message: str) -> None:
    """What is not there is NOT_FOUND, naming how far the pointer got (never a value)."""
    with pytest.raises(SecretNotFound) as caught:
        select_pointer(NESTED["data"], keys)
    assert str(caught.value) == message
