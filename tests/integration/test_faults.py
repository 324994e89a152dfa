"""A sick Vault: faults injected by a proxy in front of the real OpenBao, seen through the real provider.

One provider process for the module points at a `FaultProxy` (tests/integration/fault_proxy.py)
that forwards to OpenBao unless a test scripted a fault for the next matching request. Each
test asserts what the proxy saw (how many attempts, how far apart), the total time against
the gRPC deadline, the final status code and message; after every test a normal Mount must
succeed on the same process (it keeps serving). Mounts are sent with a plain gRPC channel
without the driver's retry policy, so every attempt the proxy counts is the provider's own.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from fault_proxy import LOGIN, Drip, Fault, FaultProxy, Hang, Raw, Reset, Slow, Status, TcpRelay, Truncate
from harness import ProviderProcess, VaultEnv, provider_argv, provider_env, unique, write_key_file

from devkit import ServiceAccountTokenIssuer
from provider.v1alpha1 import service_pb2, service_pb2_grpc

pytestmark = pytest.mark.integration

NAMESPACE = "team-a"
SERVICE_ACCOUNT = "app"
SECRET_VALUE = "fault-suite-secret-7d2e91"
PLANTED_BODY = "planted-body-secret-5b8c03"
# Enough for every test here; the short-deadline tests pass their own.
DEADLINE_SECONDS = 10.0
# Scheduling slack on a loaded 2-core machine: what "right at the deadline" may overshoot by.
MARGIN_SECONDS = 0.75


@dataclass(frozen=True)
class Outcome:
    """What the caller of one Mount got, and how long it took."""

    code: grpc.StatusCode
    message: str
    files: dict[str, bytes]
    seconds: float


@pytest.fixture(scope="module")
def secret_path(vault: VaultEnv) -> str:
    path = unique("app/faults")
    vault.put_kv2(path, {"value": SECRET_VALUE})
    return path


@pytest.fixture(scope="module")
def read_path(secret_path: str) -> str:
    """The proxy pattern of the module's one KV read."""
    return rf"/v1/secret/data/{secret_path}"


@pytest.fixture(scope="module")
def proxy(vault: VaultEnv) -> Iterator[FaultProxy]:
    with FaultProxy(vault.address) as fault_proxy:
        yield fault_proxy


@pytest.fixture(scope="module")
def faulty(
    proxy: FaultProxy, issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    """The provider, with -vault-addr pointing at the proxy; it must exit 0 at the end."""
    directory = tmp_path_factory.mktemp("faulty-provider")
    socket_path = directory / "vault.sock"
    key_file = write_key_file(directory / "hmac.key")
    process = ProviderProcess(
        socket_path=socket_path,
        log_path=directory / "provider.log",
        key_file=key_file,
        issuer=issuer,
        argv=provider_argv(socket_path, vault_addr=proxy.url, key_file=key_file),
        env=provider_env(),
    )
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.kill()
        raise
    yield process
    assert process.stop() == 0, process.log_text()


@pytest.fixture(scope="module")
def stub(faulty: ProviderProcess) -> Iterator[Any]:
    """A Mount stub on a channel without the driver's retries: one call is one Mount."""
    with grpc.insecure_channel(f"unix://{faulty.socket_path}") as channel:
        yield service_pb2_grpc.CSIDriverProviderStub(channel)  # type: ignore[no-untyped-call]


@pytest.fixture(autouse=True)
def keeps_serving(proxy: FaultProxy, faulty: ProviderProcess, secret_path: str, stub: Any) -> Iterator[None]:
    """Around every test: no leftover faults before; after it, the same process still mounts normally."""
    proxy.reset()
    yield
    proxy.reset()
    assert faulty.proc is not None
    assert faulty.proc.poll() is None, faulty.log_text()
    after = mount(stub, faulty, parameters(secret_path), pod=unique("after"))
    assert after.code == grpc.StatusCode.OK, after.message
    assert after.files == {"value": SECRET_VALUE.encode()}


def parameters(secret_path: str, **extra: str) -> dict[str, str]:
    objects = f"- objectName: value\n  secretPath: secret/data/{secret_path}\n  secretKey: value\n"
    return {"roleName": "app", "objects": objects, **extra}


def request(process: ProviderProcess, params: dict[str, str], pod: str, token: str | None = None) -> Any:
    attributes, secrets = process.payload(
        params, namespace=NAMESPACE, service_account=SERVICE_ACCOUNT, pod_name=pod, token=token
    )
    return service_pb2.MountRequest(
        attributes=attributes,
        secrets=secrets,
        target_path=f"/var/lib/kubelet/pods/{pod}/mount",
        permission="420",
    )


def mount(
    stub: Any,
    process: ProviderProcess,
    params: dict[str, str],
    *,
    pod: str,
    timeout: float = DEADLINE_SECONDS,
    token: str | None = None,
) -> Outcome:
    """One Mount for pod team-a/<pod> with a fresh service-account token (so it always logs in)."""
    message = request(process, params, pod, token)
    started = time.monotonic()
    try:
        response = stub.Mount(message, timeout=timeout)
    except grpc.RpcError as exc:
        return Outcome(exc.code(), exc.details() or "", {}, time.monotonic() - started)
    files = {file.path: file.contents for file in response.files}
    return Outcome(grpc.StatusCode.OK, "", files, time.monotonic() - started)


def assert_clean(process: ProviderProcess, text: str) -> None:
    """No token the test sent, no secret value and no planted body in `text`."""
    for secret in [*process.tokens, SECRET_VALUE, PLANTED_BODY]:
        assert secret not in text


def mount_log(process: ProviderProcess, pod: str, timeout: float) -> tuple[float, str]:
    """(duration in seconds, code) of the provider's log line for pod team-a/<pod>; waits up to `timeout`."""
    pattern = re.compile(rf"mount pod={NAMESPACE}/{re.escape(pod)} .*duration_ms=([0-9.]+) code=(\w+)")
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search(process.log_text())
        if found:
            return float(found.group(1)) / 1000, found.group(2)
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line for the Mount of {pod} within {timeout} s")
        time.sleep(0.05)


def login_where(address: str, source: str = "the -vault-addr flag") -> str:
    return (
        f'login to Vault at {address} (from {source}) with role "app" on auth mount "kubernetes" '
        f"as service account {NAMESPACE}/{SERVICE_ACCOUNT}"
    )


def gaps(proxy: FaultProxy, path: str) -> list[float]:
    """Seconds between consecutive requests to `path`."""
    times = [seen.at for seen in proxy.requests(path)]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


# --- Passing failures are retried within the deadline ------------------------------------------


def test_two_500s_then_success(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """Login answered 500, 500, then by OpenBao: three login attempts, one read, the Mount succeeds."""
    proxy.inject(LOGIN, Status(500, ("internal error",)), Status(500, ("internal error",)))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("two-500"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert outcome.files == {"value": SECRET_VALUE.encode()}
    assert [seen.outcome for seen in proxy.requests(LOGIN)] == ["500", "500", "forwarded"]
    assert proxy.count(rf"/v1/secret/data/{secret_path}") == 1
    # Jittered exponential backoff: 0.125-0.25 s, then 0.25-0.5 s.
    first, second = gaps(proxy, LOGIN)
    assert 0.12 <= first <= 0.25 + MARGIN_SECONDS
    assert 0.25 <= second <= 0.5 + MARGIN_SECONDS


def test_sealed_vault_gives_up_after_three_attempts(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """Four 503s scripted: the provider stops after three attempts with UNAVAILABLE, inside the deadline."""
    proxy.inject(LOGIN, *[Status(503, ("Vault is sealed",))] * 4)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("sealed"))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message == (
        f"{login_where(proxy.url)} failed: Vault at {proxy.url} (from the -vault-addr flag) "
        "is sealed or unavailable (503): Vault is sealed (after 3 attempts)"
    )
    assert proxy.count(LOGIN) == 3
    assert proxy.pending() == 1
    assert proxy.count(rf"/v1/secret/data/{secret_path}") == 0
    # Two backoffs (at least 0.125 + 0.25 s), far less than the 10 s deadline.
    assert 0.375 <= outcome.seconds < 3.0
    assert_clean(faulty, outcome.message)


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(412, id="412"),
        pytest.param(429, id="429-without-retry-after"),
        pytest.param(500, id="500"),
        pytest.param(502, id="502"),
        pytest.param(503, id="503"),
        pytest.param(504, id="504"),
    ],
)
def test_retried_statuses_on_a_read(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str, status: int
) -> None:
    """One passing failure on the secret read: it is sent again and the Mount succeeds with one login."""
    proxy.inject(read_path, Status(status))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique(f"read-{status}"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert [seen.outcome for seen in proxy.requests(read_path)] == [str(status), "forwarded"]
    assert proxy.count(LOGIN) == 1


def test_retry_after_is_honoured(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """429 with Retry-After: 1 on the login: the second attempt comes no sooner than 1 s later."""
    proxy.inject(LOGIN, Status(429, ("rate limited",), {"Retry-After": "1"}))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("retry-after"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert proxy.count(LOGIN) == 2
    (gap,) = gaps(proxy, LOGIN)
    assert 1.0 <= gap < 1.0 + MARGIN_SECONDS
    assert outcome.seconds >= 1.0


def test_retry_after_beyond_the_deadline_fails_at_once(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """Retry-After: 30 with a 3 s deadline: no pointless wait, UNAVAILABLE right away after one attempt."""
    proxy.inject(LOGIN, Status(429, ("rate limited",), {"Retry-After": "30"}))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("retry-after-long"), timeout=3.0)

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message == (
        f"{login_where(proxy.url)} failed: Vault at {proxy.url} (from the -vault-addr flag) "
        "is rate limiting requests (429): rate limited"
    )
    assert proxy.count(LOGIN) == 1
    assert outcome.seconds < 1.0


def test_connection_reset_is_retried(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """A reset connection on the login is a passing failure: a second attempt succeeds."""
    proxy.inject(LOGIN, Reset())

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("reset"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert [seen.outcome for seen in proxy.requests(LOGIN)] == ["reset", "forwarded"]


def test_resets_every_time_give_up_after_three_attempts(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """Every login reset: UNAVAILABLE after three attempts, saying the connection was reset."""
    proxy.inject(LOGIN, *[Reset()] * 5)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("resets"))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message == (
        f"{login_where(proxy.url)} failed: cannot reach Vault at {proxy.url} (from the -vault-addr flag): "
        "Connection reset by peer (after 3 attempts)"
    )
    assert proxy.count(LOGIN) == 3


def test_truncated_body_is_retried(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str
) -> None:
    """A read whose body is shorter than its Content-Length is sent again; the Mount gets whole data."""
    proxy.inject(read_path, Truncate(missing=100))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("truncated"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert outcome.files == {"value": SECRET_VALUE.encode()}
    assert [seen.outcome for seen in proxy.requests(read_path)] == ["truncate", "forwarded"]


def test_truncated_every_time_is_unavailable(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str
) -> None:
    """Three truncated answers: UNAVAILABLE naming the object, request and attempts; no partial file."""
    proxy.inject(read_path, *[Truncate(missing=100)] * 3)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("truncated-3"))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message == (
        f'objects[0] "value": GET {read_path} failed: Vault at {proxy.url} '
        "(from the -vault-addr flag) cut its answer off before the end (after 3 attempts)"
    )
    assert outcome.files == {}
    assert proxy.count(read_path) == 3
    assert_clean(faulty, outcome.message)


def test_slow_answer_within_the_deadline(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str
) -> None:
    """A read answered after 0.5 s is waited for (no retry, no duplicate request)."""
    proxy.inject(read_path, Slow(0.5))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("slow"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert outcome.seconds >= 0.5
    assert proxy.count(read_path) == 1


# --- Final failures are not retried ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "reason"),
    [
        pytest.param(
            Status(501, ("unsupported operation",)),
            grpc.StatusCode.UNAVAILABLE,
            "failed: Vault at {proxy} (from the -vault-addr flag) failed with HTTP 501: "
            "unsupported operation",
            id="501",
        ),
        pytest.param(
            Status(400, ("invalid role name",)),
            grpc.StatusCode.PERMISSION_DENIED,
            "was denied (HTTP 400): invalid role name",
            id="400",
        ),
        pytest.param(
            Status(403, ("permission denied",)),
            grpc.StatusCode.PERMISSION_DENIED,
            "was denied (HTTP 403): permission denied",
            id="403",
        ),
    ],
)
def test_final_login_answers_are_not_retried(
    proxy: FaultProxy,
    faulty: ProviderProcess,
    stub: Any,
    secret_path: str,
    fault: Fault,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    """501, 400 and 403 on the login: exactly one attempt, the status code and Vault's reason."""
    proxy.inject(LOGIN, fault, fault)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("final"))

    assert outcome.code == code
    assert outcome.message == f"{login_where(proxy.url)} {reason.format(proxy=proxy.url)}"
    assert proxy.count(LOGIN) == 1
    assert proxy.pending() == 1


def test_vault_reason_quoting_the_token_is_redacted(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, issuer: ServiceAccountTokenIssuer
) -> None:
    """A login refusal whose reason quotes the JWT shows [redacted] in its place."""
    pod = unique("echo")
    token = issuer.mint(NAMESPACE, SERVICE_ACCOUNT, pod, pod, audiences=["vault"])
    proxy.inject(LOGIN, Status(400, (f"could not parse {token}",)))

    outcome = mount(stub, faulty, parameters(secret_path), pod=pod, token=token)

    assert outcome.code == grpc.StatusCode.PERMISSION_DENIED
    claims = token.split(".")[1]
    assert not any(claims[start : start + 40] in outcome.message for start in range(0, len(claims) - 40, 8))
    assert outcome.message == f"{login_where(proxy.url)} was denied (HTTP 400): could not parse [redacted]"


def test_tls_verification_failure_is_not_retried(
    faulty: ProviderProcess, stub: Any, vault: VaultEnv, secret_path: str
) -> None:
    """OpenBao's certificate from an untrusted CA: FAILED_PRECONDITION after a single TLS connection."""
    tls = urlsplit(vault.tls_address)
    assert tls.hostname is not None
    assert tls.port is not None
    with TcpRelay((tls.hostname, tls.port)) as relay:
        address = f"https://127.0.0.1:{relay.port}"
        outcome = mount(stub, faulty, parameters(secret_path, vaultAddress=address), pod=unique("tls"))
        connections = relay.connections

    assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION
    assert outcome.message == (
        f"{login_where(address, 'vaultAddress in the SecretProviderClass')} failed: TLS with Vault at "
        f"{address} (from vaultAddress in the SecretProviderClass) failed using the system CA certificates: "
        "unable to get local issuer certificate"
    )
    assert connections == 1


def test_tls_relay_works_with_the_right_ca(
    faulty: ProviderProcess, stub: Any, vault: VaultEnv, secret_path: str
) -> None:
    """Control for the test above: through the same relay, with OpenBao's CA, the Mount succeeds."""
    tls = urlsplit(vault.tls_address)
    assert tls.hostname is not None
    assert tls.port is not None
    with TcpRelay((tls.hostname, tls.port)) as relay:
        params = parameters(
            secret_path,
            vaultAddress=f"https://127.0.0.1:{relay.port}",
            vaultCACertPath=str(vault.ca_pem_path),
        )
        outcome = mount(stub, faulty, params, pod=unique("tls-ok"))

    assert outcome.code == grpc.StatusCode.OK, outcome.message
    assert outcome.files == {"value": SECRET_VALUE.encode()}


def test_unknown_host_is_not_retried(faulty: ProviderProcess, stub: Any, secret_path: str) -> None:
    """A Vault host that does not resolve: UNAVAILABLE at once, one attempt, no backoff in the log."""
    address = "http://no-such-host.invalid:8200"
    log_before = len(faulty.log_text())

    outcome = mount(stub, faulty, parameters(secret_path, vaultAddress=address), pod=unique("dns"))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message.startswith(
        f"{login_where(address, 'vaultAddress in the SecretProviderClass')} failed: cannot reach Vault at "
        f"{address} (from vaultAddress in the SecretProviderClass): "
    )
    assert "attempts" not in outcome.message
    assert outcome.seconds < 0.12 + 1.0  # the first backoff alone would be at least 0.125 s
    assert "retrying" not in faulty.log_text()[log_before:]


# --- Odd answers: a clear error, never INTERNAL -------------------------------------------------

ODD_LOGIN_ANSWERS = [
    pytest.param(
        Raw(200, b'{"request_id": "odd", "auth": null}'),
        grpc.StatusCode.UNAVAILABLE,
        "{login}: Vault answered 200 without a client token",
        id="login-without-auth",
    ),
    pytest.param(
        Raw(200, b'{"request_id": "odd", "auth": {"lease_duration": 60}}'),
        grpc.StatusCode.UNAVAILABLE,
        "{login}: Vault answered 200 without a client token",
        id="login-auth-without-token",
    ),
    pytest.param(
        Raw(204),
        grpc.StatusCode.UNAVAILABLE,
        "{login}: Vault answered 204 without a client token",
        id="login-204-empty",
    ),
    pytest.param(
        Raw(200, f"<html>{PLANTED_BODY}</html>".encode(), "text/html"),
        grpc.StatusCode.UNAVAILABLE,
        "{login} failed: Vault at {proxy} (from the -vault-addr flag) answered 200 with a body "
        "that is not JSON",
        id="login-not-json",
    ),
    pytest.param(
        Raw(200, b"[1, 2, 3]"),
        grpc.StatusCode.UNAVAILABLE,
        "{login}: Vault answered 200 without a client token",
        id="login-json-list",
    ),
    pytest.param(
        Raw(307, headers={"Location": "http://standby.example:8200/v1/auth/kubernetes/login"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "{login} failed: Vault at {proxy} (from the -vault-addr flag) redirected the request (307) to "
        "standby.example:8200, which is not one of its addresses or -allowed-vault-addresses; "
        "list the cluster's nodes in the address, or put a load balancer in front of Vault",
        id="login-redirect",
    ),
]


@pytest.mark.parametrize(("answer", "code", "message"), ODD_LOGIN_ANSWERS)
def test_odd_login_answers(
    proxy: FaultProxy,
    faulty: ProviderProcess,
    stub: Any,
    secret_path: str,
    answer: Fault,
    code: grpc.StatusCode,
    message: str,
) -> None:
    """A login answer without a usable token: a clear error naming the login, never INTERNAL or a crash."""
    proxy.inject(LOGIN, answer)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("odd-login"))

    assert outcome.code == code
    assert outcome.message == message.format(login=login_where(proxy.url), proxy=proxy.url)
    assert proxy.count(LOGIN) == 1
    assert_clean(faulty, outcome.message)


def test_login_with_a_numeric_client_token(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """A login answer whose client_token is a number is Vault misbehaving, not a policy problem."""
    proxy.inject(LOGIN, Raw(200, b'{"auth": {"client_token": 5, "lease_duration": 60}}'))

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("odd-token"))

    assert outcome.code == grpc.StatusCode.UNAVAILABLE
    assert outcome.message == f"{login_where(proxy.url)}: Vault answered 200 without a client token"


# Expected messages after the object's label; {read} is the read path, {proxy} Vault's address.
ODD_READ_ANSWERS = [
    pytest.param(
        Raw(204),
        grpc.StatusCode.UNAVAILABLE,
        "GET {read}: Vault answered GET {read} with an empty body",
        id="read-204-empty",
    ),
    pytest.param(
        Raw(200, b'{"request_id": "odd", "data": "not a map"}'),
        grpc.StatusCode.NOT_FOUND,
        "GET {read}: Vault's answer to GET {read} has no data",
        id="read-data-not-a-map",
    ),
    pytest.param(
        Raw(200, b'{"request_id": "odd"}'),
        grpc.StatusCode.NOT_FOUND,
        "GET {read}: Vault's answer to GET {read} has no data",
        id="read-without-data",
    ),
    pytest.param(
        Raw(200, b'{"request_id": "odd", "data": {"data": {"other": "x"}}}'),
        grpc.StatusCode.NOT_FOUND,
        'GET {read}: key "value" does not exist in the secret (it has 1 keys)',
        id="read-without-the-key",
    ),
    pytest.param(
        Raw(200, f"<html>{PLANTED_BODY}</html>".encode(), "text/html"),
        grpc.StatusCode.UNAVAILABLE,
        "GET {read} failed: Vault at {proxy} (from the -vault-addr flag) answered 200 with a body that is "
        "not JSON",
        id="read-not-json",
    ),
    pytest.param(
        Raw(302, headers={"Location": "https://elsewhere.example/ui"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "GET {read} failed: Vault at {proxy} (from the -vault-addr flag) redirected the request (302) to "
        "elsewhere.example, which is not one of its addresses or -allowed-vault-addresses; "
        "list the cluster's nodes in the address, or put a load balancer in front of Vault",
        id="read-redirect",
    ),
]


@pytest.mark.parametrize(("answer", "code", "message"), ODD_READ_ANSWERS)
def test_odd_read_answers(
    proxy: FaultProxy,
    faulty: ProviderProcess,
    stub: Any,
    secret_path: str,
    read_path: str,
    answer: Fault,
    code: grpc.StatusCode,
    message: str,
) -> None:
    """An unusable read answer (no data, not JSON, a redirect): the object, the request and the reason,
    never INTERNAL, and the body is never quoted."""
    proxy.inject(read_path, answer)

    outcome = mount(stub, faulty, parameters(secret_path), pod=unique("odd-read"))

    assert outcome.code == code
    assert outcome.message == 'objects[0] "value": ' + message.format(read=read_path, proxy=proxy.url)
    assert PLANTED_BODY not in outcome.message
    assert proxy.count(read_path) == 1


# --- Hangs, deadlines and cancellation ------------------------------------------------------------


def test_hang_ends_at_the_deadline(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """A login that never answers: DEADLINE_EXCEEDED at the 2 s deadline, and the provider stops there too."""
    proxy.inject(LOGIN, Hang())
    pod = unique("hang")

    outcome = mount(stub, faulty, parameters(secret_path), pod=pod, timeout=2.0)

    assert outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 2.0 - 0.1 <= outcome.seconds <= 2.0 + MARGIN_SECONDS
    seconds, code = mount_log(faulty, pod, timeout=2 * MARGIN_SECONDS)
    assert code == "DEADLINE_EXCEEDED"
    assert seconds <= 2.0 + MARGIN_SECONDS
    # No late retry or read for that Mount.
    time.sleep(0.5)
    assert proxy.count(LOGIN) == 1
    assert proxy.count(rf"/v1/secret/data/{secret_path}") == 0


def test_trickling_answer_ends_at_the_deadline(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str
) -> None:
    """A read whose body trickles in past the deadline: the provider gives up at the deadline."""
    proxy.inject(read_path, Drip(0.05))
    pod = unique("drip")

    outcome = mount(stub, faulty, parameters(secret_path), pod=pod, timeout=2.0)

    assert outcome.code == grpc.StatusCode.DEADLINE_EXCEEDED
    seconds, _ = mount_log(faulty, pod, timeout=2 * MARGIN_SECONDS)
    assert seconds <= 2.0 + MARGIN_SECONDS


def test_one_hanging_mount_does_not_slow_the_others(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, vault: VaultEnv, secret_path: str
) -> None:
    """While one pod's read hangs, eight Mounts of other pods complete normally and quickly."""
    stuck_path = unique("app/stuck")
    vault.put_kv2(stuck_path, {"value": "stuck"})
    proxy.inject(rf"/v1/secret/data/{stuck_path}", Hang())
    stuck = stub.Mount.future(
        request(faulty, parameters(stuck_path), unique("stuck")), timeout=DEADLINE_SECONDS
    )
    try:
        while proxy.count(rf"/v1/secret/data/{stuck_path}") == 0:
            time.sleep(0.02)
        futures = [
            stub.Mount.future(
                request(faulty, parameters(secret_path), unique("free")), timeout=DEADLINE_SECONDS
            )
            for _ in range(8)
        ]
        started = time.monotonic()
        results = [future.result() for future in futures]
        elapsed = time.monotonic() - started
    finally:
        stuck.cancel()

    assert all(result.files[0].contents == SECRET_VALUE.encode() for result in results)
    assert elapsed < 3.0


def test_cancel_during_a_slow_login_stops_the_mount(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str, read_path: str
) -> None:
    """The caller cancels while the login is slow: the read is never sent and the Mount ends CANCELLED."""
    proxy.inject(LOGIN, Slow(1.0))
    pod = unique("cancel-login")
    future = stub.Mount.future(request(faulty, parameters(secret_path), pod), timeout=DEADLINE_SECONDS)
    while proxy.count(LOGIN) == 0:
        time.sleep(0.02)

    assert future.cancel()
    seconds, code = mount_log(faulty, pod, timeout=3.0)

    assert code == "CANCELLED"
    assert seconds < 1.0 + MARGIN_SECONDS
    time.sleep(0.3)
    assert proxy.count(read_path) == 0
    assert proxy.count(LOGIN) == 1


def test_cancel_during_backoff_stops_at_once(
    proxy: FaultProxy, faulty: ProviderProcess, stub: Any, secret_path: str
) -> None:
    """The caller cancels while the provider waits out a Retry-After of 5 s: it stops without a retry."""
    proxy.inject(LOGIN, Status(503, ("Vault is sealed",), {"Retry-After": "5"}))
    pod = unique("cancel-backoff")
    future = stub.Mount.future(request(faulty, parameters(secret_path), pod), timeout=DEADLINE_SECONDS)
    while proxy.count(LOGIN) == 0:
        time.sleep(0.02)
    time.sleep(0.2)

    cancelled_at = time.monotonic()
    assert future.cancel()
    seconds, code = mount_log(faulty, pod, timeout=3.0)

    assert code == "CANCELLED"
    assert time.monotonic() - cancelled_at < 1.5
    assert seconds < 2.0
    assert proxy.count(LOGIN) == 1


# --- Nothing leaked -------------------------------------------------------------------------------


def test_log_holds_no_token_or_secret(faulty: ProviderProcess) -> None:
    """After every fault above, the provider's debug log holds no token, secret value or planted body."""
    assert faulty.tokens, "the module sent tokens"
    assert_clean(faulty, faulty.log_text())
