"""An in-memory Vault behind the client's transport seam, for in-process tests of the orchestration.

It speaks the JSON of the few endpoints a Mount uses (Kubernetes/JWT login, KV v2
reads, a database role that issues a leased credential, lease look-ups and renewals,
token renewal, the mount information the KV v2 shim asks for), with Vault's status
codes and `errors` lists. Nothing in the provider is patched: the provider's own
VaultClient, PodTokens, LeaseKeeper, Mounter and servicer run on top, and only the
bytes come from here. Integration tests run the same paths against a real OpenBao.

A test can queue answers for a path (`fail_next`), revoke a token (`revoke`), and
read every request that reached it (`requests`).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provider.request.jwt_claims import jwt_claims
from provider.vault.target import VaultTarget
from provider.vault.transport import HttpRequest, HttpResponse, Transport

__all__ = ["FakeVault", "MockTransport", "Recorded", "answer"]

KV_MOUNT = "/v1/secret/data/"
DB_CREDS = "/v1/database/creds/"
LOGIN_SUFFIX = "/login"
TOKEN_TTL = 3600
LEASE_TTL = 600


def answer(status: int, payload: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
    """An HTTP answer with a JSON body (None: an empty body)."""
    body = b"" if payload is None else json.dumps(payload).encode()
    return HttpResponse(status, headers or {}, body)


def _errors(status: int, *reasons: str) -> HttpResponse:
    return answer(status, {"errors": list(reasons)})


class MockTransport:
    """A Transport whose answers come from `handler`, the shape of httpx's MockTransport.

    It keeps requests out as ours does (`begin`): `handler` answers when the answer is read,
    and `events` gets ("sent", "GET /v1/...") at `begin` and ("answered", ...) then.
    """

    def __init__(
        self, handler: Callable[[HttpRequest], HttpResponse], events: list[tuple[str, str]] | None = None
    ) -> None:
        self._handler = handler
        self.events = events if events is not None else []

    def send(self, request: HttpRequest, timeout: float) -> HttpResponse:
        return self.begin(request, timeout).answer()

    def begin(self, request: HttpRequest, timeout: float) -> _Answer:
        self.events.append(("sent", request.describe()))
        return _Answer(self, request)

    def answered(self, request: HttpRequest) -> HttpResponse:
        self.events.append(("answered", request.describe()))
        return self._handler(request)

    def close(self) -> None:
        """Nothing to release."""


@dataclass(frozen=True)
class _Answer:
    transport: MockTransport
    request: HttpRequest

    def answer(self) -> HttpResponse:
        return self.transport.answered(self.request)


@dataclass(frozen=True)
class Recorded:
    """A request as it reached the fake: what a test may assert on (the token only as present or not)."""

    method: str
    path: str
    body: Any
    token: str = field(repr=False)
    namespace: str


class FakeVault:
    """Vault's answers for a Mount's endpoints; one instance per test."""

    def __init__(self) -> None:
        # role -> service accounts ("namespace/name") it admits
        self.roles: dict[str, set[str]] = {}
        self.kv: dict[str, dict[str, Any]] = {}  # "app/db" -> the secret's data
        self.requests: list[Recorded] = []
        self.events: list[tuple[str, str]] = []  # ("sent" | "answered", "METHOD /path"), in order
        self._tokens: dict[str, str] = {}  # live token -> identity
        self._leases: set[str] = set()
        self._queued: dict[str, list[HttpResponse | Exception]] = defaultdict(list)
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    # --- set-up -----------------------------------------------------------------------------

    def admit(self, role: str, *service_accounts: str) -> None:
        self.roles.setdefault(role, set()).update(service_accounts)

    def put(self, path: str, data: dict[str, Any]) -> None:
        """A KV v2 secret at secret/data/<path>."""
        self.kv[path] = data

    def fail_next(self, path: str, *answers: HttpResponse | Exception) -> None:
        """Answer the next requests to `path` with `answers` in order (an exception is raised by the
        transport, as a failing connection would), before the usual ones."""
        with self._lock:
            self._queued[path].extend(answers)

    def revoke(self, token: str) -> None:
        """As `vault token revoke`: the token stops working at once."""
        with self._lock:
            self._tokens.pop(token, None)

    def transports(self, target: VaultTarget) -> Transport:
        """The TransportFactory handed to the provider's composition."""
        return MockTransport(self.handle, self.events)

    # --- what reached it ----------------------------------------------------------------------

    def to(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    @property
    def logins(self) -> list[Recorded]:
        return [request for request in self.requests if request.path.endswith(LOGIN_SUFFIX)]

    @property
    def live_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    # --- the endpoints ------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        body = json.loads(request.body) if request.body else None
        token = request.headers.get("X-Vault-Token", "")
        with self._lock:
            self.requests.append(
                Recorded(
                    request.method, request.path, body, token, request.headers.get("X-Vault-Namespace", "")
                )
            )
            queued = self._queued.get(request.path)
            step = queued.pop(0) if queued else None
        if isinstance(step, Exception):
            raise step
        if step is not None:
            return step
        if request.path.startswith("/v1/auth/") and request.path.endswith(LOGIN_SUFFIX):
            return self._login(body or {})
        with self._lock:
            known = token in self._tokens
        if not known:
            return _errors(403, "permission denied")
        return self._authorised(request, body, token)

    def _authorised(self, request: HttpRequest, body: Any, token: str) -> HttpResponse:
        path = request.path
        if path.startswith(KV_MOUNT) and request.method == "GET":
            data = self.kv.get(path[len(KV_MOUNT) :])
            if data is None:
                return _errors(404)
            return answer(200, _envelope(data={"data": data, "metadata": {"version": 1}}))
        if path.startswith(DB_CREDS) and request.method == "GET":
            serial = next(self._serial)
            lease = f"database/creds/app/{serial}"
            with self._lock:
                self._leases.add(lease)
            data = {"username": f"v-app-{serial}", "password": f"pw-{serial}-secret"}
            return answer(200, _envelope(lease_id=lease, lease_duration=LEASE_TTL, renewable=True, data=data))
        if path == "/v1/sys/leases/lookup":
            with self._lock:
                alive = body["lease_id"] in self._leases
            return (
                answer(200, {"data": {"id": body["lease_id"], "ttl": LEASE_TTL}}) if alive else _errors(400)
            )
        if path.startswith("/v1/sys/internal/ui/mounts/"):
            mounted = path[len("/v1/sys/internal/ui/mounts/") :].startswith("secret/")
            info = {"type": "kv", "path": "secret/", "options": {"version": "2"}}
            return answer(200, {"data": info}) if mounted else _errors(403, "permission denied")
        if path == "/v1/auth/token/renew-self":
            return answer(
                200, {"auth": {"client_token": token, "lease_duration": TOKEN_TTL, "renewable": True}}
            )
        return _errors(404)

    def _login(self, body: dict[str, Any]) -> HttpResponse:
        subject = str(jwt_claims(str(body.get("jwt", ""))).get("sub", ""))
        account = subject.removeprefix("system:serviceaccount:").replace(":", "/", 1)
        if account not in self.roles.get(str(body.get("role")), set()):
            return _errors(403, "service account name not authorized")
        token = f"hvs.fake-{next(self._serial)}-token"
        with self._lock:
            self._tokens[token] = f"entity-{account}"
        auth = {
            "client_token": token,
            "entity_id": f"entity-{account}",
            "lease_duration": TOKEN_TTL,
            "renewable": True,
            "metadata": {"service_account_name": account},
        }
        return answer(200, _envelope(auth=auth))


def _envelope(**fields: Any) -> dict[str, Any]:
    """Vault's response envelope, with the fields not given at their empty values."""
    return {
        "request_id": "00000000-0000-4000-8000-000000000000",
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": None,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        **fields,
    }
