"""provider.errors: the error tree and redaction of sensitive strings."""

from __future__ import annotations

import pytest

from provider import errors
from provider.errors import InvalidRequest, ProviderError, redact


@pytest.mark.parametrize(
    ("text", "sensitive", "expected"),
    [
        pytest.param("nothing to hide", ["s3cr3t"], "nothing to hide", id="absent"),
        pytest.param(
            "cn s3cr3t.example is not allowed", ["s3cr3t.example"], "cn [redacted] is not allowed", id="one"
        ),
        pytest.param("tok tok tok", ["tok1"], "tok tok tok", id="prefix-of-value-not-redacted"),
        pytest.param("abcd abcd", ["abcd"], "[redacted] [redacted]", id="every-occurrence"),
        pytest.param("a=alpha1 b=bravo22", ["alpha1", "bravo22"], "a=[redacted] b=[redacted]", id="several"),
        pytest.param("value abcdef", ["abcd", "abcdef"], "value [redacted]", id="longest-first"),
        pytest.param("value abcdef", ["abcdef", "abcd"], "value [redacted]", id="longest-first-any-order"),
        pytest.param("role abc is bad", ["abc"], "role abc is bad", id="shorter-than-4-kept"),
        pytest.param("x 1234 y", ["1234"], "x [redacted] y", id="exactly-4-redacted"),
        pytest.param("text", [""], "text", id="empty-string-ignored"),
        pytest.param("text", [], "text", id="nothing-sensitive"),
        pytest.param("dup dupe", ["dupe", "dupe"], "dup [redacted]", id="repeated-sensitive-value"),
        pytest.param('{"jwt":"eyJ.x.y"}', ["eyJ.x.y"], '{"jwt":"[redacted]"}', id="token-in-json"),
    ],
)
def test_redact(text: str, sensitive: list[str], expected: str) -> None:
    """Every occurrence of a sensitive string of 4 or more characters becomes [redacted], longest first."""
    assert redact(text, sensitive) == expected


def test_redact_accepts_any_iterable() -> None:
    """Sensitive values may come from a generator (e.g. secretArgs values)."""
    assert redact("a hunter2 b", (value for value in ["hunter2"])) == "a [redacted] b"


@pytest.mark.parametrize(
    "cls",
    [
        errors.InvalidRequest,
        errors.PermissionDenied,
        errors.SecretNotFound,
        errors.VaultRejected,
        errors.VaultUnavailable,
        errors.ResponseTooLarge,
        errors.DeadlineExceeded,
        errors.Cancelled,
    ],
)
def test_every_error_is_a_provider_error(cls: type[ProviderError]) -> None:
    """The servicer can catch ProviderError and map each subclass; none carries a status by default."""
    assert issubclass(cls, ProviderError)
    assert cls.status is None


@pytest.mark.parametrize(
    ("problems", "message", "listed"),
    [
        pytest.param(
            "roleName is required", "roleName is required", ["roleName is required"], id="one-string"
        ),
        pytest.param(["a", "b"], "a; b", ["a", "b"], id="list"),
        pytest.param((p for p in ["x", "y", "z"]), "x; y; z", ["x", "y", "z"], id="generator"),
    ],
)
def test_invalid_request_lists_problems(problems: str | list[str], message: str, listed: list[str]) -> None:
    """InvalidRequest keeps each problem and joins them with '; ' in its message."""
    error = InvalidRequest(problems)
    assert str(error) == message
    assert error.problems == listed
