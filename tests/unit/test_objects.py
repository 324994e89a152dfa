"""provider.objects: the `objects` YAML parsed, validated and turned into Vault requests.

Each table starts from MINIMAL (one valid object) and changes one field.
"""

from __future__ import annotations

import pytest

from provider.render import gojson
from provider.request.objects import SecretObject, VaultRequest, parse_objects

MINIMAL = {"objectName": "a", "secretPath": "secret/data/a"}


def objects_yaml(**changes: str | None) -> str:
    """One object: MINIMAL with fields replaced by raw YAML text, or removed when None."""
    fields: dict[str, str | None] = {**MINIMAL, **changes}
    lines = [f"{key}: {value}" for key, value in fields.items() if value is not None]
    return "- " + "\n  ".join(lines) + "\n"


def parse_one(**changes: str | None) -> SecretObject:
    """The single object parsed from MINIMAL with `changes`; fails the test on any problem."""
    objects, problems = parse_objects(objects_yaml(**changes))
    assert problems == []
    (obj,) = objects
    return obj


def problems_of(**changes: str | None) -> list[str]:
    """The problems reported for MINIMAL with `changes`; no object comes back for a bad object."""
    objects, problems = parse_objects(objects_yaml(**changes))
    assert objects == ()
    return problems


def test_minimal_object_defaults() -> None:
    """objectName and secretPath alone: GET, no query, no body, no key, utf-8, the request's file mode."""
    obj = parse_one()
    assert obj.index == 0
    assert obj.name == "a"
    assert obj.request == VaultRequest("GET", "/v1/secret/data/a", (), None)
    assert obj.secret_key is None
    assert obj.encoding == "utf-8"
    assert obj.file_mode is None
    assert obj.label() == 'objects[0] "a"'
    assert obj.fingerprint == (
        '{"encoding":"utf-8","filePermission":0,"method":"GET","objectName":"a",'
        '"secretArgs":null,"secretKey":"","secretPath":"secret/data/a"}'
    )


def test_every_field_set() -> None:
    """Every field at once lands where it belongs."""
    obj = parse_one(
        objectName="tls/tls.key",
        secretPath="/v1/pki/issue/web?a=1",
        secretKey="private_key",
        method="put",
        secretArgs="{common_name: app.demo.svc, ttl: 24h}",
        encoding="Base64",
        filePermission="0o640",
    )
    assert obj.name == "tls/tls.key"
    assert obj.request == VaultRequest(
        "PUT", "/v1/pki/issue/web", (("a", "1"),), '{"common_name":"app.demo.svc","ttl":"24h"}'
    )
    assert obj.secret_key == "private_key"
    assert obj.encoding == "base64"
    assert obj.file_mode == 0o640


@pytest.mark.parametrize(
    ("secret_path", "path", "query"),
    [
        pytest.param("/v1/secret/data/x", "/v1/secret/data/x", (), id="slash-v1"),
        pytest.param("v1/secret/data/x", "/v1/secret/data/x", (), id="v1"),
        pytest.param("/secret/data/x", "/v1/secret/data/x", (), id="slash"),
        pytest.param("secret/data/x", "/v1/secret/data/x", (), id="bare"),
        pytest.param("v1", "/v1/v1", (), id="mount-named-v1"),
        pytest.param("/v1x/y", "/v1/v1x/y", (), id="v1-prefix-is-not-a-path-element"),
        pytest.param("secret/data/x?version=3", "/v1/secret/data/x", (("version", "3"),), id="kv2-version"),
        pytest.param("/v1/x?b=2&a=1", "/v1/x", (("a", "1"), ("b", "2")), id="query-sorted-by-key"),
        pytest.param("x?", "/v1/x", (), id="empty-query"),
        pytest.param("x?&&", "/v1/x", (), id="only-separators"),
        pytest.param("x?flag", "/v1/x", (("flag", ""),), id="key-without-value"),
        pytest.param("x?a=b+c%20d%2Fe", "/v1/x", (("a", "b c d/e"),), id="query-unescaped"),
        pytest.param("x?a=1=2", "/v1/x", (("a", "1=2"),), id="equals-in-value"),
        # url.Values.Encode sorts the keys; the values of one key keep their order.
        pytest.param("x?a=2&a=1", "/v1/x", (("a", "2"), ("a", "1")), id="repeated-key-keeps-value-order"),
        pytest.param("secret/data/a b", "/v1/secret/data/a b", (), id="space-kept"),
        # Cleaned as Go's path.Join cleans them in upstream's client.
        pytest.param("secret/data/app/", "/v1/secret/data/app", (), id="trailing-slash-dropped"),
        pytest.param("secret//data/app", "/v1/secret/data/app", (), id="double-slash-collapsed"),
        pytest.param("/v1/secret///data//app//", "/v1/secret/data/app", (), id="every-run-collapsed"),
        pytest.param(
            "secret/data/app/?version=2", "/v1/secret/data/app", (("version", "2"),), id="slash-query"
        ),
    ],
)
def test_secret_path(secret_path: str, path: str, query: tuple[tuple[str, str], ...]) -> None:
    """The four spellings of a path give /v1/<path>; a ?query becomes sorted parameters as Go's ParseQuery."""
    request = parse_one(secretPath=f"'{secret_path}'").request
    assert (request.path, request.query) == (path, query)


@pytest.mark.parametrize(
    ("secret_path", "problem"),
    [
        pytest.param("''", "secretPath is required, e.g. secret/data/my-app", id="empty"),
        pytest.param("~", "secretPath is required, e.g. secret/data/my-app", id="null"),
        pytest.param(None, "secretPath is required, e.g. secret/data/my-app", id="missing"),
        pytest.param("/v1/", "secretPath names no secret (it is empty after /v1/)", id="only-v1"),
        pytest.param("/", "secretPath names no secret (it is empty after /v1/)", id="only-slash"),
        pytest.param("'?version=3'", "secretPath names no secret (it is empty after /v1/)", id="only-query"),
        pytest.param("../sys/seal", "secretPath must not contain '.' or '..' elements", id="leading-dotdot"),
        pytest.param("secret/../sys", "secretPath must not contain '.' or '..' elements", id="inner-dotdot"),
        pytest.param("secret/./x", "secretPath must not contain '.' or '..' elements", id="dot"),
        pytest.param("/v1/..", "secretPath must not contain '.' or '..' elements", id="v1-dotdot"),
        pytest.param(
            "https://evil.example/v1/x",
            "secretPath must be a path inside Vault (like secret/data/app), not a URL",
            id="url",
        ),
        pytest.param(
            "//evil.example/x",
            "secretPath must be a path inside Vault (like secret/data/app), not a URL",
            id="scheme-relative-url",
        ),
        pytest.param(
            "/v1//evil.example/x",
            "secretPath must be a path inside Vault (like secret/data/app), not a URL",
            id="v1-scheme-relative-url",
        ),
        pytest.param("'x#y'", "secretPath must not contain '#'", id="fragment"),
        pytest.param('"x\\ty"', "secretPath contains a control character", id="tab"),
        pytest.param('"x\\ny"', "secretPath contains a control character", id="newline"),
        pytest.param("'x?a=%zz'", "secretPath query has a malformed %-escape", id="bad-percent-escape"),
        pytest.param("'x?a=%'", "secretPath query has a malformed %-escape", id="truncated-percent-escape"),
        pytest.param("'x?%4=1'", "secretPath query has a malformed %-escape", id="bad-escape-in-key"),
        pytest.param("'x?a=1;b=2'", "secretPath query uses ';' as a separator; use '&'", id="semicolon"),
    ],
)
def test_secret_path_rejected(secret_path: str | None, problem: str) -> None:
    """Empty paths, '..', URLs and malformed queries are refused, naming the object."""
    assert problems_of(secretPath=secret_path) == [f'objects[0] "a": {problem}']


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        pytest.param(None, "GET", id="default"),
        pytest.param("~", "GET", id="null-is-default"),
        pytest.param("''", "GET", id="empty-is-default"),
        pytest.param("GET", "GET", id="GET"),
        pytest.param("get", "GET", id="lowercase-get"),
        pytest.param("PUT", "PUT", id="PUT"),
        pytest.param("Put", "PUT", id="mixed-case-put"),
        pytest.param("post", "POST", id="lowercase-post"),
    ],
)
def test_method(method: str | None, expected: str) -> None:
    """GET, PUT and POST in any case; GET when absent."""
    assert parse_one(method=method).request.method == expected


@pytest.mark.parametrize(
    ("method", "shown"),
    [
        pytest.param("DELETE", "DELETE", id="delete"),
        pytest.param("delete", "DELETE", id="lowercase-delete"),
        pytest.param("PATCH", "PATCH", id="patch"),
        pytest.param("LIST", "LIST", id="list"),
        pytest.param("'GET '", "GET ", id="trailing-space"),
    ],
)
def test_method_rejected(method: str, shown: str) -> None:
    """Any other method is refused: a DELETE would run on every rotation poll."""
    assert problems_of(method=method) == [
        f"objects[0] \"a\": method '{shown}' is not allowed; use GET to read, PUT or POST to issue"
    ]


@pytest.mark.parametrize(
    ("secret_args", "body"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("~", None, id="null"),
        pytest.param("{}", "{}", id="empty-mapping"),
        pytest.param(
            "{ttl: 24h, common_name: app.demo.svc}", '{"common_name":"app.demo.svc","ttl":"24h"}', id="sorted"
        ),
        pytest.param("{z: {b: 1, a: 2}}", '{"z":{"a":2,"b":1}}', id="nested-sorted"),
        pytest.param("{alt_names: [b, a]}", '{"alt_names":["b","a"]}', id="list-order-kept"),
        pytest.param(
            "{n: 0600, m: 0o600, h: 0x1A4, d: 1_000}", '{"d":1000,"h":420,"m":384,"n":384}', id="ints"
        ),
        pytest.param("{f: 1.5, g: 1e3, e: 08}", '{"e":8,"f":1.5,"g":1000}', id="floats"),
        pytest.param(
            "{a: no, b: yes, c: on}", '{"a":"no","b":"yes","c":"on"}', id="yaml11-booleans-stay-strings"
        ),
        pytest.param("{a: true, b: False}", '{"a":true,"b":false}', id="booleans"),
        pytest.param("{a: ~, b: null}", '{"a":null,"b":null}', id="nulls"),
        pytest.param("{a: '0600', b: \"true\"}", '{"a":"0600","b":"true"}', id="quoted-stay-strings"),
        pytest.param("{cn: '<a&b>'}", '{"cn":"\\u003ca\\u0026b\\u003e"}', id="go-html-escapes"),
        pytest.param("{1: x}", '{"1":"x"}', id="int-key-is-text"),
        pytest.param("{range: 0-5}", '{"range":"0-5"}', id="range-stays-string"),
        # yaml.v3 v3.0.1 decodes unquoted timestamps into time.Time for interface{} values,
        # and Go's json.Marshal writes those as RFC 3339.
        pytest.param("{not_after: 2030-01-31}", '{"not_after":"2030-01-31T00:00:00Z"}', id="yaml-v3-date"),
        pytest.param(
            "{t: 2001-12-14T21:59:43.10-05:00}", '{"t":"2001-12-14T21:59:43.1-05:00"}', id="yaml-v3-timestamp"
        ),
        pytest.param("{t: '2030-01-31'}", '{"t":"2030-01-31"}', id="quoted-date-stays-string"),
        # yaml.v3 applies merge keys.
        pytest.param("{<<: {x: 1}, y: 2}", '{"x":1,"y":2}', id="yaml-v3-merge-key"),
    ],
)
def test_secret_args_body(secret_args: str | None, body: str | None) -> None:
    """secretArgs becomes the JSON body upstream sends: yaml.v3 types, Go's key order and escaping."""
    assert parse_one(method="PUT", secretArgs=secret_args).request.body == body


@pytest.mark.parametrize(
    ("secret_args", "problem"),
    [
        pytest.param("[a, b]", "secretArgs must be a mapping of argument names to values", id="list"),
        pytest.param("common_name", "secretArgs must be a mapping of argument names to values", id="scalar"),
        pytest.param("'{}'", "secretArgs must be a mapping of argument names to values", id="quoted-json"),
        pytest.param("{a: .inf}", "secretArgs a must be finite numbers", id="inf"),
        pytest.param("{a: 1, b: {c: .nan}}", "secretArgs b.c must be finite numbers", id="nested-nan"),
        pytest.param("{d: [1, -.inf]}", "secretArgs d.1 must be finite numbers", id="in-list"),
        pytest.param("{a: .inf, b: .nan}", "secretArgs a, b must be finite numbers", id="several"),
        pytest.param(
            "{a: 1, a: 2}",
            'secretArgs: key "a" appears twice (line 3, column 16 and line 3, column 22)',
            id="duplicate-key",
        ),
        pytest.param(
            "{a: !!int x}", 'secretArgs: "!!int" value at line 3, column 19 is not an integer', id="bad-tag"
        ),
    ],
)
def test_secret_args_rejected(secret_args: str, problem: str) -> None:
    """secretArgs must be a mapping of finite values; the message names keys, never values."""
    assert problems_of(secretArgs=secret_args) == [f'objects[0] "a": {problem}']


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        pytest.param(None, "utf-8", id="default"),
        pytest.param("''", "utf-8", id="empty"),
        pytest.param("utf-8", "utf-8", id="utf-8"),
        pytest.param("UTF-8", "utf-8", id="UTF-8"),
        pytest.param("base64", "base64", id="base64"),
        pytest.param("BASE64", "base64", id="BASE64"),
        pytest.param("hex", "hex", id="hex"),
        pytest.param("Hex", "hex", id="Hex"),
    ],
)
def test_encoding(encoding: str | None, expected: str) -> None:
    """utf-8, base64 and hex in any case; utf-8 when absent."""
    assert parse_one(encoding=encoding).encoding == expected


@pytest.mark.parametrize(
    ("encoding", "shown"),
    [
        pytest.param("utf8", "utf8", id="utf8-without-dash"),
        pytest.param("Base32", "base32", id="base32"),
        pytest.param("base64url", "base64url", id="base64url"),
        pytest.param("binary", "binary", id="binary"),
    ],
)
def test_encoding_rejected(encoding: str, shown: str) -> None:
    """Any other encoding is refused, naming the three accepted ones."""
    assert problems_of(encoding=encoding) == [
        f"objects[0] \"a\": encoding '{shown}' is not one of utf-8, base64, hex"
    ]


@pytest.mark.parametrize(
    ("permission", "mode"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("~", None, id="null"),
        pytest.param("0600", 0o600, id="yaml-1.1-octal"),
        pytest.param("0o600", 0o600, id="yaml-1.2-octal"),
        pytest.param("384", 0o600, id="decimal"),
        pytest.param("'0600'", 0o600, id="quoted-octal"),
        pytest.param('"0o644"', 0o644, id="quoted-0o-octal"),
        pytest.param("'384'", 0o600, id="quoted-decimal"),
        pytest.param("0x1A4", 0o644, id="hex"),
        pytest.param("0o777", 0o777, id="maximum"),
        pytest.param("0400", 0o400, id="read-only"),
        pytest.param("0", None, id="zero-means-request-permission"),
        pytest.param("0o0", None, id="zero-octal"),
    ],
)
def test_file_permission(permission: str | None, mode: int | None) -> None:
    """filePermission in every form upstream accepts; 0 and absent mean the request's permission."""
    assert parse_one(filePermission=permission).file_mode == mode


@pytest.mark.parametrize(
    ("permission", "problem"),
    [
        pytest.param("0o1000", "filePermission '0o1000' is outside 0 to 0777", id="above-0777"),
        pytest.param("512", "filePermission '512' is outside 0 to 0777", id="decimal-above-0777"),
        pytest.param("600", "filePermission '600' is outside 0 to 0777", id="decimal-600-is-not-octal"),
        pytest.param("-1", "filePermission '-1' is outside 0 to 0777", id="negative"),
        pytest.param("abc", "filePermission 'abc' is not a number such as 0600, 0o600 or 384", id="letters"),
        pytest.param(
            "rw-r--r--",
            "filePermission 'rw-r--r--' is not a number such as 0600, 0o600 or 384",
            id="symbolic",
        ),
        pytest.param("6.0", "filePermission '6.0' is not a number such as 0600, 0o600 or 384", id="float"),
        pytest.param(
            "0608", "filePermission '0608' is not a number such as 0600, 0o600 or 384", id="bad-octal"
        ),
        pytest.param("true", "filePermission 'true' is not a number such as 0600, 0o600 or 384", id="bool"),
        pytest.param(
            "'0-5'", "filePermission '0-5' is not a number such as 0600, 0o600 or 384", id="sign-inside"
        ),
        pytest.param("[0600]", "filePermission must be a number such as 0600, 0o600 or 384", id="list"),
    ],
)
def test_file_permission_rejected(permission: str, problem: str) -> None:
    """Modes outside 0-0777 and anything that is not an integer are refused, quoting what was written."""
    assert problems_of(filePermission=permission) == [f'objects[0] "a": {problem}']


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        pytest.param("secretkey", " (did you mean 'secretKey'? keys are case-sensitive)", id="secretkey"),
        pytest.param("SecretPath", " (did you mean 'secretPath'? keys are case-sensitive)", id="SecretPath"),
        pytest.param(
            "filepermission", " (did you mean 'filePermission'? keys are case-sensitive)", id="filepermission"
        ),
        pytest.param("secretArg", " (did you mean 'secretArgs'?)", id="secretArg"),
        pytest.param("encodng", " (did you mean 'encoding'?)", id="encodng"),
        pytest.param(
            "vaultAddress",
            "; known keys: objectName, secretPath, secretKey, method, secretArgs, encoding, filePermission,"
            " format, template, optional, secretKeyPointer",
            id="unrelated",
        ),
    ],
)
def test_unknown_key_rejected_with_suggestion(key: str, hint: str) -> None:
    """A typo'd key is refused (upstream silently writes the whole response) with the likely intended key."""
    assert problems_of(**{key: "x"}) == [f"objects[0] \"a\": unknown key '{key}'{hint}"]


@pytest.mark.parametrize(
    ("object_name", "name"),
    [
        pytest.param("no", "no", id="no-stays-no"),
        pytest.param("yes", "yes", id="yes"),
        pytest.param("true", "true", id="true-verbatim"),
        pytest.param("0600", "0600", id="octal-looking-verbatim"),
        pytest.param("1_000", "1_000", id="underscored-verbatim"),
        pytest.param("1.50", "1.50", id="float-looking-verbatim"),
        pytest.param("2001-12-14", "2001-12-14", id="date-verbatim"),
        pytest.param("a/b", "a/b", id="nested"),
        pytest.param("tls/ca/ca.crt", "tls/ca/ca.crt", id="deeply-nested"),
        pytest.param(".env", ".env", id="hidden-file"),
        pytest.param("'  spaced '", "  spaced ", id="quoted-spaces-kept"),
    ],
)
def test_object_name(object_name: str, name: str) -> None:
    """objectName is the scalar exactly as written, never YAML-typed (yaml.v3 into a string field)."""
    assert parse_one(objectName=object_name).name == name


@pytest.mark.parametrize(
    ("object_name", "problem"),
    [
        pytest.param(
            "/etc/passwd",
            "objects[0] \"/etc/passwd\": objectName must be a relative path (it starts with '/')",
            id="absolute",
        ),
        pytest.param("../x", "objects[0] \"../x\": objectName must not contain a '..' element", id="dotdot"),
        pytest.param(
            "..data",
            "objects[0] \"..data\": objectName must not start with '..' "
            "(the driver reserves such names, e.g. '..data')",
            id="dotdot-data",
        ),
        pytest.param(
            "a//b",
            "objects[0] \"a//b\": objectName must be a clean path (no '//', './', '/.' or trailing '/')",
            id="double-slash",
        ),
        pytest.param(
            "a/",
            "objects[0] \"a/\": objectName must be a clean path (no '//', './', '/.' or trailing '/')",
            id="trailing-slash",
        ),
        pytest.param(
            '"a\\tb"', 'objects[0] "a\tb": objectName contains a control or invisible character', id="tab"
        ),
        pytest.param(
            '"a\\x01b"', 'objects[0] "a\x01b": objectName contains a control or invisible character', id="soh"
        ),
        pytest.param(
            "x" * 256,
            f'objects[0] "{"x" * 256}": objectName has an element longer than 255 bytes',
            id="too-long",
        ),
        pytest.param(
            None, "objects[0]: objectName is required (it is the file name in the volume)", id="missing"
        ),
        pytest.param(
            "''", "objects[0]: objectName is required (it is the file name in the volume)", id="empty"
        ),
        pytest.param(
            "~", "objects[0]: objectName is required (it is the file name in the volume)", id="null"
        ),
    ],
)
def test_object_name_rejected(object_name: str | None, problem: str) -> None:
    """Names the driver would refuse are reported while parsing, by index and name."""
    assert problems_of(objectName=object_name) == [problem]


def test_secret_path_not_a_scalar() -> None:
    """A secretPath that is a list is reported as such (and as missing)."""
    assert problems_of(secretPath="[a, b]") == [
        'objects[0] "a": secretPath must be a single value, not a list or mapping',
        'objects[0] "a": secretPath is required, e.g. secret/data/my-app',
    ]


def test_object_name_not_a_scalar() -> None:
    """An objectName that is a list is reported as such (and as missing)."""
    assert problems_of(objectName="[a]") == [
        "objects[0]: objectName must be a single value, not a list or mapping",
        "objects[0]: objectName is required (it is the file name in the volume)",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "", "objects is empty: list at least one object with objectName and secretPath", id="empty"
        ),
        pytest.param(
            "~", "objects is empty: list at least one object with objectName and secretPath", id="null"
        ),
        pytest.param(
            "[]", "objects is empty: list at least one object with objectName and secretPath", id="empty-list"
        ),
        pytest.param(
            "# nothing\n",
            "objects is empty: list at least one object with objectName and secretPath",
            id="comment",
        ),
        pytest.param(
            "objectName: a\nsecretPath: p",
            "objects must be a YAML list of objects (each starting with '- objectName: ...')",
            id="mapping-not-list",
        ),
        pytest.param(
            "a",
            "objects must be a YAML list of objects (each starting with '- objectName: ...')",
            id="scalar",
        ),
        pytest.param(
            "- objectName: a\n  secretPath: [p",
            "objects is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 17",
            id="not-yaml",
        ),
        pytest.param(
            "- a\n",
            "objects[0] must be a mapping with objectName and secretPath (line 1, column 3)",
            id="entry-scalar",
        ),
        pytest.param(
            "- [a]\n",
            "objects[0] must be a mapping with objectName and secretPath (line 1, column 3)",
            id="entry-list",
        ),
        pytest.param(
            "- objectName: a\n  secretPath: p\n  objectName: b\n",
            'objects[0]: key "objectName" appears twice (line 1, column 3 and line 3, column 3)',
            id="duplicate-key",
        ),
    ],
)
def test_document_problems(text: str, problem: str) -> None:
    """An empty, non-list or non-YAML `objects`, or an entry that is not a mapping, is one clear problem."""
    assert parse_objects(text) == ((), [problem])


def test_yaml_merge_key_in_object() -> None:
    """yaml.v3 applies `<<: *anchor` merge keys, so shared settings via anchors work as upstream."""
    objects, problems = parse_objects(
        "- &shared {objectName: a, secretPath: secret/data/app, method: PUT}\n"
        "- <<: *shared\n  objectName: b\n"
    )
    assert problems == []
    assert [(obj.name, obj.request.describe()) for obj in objects] == [
        ("a", "PUT /v1/secret/data/app"),
        ("b", "PUT /v1/secret/data/app"),
    ]


def test_duplicate_names_name_every_index() -> None:
    """One problem per duplicated name, listing every object that uses it."""
    text = (
        "- {objectName: a, secretPath: p}\n- {objectName: b, secretPath: q}\n"
        "- {objectName: a, secretPath: r}\n- {objectName: a, secretPath: s}\n"
        "- {objectName: b, secretPath: t}\n"
    )
    _, problems = parse_objects(text)
    assert problems == [
        'objectName "a" is used by objects[0], objects[2], objects[3]; each object needs its own file name',
        'objectName "b" is used by objects[1], objects[4]; each object needs its own file name',
    ]


def test_file_and_directory_conflict() -> None:
    """`a` and `a/b` cannot both be files."""
    _, problems = parse_objects("- {objectName: a/b, secretPath: p}\n- {objectName: a, secretPath: q}\n")
    assert problems == ['objectName "a" is a file, so "a/b" cannot be a file inside it']


def test_several_problems_reported_at_once() -> None:
    """Every problem of every object comes back in one list, in order, each naming its object."""
    text = (
        "- {objectName: ok, secretPath: p}\n"
        "- {objectName: m, secretPath: p, method: DELETE, encoding: rot13}\n"
        "- {objectName: /abs}\n"
        "- {objectName: ok, secretPath: q, secretkey: k}\n"
    )
    objects, problems = parse_objects(text)
    assert [obj.name for obj in objects] == ["ok"]
    assert problems == [
        "objects[1] \"m\": method 'DELETE' is not allowed; use GET to read, PUT or POST to issue",
        "objects[1] \"m\": encoding 'rot13' is not one of utf-8, base64, hex",
        "objects[2] \"/abs\": objectName must be a relative path (it starts with '/')",
        'objects[2] "/abs": secretPath is required, e.g. secret/data/my-app',
        "objects[3] \"ok\": unknown key 'secretkey' (did you mean 'secretKey'? keys are case-sensitive)",
        'objectName "ok" is used by objects[0], objects[3]; each object needs its own file name',
    ]


def test_indexes_and_order_kept() -> None:
    """Objects come back in document order with their index."""
    objects, problems = parse_objects("- {objectName: z, secretPath: p}\n- {objectName: a, secretPath: p}\n")
    assert problems == []
    assert [(obj.index, obj.name) for obj in objects] == [(0, "z"), (1, "a")]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"objectName": "b"}, id="objectName"),
        pytest.param({"secretPath": "secret/data/b"}, id="secretPath"),
        pytest.param({"secretPath": "'secret/data/a?version=2'"}, id="secretPath-query"),
        pytest.param({"secretKey": "password"}, id="secretKey"),
        pytest.param({"method": "PUT"}, id="method"),
        pytest.param({"secretArgs": "{ttl: 1h}"}, id="secretArgs"),
        pytest.param({"secretArgs": "{ttl: 2h}"}, id="secretArgs-value"),
        pytest.param({"secretArgs": "{}"}, id="secretArgs-empty"),
        pytest.param({"encoding": "base64"}, id="encoding"),
        pytest.param({"filePermission": "0600"}, id="filePermission"),
        pytest.param({"filePermission": "0640"}, id="filePermission-other"),
    ],
)
def test_fingerprint_differs_when_any_field_changes(change: dict[str, str]) -> None:
    """The versions' HMAC input changes with every field, so a changed object gets a new version."""
    fingerprints = {parse_one().fingerprint}
    for key, value in change.items():
        fingerprints.add(parse_one(**{key: value}).fingerprint)
    assert len(fingerprints) == 2


def test_fingerprints_of_all_changes_are_distinct() -> None:
    """No two single-field changes collide."""
    changes = [
        {},
        {"objectName": "b"},
        {"secretPath": "secret/data/b"},
        {"secretKey": "password"},
        {"method": "PUT"},
        {"secretArgs": "{ttl: 1h}"},
        {"secretArgs": "{ttl: 2h}"},
        {"encoding": "base64"},
        {"encoding": "hex"},
        {"filePermission": "0600"},
    ]
    fingerprints = [parse_one(**change).fingerprint for change in changes]
    assert len(set(fingerprints)) == len(changes)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param({}, {"encoding": "UTF-8"}, id="encoding-case"),
        pytest.param({}, {"method": "get"}, id="method-case-and-default"),
        pytest.param({}, {"filePermission": "0"}, id="zero-permission-is-absent"),
        pytest.param({"filePermission": "0600"}, {"filePermission": "0o600"}, id="octal-spellings"),
        pytest.param({"secretArgs": "{b: 1, a: 2}"}, {"secretArgs": "{a: 2, b: 1}"}, id="args-order"),
    ],
)
def test_fingerprint_same_for_equivalent_spellings(first: dict[str, str], second: dict[str, str]) -> None:
    """Spellings that mean the same configuration give the same fingerprint."""
    assert parse_one(**first).fingerprint == parse_one(**second).fingerprint


def requests_of(text: str) -> list[VaultRequest]:
    """The requests of a valid objects document, in order."""
    objects, problems = parse_objects(text)
    assert problems == []
    return [obj.request for obj in objects]


def test_username_and_password_of_one_lease_are_one_request() -> None:
    """Two keys of one database creds path are the same request, so they come from one lease."""
    username, password = requests_of(
        "- {objectName: user, secretPath: database/creds/app, secretKey: username}\n"
        "- {objectName: pass, secretPath: /v1/database/creds/app, secretKey: password}\n"
    )
    assert username == password
    assert hash(username) == hash(password)


def test_pki_objects_with_different_args_are_different_requests() -> None:
    """secretArgs take part in request equality: two common names are two certificates (upstream got one)."""
    first, second = requests_of(
        "- {objectName: a.crt, secretPath: pki/issue/web, method: PUT, secretArgs: {common_name: a.ex}}\n"
        "- {objectName: b.crt, secretPath: pki/issue/web, method: PUT, secretArgs: {common_name: b.ex}}\n"
    )
    assert first != second
    assert len({first, second}) == 2


@pytest.mark.parametrize(
    ("other", "equal"),
    [
        pytest.param("{objectName: b, secretPath: x, method: PUT, secretArgs: {n: 1}}", True, id="same"),
        pytest.param("{objectName: b, secretPath: x, method: POST, secretArgs: {n: 1}}", False, id="method"),
        pytest.param("{objectName: b, secretPath: y, method: PUT, secretArgs: {n: 1}}", False, id="path"),
        pytest.param(
            "{objectName: b, secretPath: 'x?v=1', method: PUT, secretArgs: {n: 1}}", False, id="query"
        ),
        pytest.param("{objectName: b, secretPath: x, method: PUT, secretArgs: {n: 2}}", False, id="args"),
        pytest.param("{objectName: b, secretPath: x, method: PUT}", False, id="no-args"),
        pytest.param(
            "{objectName: b, secretPath: x, method: PUT, secretArgs: {n: 1}, secretKey: k, encoding: hex}",
            True,
            id="key-and-encoding-do-not-matter",
        ),
    ],
)
def test_request_equality(other: str, equal: bool) -> None:
    """Requests are equal exactly when method, path, query and body are."""
    first, second = requests_of(
        f"- {{objectName: a, secretPath: x, method: PUT, secretArgs: {{n: 1}}}}\n- {other}\n"
    )
    assert (first == second) is equal


def test_request_never_shows_its_body() -> None:
    """describe() and repr() name method and path, never the secretArgs body."""
    obj = parse_one(method="PUT", secretArgs="{password: hunter2-secret}")
    assert obj.request.describe() == "PUT /v1/secret/data/a"
    assert "hunter2-secret" not in repr(obj.request)
    assert "hunter2-secret" not in repr(obj)
    assert gojson.loads(obj.request.body or "") == {"password": "hunter2-secret"}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"secretArgs": "{password: hunter2-secret, n: .inf}"}, id="non-finite-arg"),
        pytest.param({"secretArgs": "{password: hunter2-secret, password: x}"}, id="duplicate-arg"),
        pytest.param({"secretArgs": "{password: hunter2-secret}", "method": "DELETE"}, id="bad-method"),
        pytest.param({"secretArgs": "{password: hunter2-secret", "method": "PUT"}, id="yaml-syntax-error"),
    ],
)
def test_problems_never_quote_secret_args_values(change: dict[str, str]) -> None:
    """No problem text carries a secretArgs value."""
    _, problems = parse_objects(objects_yaml(**change))
    assert problems
    assert not any("hunter2-secret" in problem for problem in problems)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("format: data", "data", id="data"),
        pytest.param("format: files", "files", id="files"),
        pytest.param("format: ''", "", id="empty-is-default"),
    ],
)
def test_format_values(line: str, expected: str) -> None:
    """format takes data (the secret as JSON) or files (a file per key); empty means the usual output."""
    objects, problems = parse_objects(f"- objectName: a\n  secretPath: secret/data/x\n  {line}\n")
    assert problems == []
    assert objects[0].format == expected


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            "format: yaml",
            "objects[0] \"a\": format 'yaml' is not data (the secret as JSON) or files (a file per key)",
            id="unknown",
        ),
        pytest.param(
            "format: files\n  secretKey: k",
            'objects[0] "a": format files writes the whole secret; remove secretKey or format',
            id="with-secret-key",
        ),
    ],
)
def test_format_rejected(lines: str, message: str) -> None:
    """An unknown format, or a format next to secretKey, is refused naming the object."""
    _, problems = parse_objects(f"- objectName: a\n  secretPath: secret/data/x\n  {lines}\n")
    assert problems == [message]


def test_format_changes_the_fingerprint_only_when_set() -> None:
    """Objects without format keep the fingerprint (so the version) they had before format existed."""
    plain, _ = parse_objects("- objectName: a\n  secretPath: secret/data/x\n")
    files, _ = parse_objects("- objectName: a\n  secretPath: secret/data/x\n  format: files\n")
    assert '"format"' not in plain[0].fingerprint
    assert files[0].fingerprint != plain[0].fingerprint


# --- optional and secretKeyPointer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "optional"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param("true", True, id="true"),
        pytest.param("'True'", True, id="quoted-go-form"),
        pytest.param("false", False, id="false"),
    ],
)
def test_optional(text: str | None, optional: bool) -> None:
    """optional is a boolean in Go's forms; it does not change the object's version input."""
    obj = parse_one(optional=text)
    assert obj.optional is optional
    assert obj.fingerprint == parse_one().fingerprint


def test_optional_must_be_a_boolean() -> None:
    assert problems_of(optional="maybe") == [
        "objects[0] \"a\": optional 'maybe' is not a boolean (use true or false)"
    ]


@pytest.mark.parametrize(
    ("pointer", "keys"),
    [
        pytest.param("/config/db/password", ("config", "db", "password"), id="nested"),
        pytest.param("/servers/0/host", ("servers", "0", "host"), id="list-index"),
        pytest.param("/a~1b/c~0d", ("a/b", "c~d"), id="escapes"),
        pytest.param("/a.b", ("a.b",), id="dots-are-plain"),
        pytest.param("/", None, id="root-refused"),
    ],
)
def test_secret_key_pointer(pointer: str, keys: tuple[str, ...] | None) -> None:
    """RFC 6901: '/'-separated keys, ~1 for '/' and ~0 for '~'; the whole secret is not a pointer."""
    if keys is None:
        assert problems_of(secretKeyPointer=f"'{pointer}'") == [
            "objects[0] \"a\": secretKeyPointer '/' must be a JSON Pointer such as /config/db/password"
        ]
        return
    obj = parse_one(secretKeyPointer=f"'{pointer}'")
    assert obj.key_pointer == keys
    assert obj.fingerprint != parse_one().fingerprint


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        pytest.param(
            {"secretKeyPointer": "config/db"},
            "secretKeyPointer 'config/db' must be a JSON Pointer such as /config/db/password",
            id="no-leading-slash",
        ),
        pytest.param(
            {"secretKeyPointer": "/a~2"},
            "secretKeyPointer '/a~2' has a '~' not followed by 0 or 1",
            id="bad-tilde",
        ),
        pytest.param(
            {"secretKeyPointer": "/a", "secretKey": "b"},
            "secretKeyPointer selects one value; remove secretKey",
            id="with-secret-key",
        ),
        pytest.param(
            {"secretKeyPointer": "/a", "format": "data"},
            "secretKeyPointer selects one value; remove format",
            id="with-format",
        ),
    ],
)
def test_bad_secret_key_pointer(changes: dict[str, str], problem: str) -> None:
    assert problems_of(**changes) == [f'objects[0] "a": {problem}']
