"""provider.yamldoc: YAML read the way gopkg.in/yaml.v3 (v3.0.1, upstream's version) reads it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from provider.request import yamldoc
from provider.request.yamldoc import YamlError, compose, plain_int, to_value


def load(text: str) -> Any:
    """compose then to_value, as the objects parser does for secretArgs."""
    node = compose(text)
    assert node is not None
    return to_value(node)


def scalar(text: str) -> Any:
    """The value yaml.v3 gives `text` as the value of a mapping decoded into interface{}."""
    return load(f"v: {text}")["v"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Booleans: only the three spellings of true and false (YAML 1.2 core schema).
        pytest.param("true", True, id="true"),
        pytest.param("True", True, id="True"),
        pytest.param("TRUE", True, id="TRUE"),
        pytest.param("false", False, id="false"),
        pytest.param("False", False, id="False"),
        pytest.param("FALSE", False, id="FALSE"),
        pytest.param("tRUE", "tRUE", id="mixed-case-true-is-string"),
        pytest.param("no", "no", id="no-is-string"),
        pytest.param("yes", "yes", id="yes-is-string"),
        pytest.param("on", "on", id="on-is-string"),
        pytest.param("off", "off", id="off-is-string"),
        pytest.param("y", "y", id="y-is-string"),
        pytest.param("n", "n", id="n-is-string"),
        # Integers: strconv.ParseInt(s, 0, 64) after dropping '_'.
        pytest.param("0", 0, id="zero"),
        pytest.param("384", 384, id="decimal"),
        pytest.param("+12", 12, id="plus-sign"),
        pytest.param("0600", 384, id="leading-zero-octal"),
        pytest.param("0o600", 384, id="0o-octal"),
        pytest.param("0O17", 15, id="0O-octal-uppercase"),
        pytest.param("0x1A4", 420, id="hex"),
        pytest.param("0X1F", 31, id="hex-uppercase-prefix"),
        pytest.param("-0x1A", -26, id="negative-hex"),
        pytest.param("0b110100100", 420, id="binary"),
        pytest.param("-0b11", -3, id="negative-binary"),
        pytest.param("1_000", 1000, id="underscores"),
        pytest.param("1__0", 10, id="double-underscore"),
        pytest.param("0_600", 384, id="underscore-octal"),
        pytest.param("18446744073709551615", 2**64 - 1, id="uint64-max"),
        pytest.param("0b", "0b", id="bare-0b-is-string"),
        pytest.param("0x", "0x", id="bare-0x-is-string"),
        pytest.param("+", "+", id="bare-plus-is-string"),
        # Floats.
        pytest.param("08", 8.0, id="08-is-float"),
        pytest.param("1.5", 1.5, id="float"),
        pytest.param(".5", 0.5, id="leading-dot-float"),
        pytest.param("1e3", 1000.0, id="exponent-float"),
        pytest.param("-0.0", -0.0, id="negative-zero-float"),
        pytest.param("18446744073709551616", 18446744073709551616.0, id="beyond-uint64-is-float"),
        pytest.param("-9223372036854775809", -9223372036854775809.0, id="below-int64-is-float"),
        pytest.param(".inf", math.inf, id="inf"),
        pytest.param("-.Inf", -math.inf, id="minus-inf"),
        pytest.param("+.INF", math.inf, id="plus-inf"),
        pytest.param(".", ".", id="bare-dot-is-string"),
        pytest.param("0x1p-2", "0x1p-2", id="hex-float-is-string"),
        # Null.
        pytest.param("", None, id="empty-is-null"),
        pytest.param("~", None, id="tilde"),
        pytest.param("null", None, id="null"),
        pytest.param("Null", None, id="Null"),
        pytest.param("NULL", None, id="NULL"),
        pytest.param("nULL", "nULL", id="mixed-case-null-is-string"),
        # Strings that look like other things.
        pytest.param("12:30", "12:30", id="sexagesimal-is-string"),
        pytest.param("1.2.3", "1.2.3", id="version-is-string"),
        pytest.param("0xZZ", "0xZZ", id="bad-hex-is-string"),
        pytest.param("09a", "09a", id="digits-and-letters-is-string"),
        pytest.param("0-5", "0-5", id="range-is-string"),
        pytest.param("0+5", "0+5", id="zero-plus-digit-is-string"),
        pytest.param("0 7", "0 7", id="zero-space-digit-is-string"),
        pytest.param("0x-1", "0x-1", id="sign-after-hex-prefix-is-string"),
        pytest.param("0x 1A", "0x 1A", id="space-after-hex-prefix-is-string"),
        pytest.param("1\u0663", "1\u0663", id="arabic-indic-digit-is-string"),
        # yaml.v3's own 0b fallback reads a sign after the prefix.
        pytest.param("0b-1", -1, id="sign-after-0b-prefix-quirk"),
    ],
)
def test_plain_scalars_follow_yaml_v3(text: str, expected: Any) -> None:
    """Unquoted scalars get yaml.v3's types, not PyYAML's YAML 1.1 ones."""
    value = scalar(text)
    assert value == expected
    assert type(value) is type(expected)
    if isinstance(expected, float) and expected == 0:
        assert math.copysign(1, value) == math.copysign(1, expected)


def test_nan_is_float_nan() -> None:
    """.nan, .NaN and .NAN are NaN floats."""
    assert all(math.isnan(scalar(text)) for text in (".nan", ".NaN", ".NAN"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param('"true"', "true", id="double-quoted-bool"),
        pytest.param("'0600'", "0600", id="single-quoted-octal"),
        pytest.param('"null"', "null", id="quoted-null"),
        pytest.param("''", "", id="quoted-empty"),
        pytest.param("'1_000'", "1_000", id="quoted-underscores"),
        pytest.param('"2001-12-14"', "2001-12-14", id="quoted-date"),
        pytest.param("'2001-12-14T21:59:43.10-05:00'", "2001-12-14T21:59:43.10-05:00", id="quoted-timestamp"),
        pytest.param("'~'", "~", id="quoted-tilde"),
        pytest.param('"no"', "no", id="quoted-no"),
        pytest.param("!!str 42", "42", id="str-tag"),
    ],
)
def test_quoted_scalars_stay_strings(text: str, expected: str) -> None:
    """A quoted (or !!str-tagged) scalar is always the string written, whatever it looks like."""
    value = scalar(text)
    assert value == expected
    assert type(value) is str


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("!!int 0o17", 15, id="int-tag"),
        pytest.param("!!float 1", 1.0, id="float-tag"),
        pytest.param("!!bool true", True, id="bool-tag"),
        pytest.param("!!null x", None, id="null-tag"),
    ],
)
def test_explicit_tags(text: str, expected: Any) -> None:
    """Explicit core tags convert their value."""
    value = scalar(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("v: !!int x", '"!!int" value at line 1, column 4 is not an integer', id="int-tag"),
        pytest.param("v: !!float x", '"!!float" value at line 1, column 4 is not a number', id="float-tag"),
        pytest.param(
            "v: !!bool yes", '"!!bool" value at line 1, column 4 is not true or false', id="bool-tag"
        ),
    ],
)
def test_bad_tagged_values(text: str, message: str) -> None:
    """A value that does not fit its explicit tag is an error with its position."""
    with pytest.raises(YamlError) as caught:
        load(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a: 1", {"a": 1}, id="mapping"),
        pytest.param("- 1\n- x", [1, "x"], id="sequence"),
        pytest.param("a: {b: [1, {c: no}]}", {"a": {"b": [1, {"c": "no"}]}}, id="nested"),
        pytest.param("1: x", {"1": "x"}, id="keys-are-their-text"),
        pytest.param("a: &x [1]\nb: *x", {"a": [1], "b": [1]}, id="alias-expanded"),
    ],
)
def test_structures(text: str, expected: Any) -> None:
    """Mappings become dicts keyed by the key's text, sequences lists, aliases their anchor's value."""
    assert load(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "a: 1\na: 2", 'key "a" appears twice (line 1, column 1 and line 2, column 1)', id="top-level"
        ),
        pytest.param(
            "- a: 1\n  b: 2\n  a: 3",
            'key "a" appears twice (line 1, column 3 and line 3, column 3)',
            id="in-list-item",
        ),
        pytest.param(
            "\"a\": x\n'a': y", 'key "a" appears twice (line 1, column 1 and line 2, column 1)', id="quoted"
        ),
        pytest.param(
            "x:\n  y: {k: 1, k: 2}",
            'key "k" appears twice (line 2, column 7 and line 2, column 13)',
            id="nested-flow",
        ),
        pytest.param("{[1]: x}", "a mapping key at line 1, column 2 is not a plain value", id="complex-key"),
    ],
)
def test_duplicate_and_complex_keys_are_errors(text: str, message: str) -> None:
    """A key written twice is an error naming both positions (yaml.v3 refuses it; PyYAML keeps the last)."""
    with pytest.raises(YamlError) as caught:
        load(text)
    assert str(caught.value) == message


def test_mapping_items_keeps_order_and_nodes() -> None:
    """mapping_items gives each key's text with its key and value nodes, in document order."""
    node = compose("b: 1\na: 2")
    assert node is not None
    items = yamldoc.mapping_items(node)  # type: ignore[arg-type]
    assert [(key, key_node.value, value.value) for key, key_node, value in items] == [
        ("b", "b", "1"),
        ("a", "a", "2"),
    ]


def billion_laughs(levels: int) -> str:
    """A document of a few hundred bytes that expands to 10**levels strings."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines)


def test_alias_expansion_bomb_is_rejected() -> None:
    """Aliases that expand past MAX_NODES values are refused instead of eating memory."""
    with pytest.raises(YamlError) as caught:
        load(billion_laughs(9))
    assert str(caught.value) == "the document expands to more than 10000 values (aliases?)"


def test_alias_expansion_under_the_limit_is_fine() -> None:
    """A thousand values through aliases is an ordinary document."""
    value = load(billion_laughs(3))
    assert len(value["l2"]) == 10
    assert value["l2"][0][0] == ["lol"] * 10


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("&a [*a]", id="sequence-contains-itself"),
        pytest.param("&a {x: *a}", id="mapping-contains-itself"),
    ],
)
def test_recursive_alias_is_a_yaml_error(text: str) -> None:
    """An anchor whose value contains itself is a YamlError (yaml.v3: "anchor 'a' value contains itself")."""
    with pytest.raises(YamlError, match=r"(?i)alias|anchor|itself|recurs|expands"):
        load(text)


def test_excessive_nesting_is_a_yaml_error() -> None:
    """Nesting deeper than yaml.v3 allows (10000) is a YamlError, not a crash of the parser."""
    depth = 20_000
    with pytest.raises(YamlError, match=r"(?i)nest|deep|depth"):
        load("[" * depth + "]" * depth)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '- objectName: a\n  secretArgs: {password: "hunter2-secret"\n',
            "expected ',' or '}', but got '<stream end>' at line 3, column 1",
            id="unclosed-flow-mapping",
        ),
        pytest.param(
            "password: hunter2-secret: x",
            "mapping values are not allowed here at line 1, column 25",
            id="colon-in-plain-value",
        ),
        pytest.param(
            "a: 'hunter2-secret\n",
            "found unexpected end of stream at line 2, column 1",
            id="unterminated-quote",
        ),
        pytest.param(
            "a:\thunter2-secret\n\t- b",
            "found character '\\t' that cannot start any token at line 1, column 3",
            id="tab-indentation",
        ),
        pytest.param(
            "a: [hunter2-secret\nb: 1",
            "expected ',' or ']', but got ':' at line 2, column 2",
            id="unclosed-flow-sequence",
        ),
        pytest.param(
            "a: *hunter2", "found undefined alias 'hunter2' at line 1, column 4", id="undefined-alias"
        ),
    ],
)
def test_syntax_errors_name_position_not_content(text: str, message: str) -> None:
    """A syntax error says what and where (1-based line and column), never quoting the line itself."""
    with pytest.raises(YamlError) as caught:
        compose(text)
    assert str(caught.value) == message
    assert "hunter2-secret" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n", id="comment"),
    ],
)
def test_empty_document_is_none(text: str) -> None:
    """A document with no content composes to None."""
    assert compose(text) is None


def test_more_than_one_document_is_an_error() -> None:
    """`objects` is one document; a second one is refused with its position."""
    with pytest.raises(YamlError) as caught:
        compose("- a\n---\n- b\n")
    assert str(caught.value) == "but found another document at line 2, column 1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0", 0, id="zero"),
        pytest.param("0600", 384, id="leading-zero-octal"),
        pytest.param("0o600", 384, id="0o-octal"),
        pytest.param("0x1a4", 420, id="hex-lowercase"),
        pytest.param("0b111", 7, id="binary"),
        pytest.param("-1", -1, id="negative"),
        pytest.param("+0o7", 7, id="plus-octal"),
        pytest.param("1_0", 10, id="underscore"),
        pytest.param("-9223372036854775808", -(2**63), id="int64-min"),
        pytest.param("18446744073709551615", 2**64 - 1, id="uint64-max"),
        pytest.param("18446744073709551616", None, id="beyond-uint64"),
        pytest.param("-9223372036854775809", None, id="below-int64"),
        pytest.param("08", None, id="bad-octal-digit"),
        pytest.param("0o8", None, id="bad-0o-digit"),
        pytest.param("", None, id="empty"),
        pytest.param("-", None, id="sign-only"),
        pytest.param("abc", None, id="letters"),
        pytest.param("1.0", None, id="float"),
        pytest.param("\u0663", None, id="non-ascii-digit"),
        pytest.param("\u0664\u0662\u0660", None, id="non-ascii-decimal"),
        pytest.param("0-5", None, id="sign-after-leading-zero"),
        pytest.param("0x-1", None, id="sign-after-hex-prefix"),
        pytest.param("0x 1A", None, id="space-after-hex-prefix"),
        pytest.param("0 7", None, id="space-after-leading-zero"),
        pytest.param(" 1", None, id="leading-space"),
    ],
)
def test_plain_int(text: str, expected: int | None) -> None:
    """plain_int reads what Go's strconv.ParseInt(s, 0, 64) (or ParseUint) reads, else None."""
    assert plain_int(text) == expected


def test_describe_is_one_based() -> None:
    """describe names a node's 1-based line and column."""
    node = compose("a:\n  - x\n")
    assert node is not None
    sequence = node.value[0][1]
    assert yamldoc.describe(sequence.value[0]) == "line 2, column 5"


@pytest.mark.parametrize(
    "char",
    [
        pytest.param("\x85", id="next-line"),
        pytest.param("\u2028", id="line-separator"),
        pytest.param("\u2029", id="paragraph-separator"),
    ],
)
def test_line_breaks_yaml_versions_disagree_on_are_refused(char: str) -> None:
    """A raw NEL/LS/PS is a line break to YAML 1.1 and text to YAML 1.2 (Go): refused, not guessed."""
    with pytest.raises(yamldoc.YamlError) as caught:
        yamldoc.compose(f"- objectName: a{char}b\n  secretPath: x")
    assert str(caught.value) == (
        f"contains U+{ord(char):04X} at offset 15, which YAML 1.1 and 1.2 read differently; "
        "write it as an escape in a double-quoted string"
    )
