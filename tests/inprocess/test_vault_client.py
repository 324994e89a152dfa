"""VaultClient in-process: odd answers become the right error, retries stay within their rules.

Each case hands the client a MockTransport that answers as Vault (or something in
front of it) might; the client's own code does the rest. The same paths run against a
real OpenBao and a faulting proxy in tests/integration/test_faults.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fake_vault import MockTransport, answer

from provider.errors import (
    PermissionDenied,
    ProviderError,
    SecretNotFound,
    VaultRejected,
    VaultUnavailable,
)
from provider.request.vault_request import VaultRequest
from provider.settings import TlsSettings
from provider.vault.client import MAX_SENT_AHEAD, VaultClient, VaultReply
from provider.vault.deadline import Deadline
from provider.vault.request_counts import request_kind
from provider.vault.retry import RetryPolicy
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse

TARGET = VaultTarget("https://vault.test:8200", "flag", namespace="team-a")
WHERE = "https://vault.test:8200 (from the -vault-addr flag)"
READ = VaultRequest("GET", "/v1/secret/data/app")
TOKEN = "hvs.CAESIJ-a-token-that-must-never-show"
# Waits short enough for a unit test; the shape (3 attempts, jitter) is the production one.
FAST = RetryPolicy(attempts=3, base=0.002, cap=0.004)


class Counted:
    """The client's RequestCounter: every (kind, status) it reported, and every failover's reason."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int | None]] = []
        self.failovers: list[str] = []

    def vault_request(self, kind: str, status: int | None) -> None:
        self.seen.append((kind, status))

    def vault_failover(self, reason: str) -> None:
        self.failovers.append(reason)


class Script:
    """Answers in order (the last one repeats); an exception in the list is raised instead."""

    def __init__(self, *steps: HttpResponse | Exception) -> None:
        self.steps = list(steps)
        self.sent: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, Exception):
            raise step
        return step


def client(handler: Callable[[HttpRequest], HttpResponse], counter: Counted | None = None) -> VaultClient:
    return VaultClient(lambda target: MockTransport(handler), counter or Counted(), FAST, random=lambda: 0.5)


def send(
    handler: Callable[[HttpRequest], HttpResponse], request: VaultRequest = READ, seconds: float = 5.0
) -> object:
    return client(handler).send(TARGET, request, Deadline(seconds), TOKEN).payload


def failure(script: Script, request: VaultRequest = READ, seconds: float = 5.0) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        send(script, request, seconds)
    return caught.value


SEALED = answer(503, {"errors": ["Vault is sealed"]})
OK = answer(200, {"data": {"data": {"password": "pw"}}})


@pytest.mark.parametrize(
    ("steps", "kind", "message", "status", "attempts"),
    [
        pytest.param(
            [HttpResponse(200, {}, b"<html>proxy login</html>")],
            VaultUnavailable,
            f"Vault at {WHERE} answered 200 with a body that is not JSON",
            200,
            1,
            id="200-not-json",
        ),
        pytest.param(
            [SEALED],
            VaultUnavailable,
            f"Vault at {WHERE} is sealed or unavailable (503): Vault is sealed (after 3 attempts)",
            503,
            3,
            id="sealed-every-time",
        ),
        pytest.param(
            [answer(412, {"errors": []})],
            VaultUnavailable,
            f"Vault at {WHERE} has not caught up with a recent write yet (412) (after 3 attempts)",
            412,
            3,
            id="412-every-time",
        ),
        pytest.param(
            [answer(501, {"errors": ["not implemented"]})],
            VaultUnavailable,
            f"Vault at {WHERE} failed with HTTP 501: not implemented",
            501,
            1,
            id="501-not-retried",
        ),
        pytest.param(
            [answer(307, None, {"Location": "https://vault-1.vault.svc:8200/v1/secret/data/app"})],
            VaultRejected,
            f"Vault at {WHERE} redirected the request (307) to vault-1.vault.svc:8200, which is not one of "
            "its addresses or -allowed-vault-addresses; list the cluster's nodes in the address, or put a "
            "load balancer in front of Vault",
            307,
            1,
            id="redirect-reported-not-followed",
        ),
        pytest.param(
            [answer(404, {"errors": []})], SecretNotFound, "not found (404)", 404, 1, id="404-without-reasons"
        ),
        pytest.param(
            [answer(403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]})],
            PermissionDenied,
            "permission denied (403): permission denied",
            403,
            1,
            id="403-multierror-unwrapped",
        ),
        pytest.param(
            [answer(400, {"errors": ["missing client token", {"code": 7}, "and another"]})],
            VaultRejected,
            "Vault rejected the request (HTTP 400): missing client token; and another",
            400,
            1,
            id="400-reasons-joined-non-strings-dropped",
        ),
        pytest.param(
            [answer(502, {"detail": "a body that is not Vault's"})],
            VaultUnavailable,
            f"Vault at {WHERE} failed with HTTP 502 (after 3 attempts)",
            502,
            3,
            id="502-body-never-shown",
        ),
    ],
)
def test_odd_answers(
    steps: list[HttpResponse], kind: type[ProviderError], message: str, status: int | None, attempts: int
) -> None:
    """Each odd answer is one error of the right class and words, with its status; retried only if passing."""
    script = Script(*steps)
    error = failure(script)
    assert type(error) is kind
    assert str(error) == message
    assert error.status == status
    assert len(script.sent) == attempts


def test_passing_failures_then_success() -> None:
    """500 and 429 (Retry-After: 0) are retried; the third answer is served."""
    script = Script(answer(500), answer(429, {"errors": []}, {"Retry-After": "0"}), OK)
    assert send(script) == {"data": {"data": {"password": "pw"}}}
    assert len(script.sent) == 3


def test_retry_after_beyond_the_deadline_fails_at_once() -> None:
    """A Retry-After longer than the time left is not waited for: one attempt, the 429 reported."""
    script = Script(answer(429, {"errors": ["rate limited"]}, {"Retry-After": "30"}))
    error = failure(script, seconds=1.0)
    assert str(error) == f"Vault at {WHERE} is rate limiting requests (429): rate limited"
    assert (error.retry_after, len(script.sent)) == (30.0, 1)


@pytest.mark.parametrize(
    ("seconds", "attempts", "message"),
    [
        # 0.05 s of wait fits in 0.12 s, but not with the answer's reserve (0.1 s): no retry.
        pytest.param(0.12, 1, "", id="no-room-for-the-answer"),
        pytest.param(2.0, 3, " (after 3 attempts)", id="room-for-every-retry"),
    ],
)
def test_a_retry_is_made_only_when_it_and_its_answer_fit(seconds: float, attempts: int, message: str) -> None:
    """Near the deadline the error is answered at once, so it reaches the caller before its deadline."""
    script = Script(answer(429, {"errors": ["rate limited"]}, {"Retry-After": "0.05"}))
    error = failure(script, seconds=seconds)
    assert isinstance(error, VaultUnavailable)
    assert str(error) == f"Vault at {WHERE} is rate limiting requests (429): rate limited{message}"
    assert len(script.sent) == attempts


def test_the_attempts_suffix_keeps_the_errors_fields() -> None:
    """'(after 3 attempts)' is added without losing the status, the reasons or the retry information."""
    error = failure(Script(answer(503, {"errors": ["Vault is sealed"]}, {"Retry-After": "0"})))
    assert isinstance(error, VaultUnavailable)
    assert (error.status, error.reasons, error.retryable, error.retry_after) == (
        503,
        "Vault is sealed",
        True,
        0.0,
    )


def test_transport_failures_are_retried_and_counted_without_a_status() -> None:
    """A retryable transport error (a reset, say) is retried; the counter sees (kind, None) per failure."""
    counter = Counted()
    script = Script(VaultUnavailable("cannot reach Vault", retryable=True), OK)
    client(script, counter).send(TARGET, READ, Deadline(5), TOKEN)
    assert counter.seen == [("read", None), ("read", 200)]


def test_final_transport_failures_are_not_retried() -> None:
    """A transport error that says it will not pass (TLS, an unknown host) is raised as it is."""
    script = Script(VaultRejected("TLS with Vault failed"))
    error = failure(script)
    assert (type(error), str(error), len(script.sent)) == (VaultRejected, "TLS with Vault failed", 1)


def test_reasons_never_show_the_token_or_a_body_value() -> None:
    """Vault echoes what it was sent; the token and every string of the body are redacted."""
    issue = VaultRequest(
        "PUT", "/v1/pki/issue/web", body=json.dumps({"common_name": "internal.corp.example"})
    )
    echo = answer(400, {"errors": [f"common name internal.corp.example not allowed for token {TOKEN}"]})
    error = failure(Script(echo), issue)
    assert (
        str(error)
        == "Vault rejected the request (HTTP 400): common name [redacted] not allowed for token [redacted]"
    )


def test_reasons_are_cut_after_redaction() -> None:
    """Long reasons are cut to 300 characters, after the token is redacted (a cut token is unrecognisable)."""
    error = failure(Script(answer(400, {"errors": ["x" * 290 + TOKEN]})))
    assert error.reasons == "x" * 290 + "[redacted]"


def test_headers_vault_clients_send() -> None:
    """X-Vault-Request always; the token and namespace when set; JSON content type with a body."""
    script = Script(OK)
    send(script, VaultRequest("PUT", "/v1/pki/issue/web", (("a", "1"),), body='{"common_name":"a.test"}'))
    (sent,) = script.sent
    assert dict(sent.headers) == {
        "X-Vault-Request": "true",
        "X-Vault-Token": TOKEN,
        "X-Vault-Namespace": "team-a",
        "Content-Type": "application/json",
    }
    assert (sent.method, sent.path, sent.query, sent.body) == (
        "PUT",
        "/v1/pki/issue/web",
        (("a", "1"),),
        b'{"common_name":"a.test"}',
    )


def test_one_transport_per_address_and_tls_settings() -> None:
    """The namespace is a header: two namespaces share a transport; other TLS settings get their own."""
    made: list[VaultTarget] = []

    def factory(target: VaultTarget) -> MockTransport:
        made.append(target)
        return MockTransport(Script(OK))

    vault = VaultClient(factory, Counted(), FAST)
    for target in (
        TARGET,
        VaultTarget(TARGET.address, "flag", namespace="team-b"),
        VaultTarget(TARGET.address, "flag", tls=TlsSettings(ca_cert="/ca.pem")),
    ):
        vault.send(target, READ, Deadline(5), TOKEN)
    assert [target.tls.ca_cert for target in made] == ["", "/ca.pem"]


@pytest.mark.parametrize(
    ("request_", "kind"),
    [
        pytest.param(VaultRequest("POST", "/v1/auth/kubernetes/login"), "login", id="login"),
        pytest.param(VaultRequest("POST", "/v1/auth/k8s/prod/login"), "login", id="login-nested-mount"),
        pytest.param(VaultRequest("POST", "/v1/auth/token/renew-self"), "renew", id="token-renew"),
        pytest.param(VaultRequest("PUT", "/v1/sys/leases/renew"), "renew", id="lease-renew"),
        pytest.param(VaultRequest("PUT", "/v1/sys/leases/lookup"), "lookup", id="lease-lookup"),
        pytest.param(VaultRequest("POST", "/v1/auth/token/revoke-self"), "revoke", id="revoke"),
        pytest.param(
            VaultRequest("GET", "/v1/sys/internal/ui/mounts/secret/app"), "mount-info", id="mount-info"
        ),
        pytest.param(READ, "read", id="read"),
        pytest.param(VaultRequest("PUT", "/v1/pki/issue/web"), "write", id="write"),
    ],
)
def test_request_kinds(request_: VaultRequest, kind: str) -> None:
    """The metrics' kinds: a bounded set, never a path."""
    assert request_kind(request_) == kind


def test_send_all_sends_every_request_before_reading_any_answer() -> None:
    """One thread, Vault working on all of them at once; each outcome in its place, an error among them."""
    paths = ["/v1/secret/data/a", "/v1/secret/data/b", "/v1/secret/data/c"]

    def vault(request: HttpRequest) -> HttpResponse:
        if request.path.endswith("/b"):
            return answer(403, {"errors": ["permission denied"]})
        return answer(200, {"data": {"data": {"path": request.path}}})

    transport = MockTransport(vault)
    counted = Counted()
    outcomes = VaultClient(lambda target: transport, counted, FAST).send_all(
        TARGET, [VaultRequest("GET", path) for path in paths], Deadline(5), TOKEN
    )
    assert transport.events == [("sent", f"GET {path}") for path in paths] + [
        ("answered", f"GET {path}") for path in paths
    ]
    first, second, third = outcomes
    assert isinstance(first, VaultReply)
    assert first.payload["data"]["data"] == {"path": paths[0]}
    assert isinstance(second, PermissionDenied)
    assert (str(second), second.status) == ("permission denied (403): permission denied", 403)
    assert isinstance(third, VaultReply)
    assert third.payload["data"]["data"] == {"path": paths[2]}
    assert counted.seen == [("read", 200), ("read", 403), ("read", 200)]


def test_send_all_retries_a_passing_failure_as_send_does() -> None:
    """A sealed answer to one of them: that one alone is sent again after the back-off, then answered."""
    sealed_once = Script(SEALED, OK)

    def vault(request: HttpRequest) -> HttpResponse:
        return sealed_once(request) if request.path.endswith("/b") else OK

    transport = MockTransport(vault)
    outcomes = VaultClient(lambda target: transport, Counted(), FAST, random=lambda: 0.5).send_all(
        TARGET,
        [VaultRequest("GET", "/v1/secret/data/a"), VaultRequest("GET", "/v1/secret/data/b")],
        Deadline(5),
        TOKEN,
    )
    assert [outcome.payload for outcome in outcomes] == [json.loads(OK.body)] * 2  # type: ignore[union-attr]
    assert transport.events == [
        ("sent", "GET /v1/secret/data/a"),
        ("sent", "GET /v1/secret/data/b"),
        ("answered", "GET /v1/secret/data/a"),
        ("answered", "GET /v1/secret/data/b"),
        ("sent", "GET /v1/secret/data/b"),
        ("answered", "GET /v1/secret/data/b"),
    ]


def test_send_all_keeps_at_most_its_bound_ahead_and_gives_the_permits_back() -> None:
    """Beyond a Mount's first request, MAX_SENT_AHEAD go ahead; the rest go in turn, and a next
    Mount gets the same again."""
    transport = MockTransport(lambda request: OK)
    vault = VaultClient(lambda target: transport, Counted(), FAST)
    requests = [VaultRequest("GET", f"/v1/secret/data/{index}") for index in range(MAX_SENT_AHEAD + 3)]
    ahead = 1 + MAX_SENT_AHEAD
    expected = (
        [("sent", f"GET {request.path}") for request in requests[:ahead]]
        + [("answered", f"GET {request.path}") for request in requests[:ahead]]
        + [
            event
            for request in requests[ahead:]
            for event in (("sent", f"GET {request.path}"), ("answered", f"GET {request.path}"))
        ]
    )
    for _ in range(2):
        transport.events.clear()
        assert all(
            isinstance(outcome, VaultReply)
            for outcome in vault.send_all(TARGET, requests, Deadline(5), TOKEN)
        )
        assert transport.events == expected
