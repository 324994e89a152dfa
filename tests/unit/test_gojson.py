"""provider.gojson: JSON text byte-identical to Go's encoding/json (Go 1.23, as upstream is built)."""

from __future__ import annotations

from typing import Any

import pytest

from provider.render.gojson import JsonNumber, RawJson, dumps, dumps_fields, loads


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, "null", id="null"),
        pytest.param(True, "true", id="true"),
        pytest.param(False, "false", id="false"),
        pytest.param(0, "0", id="zero"),
        pytest.param(-17, "-17", id="negative-int"),
        pytest.param(2**64 - 1, "18446744073709551615", id="uint64-max"),
        pytest.param("", '""', id="empty-string"),
        pytest.param([], "[]", id="empty-list"),
        pytest.param({}, "{}", id="empty-map"),
        pytest.param((1, "a"), '[1,"a"]', id="tuple-is-array"),
        pytest.param([1, [2, {"k": None}]], '[1,[2,{"k":null}]]', id="nested-no-spaces"),
        pytest.param({"b": 1, "a": 2, "c": 3}, '{"a":2,"b":1,"c":3}', id="keys-sorted"),
        pytest.param({"a": 1, "B": 2, "_": 3}, '{"B":2,"_":3,"a":1}', id="keys-sorted-by-code-point"),
        pytest.param({"é": 1, "z": 2, "Z": 3}, '{"Z":3,"z":2,"é":1}', id="non-ascii-key-after-ascii"),
        pytest.param({"z": {"y": 1, "x": 2}}, '{"z":{"x":2,"y":1}}', id="nested-map-sorted"),
        pytest.param({"<k>": "&"}, '{"\\u003ck\\u003e":"\\u0026"}', id="keys-escaped-too"),
    ],
)
def test_dumps_values(value: Any, expected: str) -> None:
    """Compact output, map keys in Go's sorted order, every JSON type written as Go writes it."""
    assert dumps(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("plain", '"plain"', id="plain"),
        pytest.param("<script>", '"\\u003cscript\\u003e"', id="angle-brackets"),
        pytest.param("a&b", '"a\\u0026b"', id="ampersand"),
        pytest.param("\u2028\u2029", '"\\u2028\\u2029"', id="line-and-paragraph-separators"),
        pytest.param('"\\', '"\\"\\\\"', id="quote-and-backslash"),
        pytest.param("\n\r\t", '"\\n\\r\\t"', id="short-escapes"),
        pytest.param("\x00\x01\x1f", '"\\u0000\\u0001\\u001f"', id="control-chars-as-u00XX"),
        pytest.param("\x0b", '"\\u000b"', id="vertical-tab-as-u000b"),
        # Go 1.22 changed these two (release notes, encoding/json); upstream builds with Go 1.23.
        pytest.param("\b", '"\\b"', id="backspace-as-short-escape-since-go-1.22"),
        pytest.param("\f", '"\\f"', id="form-feed-as-short-escape-since-go-1.22"),
        pytest.param("\x7f", '"\x7f"', id="delete-unescaped"),
        pytest.param("é☃😀", '"é☃😀"', id="non-ascii-raw"),
        pytest.param("'", '"\'"', id="single-quote-unescaped"),
        pytest.param("\ud800", '"\ufffd"', id="lone-surrogate-becomes-replacement"),
    ],
)
def test_dumps_string_escapes(text: str, expected: str) -> None:
    """Strings escape HTML characters, U+2028/2029 and control characters exactly like Go."""
    assert dumps(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1.5, "1.5", id="fraction"),
        pytest.param(0.1, "0.1", id="shortest-repr"),
        pytest.param(100.0, "100", id="integral-without-point"),
        pytest.param(3e15, "3000000000000000", id="large-integral"),
        pytest.param(1e20, "100000000000000000000", id="just-below-exponent-cutoff"),
        pytest.param(0.0001, "0.0001", id="small-fixed"),
        pytest.param(1e21, "1e+21", id="exponent-cutoff"),
        pytest.param(1e100, "1e+100", id="three-digit-exponent"),
        pytest.param(2.5e-300, "2.5e-300", id="tiny"),
        # Go writes fixed notation down to 1e-6 ("ES6 number to string").
        pytest.param(1e-5, "0.00001", id="fixed-down-to-1e-6"),
        pytest.param(1e-6, "0.000001", id="fixed-at-1e-6"),
        # Go cleans e-07 to e-7: "exponents themselves are not padded to two digits".
        pytest.param(1e-7, "1e-7", id="negative-exponent-unpadded"),
        pytest.param(1.5e-8, "1.5e-8", id="negative-exponent-unpadded-with-fraction"),
        # Go prints the shortest digits that round-trip, not the exact binary value.
        pytest.param(float(2**60), "1152921504606847000", id="large-float-shortest-digits"),
        pytest.param(-0.0, "-0", id="negative-zero"),
    ],
)
def test_dumps_floats(value: float, expected: str) -> None:
    """Python floats (from YAML secretArgs) are written as Go's float64 encoder writes them."""
    assert dumps(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="inf"),
        pytest.param(float("-inf"), id="minus-inf"),
        pytest.param({"nested": [float("inf")]}, id="nested-inf"),
    ],
)
def test_dumps_rejects_non_finite(value: Any) -> None:
    """NaN and infinities have no JSON form (Go's Marshal fails too)."""
    with pytest.raises(ValueError, match=r"^NaN and infinities have no JSON form$"):
        dumps(value)


def test_dumps_rejects_unknown_types() -> None:
    """Anything that is not JSON data is a TypeError naming the type."""
    with pytest.raises(TypeError, match=r"^cannot encode bytes as JSON$"):
        dumps({"a": b"x"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("1", "1", id="int"),
        pytest.param("1.50", "1.50", id="trailing-zero-kept"),
        pytest.param("1e3", "1e3", id="exponent-kept"),
        pytest.param("1E+03", "1E+03", id="exponent-form-kept"),
        pytest.param("-0", "-0", id="negative-zero-kept"),
        pytest.param("12345678901234567890123", "12345678901234567890123", id="beyond-int64"),
        pytest.param("0.10000000000000000001", "0.10000000000000000001", id="beyond-float64-precision"),
        pytest.param('{"b":2.0,"a":[1e2]}', '{"a":[1e2],"b":2.0}', id="nested-numbers-kept"),
    ],
)
def test_numbers_survive_round_trip_verbatim(text: str, expected: str) -> None:
    """Numbers from loads are JsonNumber and dumps writes the exact text Vault sent (Go's UseNumber)."""
    assert dumps(loads(text)) == expected


def test_loads_numbers_are_json_number() -> None:
    """Both integers and floats come back as JsonNumber holding their source text."""
    value = loads('{"i": 7, "f": 7.0}')
    assert value == {"i": "7", "f": "7.0"}
    assert all(type(number) is JsonNumber for number in value.values())


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'"a\xffb"', "a\ufffdb", id="invalid-byte"),
        pytest.param(b'"\xc3\xa9"', "é", id="valid-utf8-bytes"),
        pytest.param(b'{"k\xfe":"v"}', {"k\ufffd": "v"}, id="invalid-byte-in-key"),
        # Go's decoder replaces each byte of a truncated sequence (utf8.DecodeRune gives size 1).
        pytest.param(b'"a\xe2\x82b"', "a\ufffd\ufffdb", id="truncated-two-of-three-bytes"),
        pytest.param(b'"\xf0\x9f\x98"', "\ufffd\ufffd\ufffd", id="truncated-three-of-four-bytes"),
        pytest.param('"\\ud800"', "\ud800", id="lone-surrogate-escape"),
        pytest.param('"\\ud83d\\ude00"', "😀", id="surrogate-pair-escape"),
    ],
)
def test_loads_invalid_utf8_becomes_replacement_character(data: bytes | str, expected: Any) -> None:
    """Invalid UTF-8 in a response becomes U+FFFD as Go's decoder does, one per bad byte."""
    assert loads(data) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("NaN", r"^NaN is not valid JSON$", id="nan"),
        pytest.param("[Infinity]", r"^Infinity is not valid JSON$", id="infinity"),
        pytest.param('{"a":-Infinity}', r"^-Infinity is not valid JSON$", id="minus-infinity"),
        pytest.param("{", r"^Expecting property name enclosed in double quotes", id="truncated"),
    ],
)
def test_loads_rejects_what_go_rejects(text: str, message: str) -> None:
    """Python's NaN/Infinity extensions are refused like any other invalid JSON."""
    with pytest.raises(ValueError, match=message):
        loads(text)


def test_dumps_fields_keeps_given_order() -> None:
    """dumps_fields writes a struct: keys in the given order, values encoded (maps inside sorted)."""
    text = dumps_fields([("z", 1), ("a", {"y": "<", "x": None}), ("m", [True])])
    assert text == '{"z":1,"a":{"x":null,"y":"\\u003c"},"m":[true]}'


def test_dumps_fields_escapes_keys() -> None:
    """Field names are escaped like any string."""
    assert dumps_fields([("a&b", "")]) == '{"a\\u0026b":""}'


def test_dumps_fields_empty() -> None:
    """No fields is an empty object."""
    assert dumps_fields([]) == "{}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(RawJson('{"z":1,"a":2}'), '{"z":1,"a":2}', id="raw-top-level-not-resorted"),
        pytest.param({"k": RawJson('{"z":1,"a":2}')}, '{"k":{"z":1,"a":2}}', id="raw-inside-map"),
        pytest.param([RawJson("<x>")], "[<x>]", id="raw-not-escaped"),
        pytest.param(JsonNumber("1.0"), "1.0", id="json-number-not-quoted"),
    ],
)
def test_raw_json_is_written_as_is(value: Any, expected: str) -> None:
    """RawJson and JsonNumber are already-encoded text and are neither quoted nor escaped."""
    assert dumps(value) == expected


def test_raw_json_as_struct_field() -> None:
    """A nested struct keeps its own field order inside dumps_fields."""
    inner = RawJson(dumps_fields([("token", "t"), ("accessor", "a")]))
    assert dumps_fields([("auth", inner)]) == '{"auth":{"token":"t","accessor":"a"}}'
