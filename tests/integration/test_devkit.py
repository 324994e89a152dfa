"""The development backends work together for real: OpenBao, the fake apiserver, PostgreSQL.

One OpenBao dev server (with an mTLS listener for a custom server name and a file audit
device) and one fake apiserver serve the whole module; every test uses its own mounts.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3
from cryptography import x509
from cryptography.x509.oid import NameOID
from harness import backend_unavailable

from devkit import (
    TOKENREVIEW_PATH,
    BackendMissing,
    CertificateAuthority,
    FakeApiServer,
    OpenBaoServer,
    PostgresServer,
    ServiceAccountTokenIssuer,
    StubRequest,
    StubResponse,
    kube_status,
)
from devkit import vault_setup as setup

pytestmark = pytest.mark.integration

SERVER_NAME = "vault.test.internal"
POD_UID = "3c1bd6a5-0f5e-4a43-9f11-6f0c2e9d7a10"
READ_APP_POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }'


@pytest.fixture(scope="module")
def bao() -> Iterator[OpenBaoServer]:
    server = OpenBaoServer(tls_server_name=SERVER_NAME, require_client_cert=True, audit=True)
    try:
        server.start()
    except BackendMissing as exc:
        backend_unavailable(exc)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def apiserver(issuer: ServiceAccountTokenIssuer) -> Iterator[FakeApiServer]:
    with FakeApiServer(issuer) as server:
        yield server


@pytest.fixture(scope="module")
def root(bao: OpenBaoServer) -> Any:
    client = bao.client()
    setup.write_policy(client, "app-read", READ_APP_POLICY)
    setup.put_kv(client, "secret", "app/config", {"password": "kv-v2-value"}, version=2)
    return client


@pytest.fixture(scope="module")
def kubernetes_auth(root: Any, apiserver: FakeApiServer) -> str:
    """Kubernetes auth at `kubernetes/` with role `app` for team-a/app; returns the mount."""
    setup.enable_kubernetes_auth(root, "kubernetes", apiserver.url)
    setup.kubernetes_role(root, "kubernetes", "app", ["app"], ["team-a"], ["app-read"], ttl="10m")
    return "kubernetes"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
    except BackendMissing as exc:
        backend_unavailable(exc)
    try:
        yield server
    finally:
        server.stop()


def _login(bao: OpenBaoServer, mount: str, role: str, jwt: str) -> requests.Response:
    body = {"role": role, "jwt": jwt}
    return requests.post(f"{bao.address}/v1/auth/{mount}/login", json=body, timeout=10)


def _errors(response: requests.Response) -> str:
    return " ".join(response.json().get("errors", []))


def test_kubernetes_login_returns_a_token_that_reads_the_policy_paths(
    bao: OpenBaoServer, apiserver: FakeApiServer, issuer: ServiceAccountTokenIssuer, kubernetes_auth: str
) -> None:
    """A minted service-account token logs in through a real TokenReview; the token reads KV."""
    reviews_before = apiserver.request_count(TOKENREVIEW_PATH)
    response = _login(bao, kubernetes_auth, "app", issuer.mint("team-a", "app", "app-0", POD_UID))

    assert response.status_code == 200, _errors(response)
    auth = response.json()["auth"]
    assert auth["policies"] == ["app-read", "default"]
    assert auth["metadata"]["service_account_namespace"] == "team-a"
    assert apiserver.request_count(TOKENREVIEW_PATH) == reviews_before + 1
    secret = requests.get(
        f"{bao.address}/v1/secret/data/app/config",
        headers={"X-Vault-Token": auth["client_token"]},
        timeout=10,
    )
    assert secret.json()["data"]["data"] == {"password": "kv-v2-value"}


@pytest.mark.parametrize(
    ("namespace", "service_account", "expired", "status", "reason"),
    [
        pytest.param("team-b", "app", False, 403, "namespace not authorized", id="other-namespace"),
        pytest.param("team-a", "web", False, 403, "service account name not authorized", id="other-sa"),
        pytest.param("team-a", "app", True, 403, "token is expired", id="expired"),
    ],
)
def test_kubernetes_login_is_denied_with_vaults_reason(
    bao: OpenBaoServer,
    issuer: ServiceAccountTokenIssuer,
    kubernetes_auth: str,
    namespace: str,
    service_account: str,
    expired: bool,
    status: int,
    reason: str,
) -> None:
    """OpenBao refuses tokens outside the role's bindings and says why."""
    token = issuer.mint(namespace, service_account, "app-0", POD_UID, expired=expired)
    response = _login(bao, kubernetes_auth, "app", token)

    assert response.status_code == status
    assert reason in _errors(response)


def test_kubernetes_auth_reaches_an_https_apiserver(
    bao: OpenBaoServer, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """With the apiserver's CA configured, OpenBao makes the TokenReview over verified TLS."""
    ca = CertificateAuthority.create("fake apiserver CA")
    tls = ca.issue_server(["kubernetes.default.svc"], ["127.0.0.1"])
    with FakeApiServer(issuer, tls=tls) as apiserver:
        setup.enable_kubernetes_auth(root, "kubernetes-tls", apiserver.url, ca.cert_pem.decode())
        setup.kubernetes_role(root, "kubernetes-tls", "app", ["app"], ["team-*"], ["app-read"])
        response = _login(bao, "kubernetes-tls", "app", issuer.mint("team-c", "app", "app-0", POD_UID))

        assert response.status_code == 200, _errors(response)
        assert apiserver.request_count(TOKENREVIEW_PATH) == 1


def test_token_review_answers_like_the_apiserver(
    apiserver: FakeApiServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """A valid token is authenticated as its service account with the pod in `extra`."""
    token = issuer.mint("team-a", "app", "app-0", POD_UID)
    review = _token_review(apiserver, token, {"token": token, "audiences": ["vault", "other"]})

    assert review.status_code == 201
    body = review.json()
    assert (body["apiVersion"], body["kind"]) == ("authentication.k8s.io/v1", "TokenReview")
    status = body["status"]
    assert status["authenticated"] is True
    assert status["audiences"] == ["vault"]
    assert status["user"]["username"] == "system:serviceaccount:team-a:app"
    assert status["user"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:team-a",
        "system:authenticated",
    ]
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-uid"] == [POD_UID]


@pytest.mark.parametrize(
    ("case", "error"),
    [
        pytest.param("expired", "token has expired", id="expired"),
        pytest.param("audience", "is invalid for the target audiences", id="wrong-audience"),
        pytest.param("tampered", "signature does not verify", id="tampered"),
        pytest.param("foreign-key", "signature does not verify", id="other-issuer-key"),
    ],
)
def test_token_review_rejects_bad_tokens_with_status_error(
    apiserver: FakeApiServer, issuer: ServiceAccountTokenIssuer, case: str, error: str
) -> None:
    """Invalid tokens still get 201, with authenticated false and the reason in status.error."""
    good = issuer.mint("team-a", "app", "app-0", POD_UID)
    reviewed = {
        "expired": issuer.mint("team-a", "app", "app-0", POD_UID, expired=True),
        "audience": issuer.mint("team-a", "app", "app-0", POD_UID, audiences=["kubernetes"]),
        "tampered": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        "foreign-key": ServiceAccountTokenIssuer().mint("team-a", "app", "app-0", POD_UID),
    }[case]
    review = _token_review(apiserver, good, {"token": reviewed, "audiences": ["vault"]})

    assert review.status_code == 201
    status = review.json()["status"]
    assert status["authenticated"] is False
    assert error in status["error"]


def test_fake_apiserver_requires_a_bearer_and_takes_extra_routes(
    apiserver: FakeApiServer, issuer: ServiceAccountTokenIssuer
) -> None:
    """No bearer means 401; routes added later are served and counted; unknown paths get a Status 404."""
    token = issuer.mint("team-a", "app", "app-0", POD_UID)
    unauthenticated = requests.post(
        f"{apiserver.url}{TOKENREVIEW_PATH}", json={"spec": {"token": token}}, timeout=5
    )
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["reason"] == "Unauthorized"

    def get_secret(request: StubRequest) -> StubResponse:
        assert request.match is not None
        return StubResponse(404, kube_status(404, "NotFound", f'secrets "{request.match["name"]}" not found'))

    apiserver.add_route("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/secrets/(?P<name>[^/]+)", get_secret)
    path = "/api/v1/namespaces/team-a/secrets/db"
    assert requests.get(f"{apiserver.url}{path}", timeout=5).json()["message"] == 'secrets "db" not found'
    assert apiserver.requests[path] == 1
    assert requests.get(f"{apiserver.url}/api/v1/nodes", timeout=5).json()["reason"] == "NotFound"


def test_fake_apiserver_serves_secrets_like_the_api(issuer: ServiceAccountTokenIssuer) -> None:
    """Secrets: create keeps data, labels, immutable; 404 and 409 are Status objects; a 403 names the user."""
    bearer = {"Authorization": f"Bearer {issuer.mint('vault-csi', 'provider', 'provider-0', POD_UID)}"}
    body = {
        "kind": "Secret",
        "metadata": {"name": "hmac", "labels": {"app": "x"}},
        "immutable": True,
        "data": {"key": "a2V5"},
    }
    with FakeApiServer(issuer) as api:
        base = f"{api.url}/api/v1/namespaces/vault-csi/secrets"
        missing = requests.get(f"{base}/hmac", headers=bearer, timeout=5)
        created = requests.post(base, json=body, headers=bearer, timeout=5)
        again = requests.post(base, json=body, headers=bearer, timeout=5)
        read = requests.get(f"{base}/hmac", headers=bearer, timeout=5)
        anonymous = requests.get(f"{base}/hmac", timeout=5)
        api.forbidden.add(("get", "secrets"))
        denied = requests.get(f"{base}/hmac", headers=bearer, timeout=5)

    assert (missing.status_code, missing.json()["message"]) == (404, 'secrets "hmac" not found')
    assert created.status_code == 201
    assert read.json() == created.json()
    assert read.json()["immutable"] is True
    assert read.json()["metadata"]["labels"] == {"app": "x"}
    assert api.secret_data("vault-csi", "hmac") == {"key": b"key"}
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    assert again.json()["message"] == 'secrets "hmac" already exists'
    assert anonymous.status_code == 401
    assert denied.status_code == 403
    assert denied.json()["message"] == (
        'secrets "hmac" is forbidden: User "system:serviceaccount:vault-csi:provider" cannot get resource '
        '"secrets" in API group "" in the namespace "vault-csi"'
    )
    assert [(call.verb, call.name) for call in api.calls("secrets")] == [
        ("get", "hmac"),
        ("create", ""),
        ("create", ""),
        ("get", "hmac"),
        ("get", "hmac"),
        ("get", "hmac"),
    ]


def test_fake_apiserver_answers_token_requests(issuer: ServiceAccountTokenIssuer) -> None:
    """A TokenRequest gets a token from the issuer for its audiences, bound to the pod; <10 min is refused."""
    bearer = {"Authorization": f"Bearer {issuer.mint('vault-csi', 'provider', 'provider-0', POD_UID)}"}
    spec = {
        "audiences": ["vault"],
        "expirationSeconds": 600,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "app-0", "uid": POD_UID},
    }
    with FakeApiServer(issuer) as api:
        url = f"{api.url}/api/v1/namespaces/team-a/serviceaccounts/app/token"
        answer = requests.post(url, json={"kind": "TokenRequest", "spec": spec}, headers=bearer, timeout=5)
        short = requests.post(
            url, json={"spec": {**spec, "expirationSeconds": 60}}, headers=bearer, timeout=5
        )

    assert answer.status_code == 201
    claims = issuer.verify(answer.json()["status"]["token"])
    assert claims["aud"] == ["vault"]
    assert claims["sub"] == "system:serviceaccount:team-a:app"
    assert claims["kubernetes.io"]["pod"] == {"name": "app-0", "uid": POD_UID}
    assert claims["exp"] - claims["iat"] == 600
    assert answer.json()["status"]["expirationTimestamp"].endswith("Z")
    assert (short.status_code, short.json()["reason"]) == (422, "Invalid")
    assert [call.body["spec"]["expirationSeconds"] for call in api.calls("serviceaccounts/token")] == [
        600,
        60,
    ]


def test_jwt_login_checks_bound_claims(
    bao: OpenBaoServer, root: Any, issuer: ServiceAccountTokenIssuer
) -> None:
    """jwt auth validates the token with the public key alone; bound claims select the namespace."""
    setup.enable_jwt_auth(root, "jwt", issuer.public_key_pem)
    setup.jwt_role(root, "jwt", "app", ["app-read"], bound_claims={"/kubernetes.io/namespace": "team-a"})
    setup.jwt_role(root, "jwt", "exact", ["app-read"], bound_subject="system:serviceaccount:team-a:app")

    ok = _login(bao, "jwt", "app", issuer.mint("team-a", "app", "app-0", POD_UID))
    exact = _login(bao, "jwt", "exact", issuer.mint("team-a", "app", "app-0", POD_UID))
    denied = _login(bao, "jwt", "app", issuer.mint("team-b", "app", "app-0", POD_UID))

    assert ok.status_code == 200, _errors(ok)
    assert ok.json()["auth"]["client_token"]
    assert exact.status_code == 200, _errors(exact)
    assert denied.status_code == 400
    assert 'claim "/kubernetes.io/namespace" does not match' in _errors(denied)


@pytest.mark.parametrize(
    ("server_hostname", "client_cert", "ok"),
    [
        pytest.param(SERVER_NAME, True, True, id="custom-name-with-client-cert"),
        pytest.param("other.test.internal", True, False, id="name-not-in-certificate"),
        pytest.param(SERVER_NAME, False, False, id="no-client-cert"),
    ],
)
def test_tls_listener_verifies_custom_server_name_and_client_cert(
    bao: OpenBaoServer, server_hostname: str, client_cert: bool, ok: bool
) -> None:
    """The extra listener presents a certificate for SERVER_NAME from the CA and demands mTLS."""
    assert bao.tls_address is not None
    assert bao.ca_pem_path is not None
    cert, key = bao.issue_client_cert("csi-provider") if client_cert else (None, None)
    port = int(bao.tls_address.rsplit(":", 1)[1])
    with urllib3.HTTPSConnectionPool(
        "127.0.0.1",
        port,
        server_hostname=server_hostname,
        ca_certs=str(bao.ca_pem_path),
        cert_file=str(cert) if cert else None,
        key_file=str(key) if key else None,
        retries=False,
        timeout=5,
    ) as pool:
        if ok:
            assert pool.request("GET", "/v1/sys/health").status == 200
        else:
            with pytest.raises((urllib3.exceptions.SSLError, ssl.SSLError, urllib3.exceptions.ProtocolError)):
                pool.request("GET", "/v1/sys/health")


def test_audit_log_records_each_request(bao: OpenBaoServer, root: Any) -> None:
    """The declarative file audit device writes one request entry per call, with HMAC'd values."""
    assert bao.audit_log_path is not None
    name = f"audit-{uuid.uuid4().hex[:8]}"
    marker = f"value-{uuid.uuid4().hex}"
    setup.put_kv(root, "secret", name, {"marker": marker})
    for _ in range(2):
        requests.get(
            f"{bao.address}/v1/secret/data/{name}", headers={"X-Vault-Token": bao.root_token}, timeout=5
        )

    log = bao.audit_log_path.read_text()
    entries = [json.loads(line) for line in log.splitlines()]
    reads = [e for e in entries if e["type"] == "request" and e["request"]["path"] == f"secret/data/{name}"]
    assert [e["request"]["operation"] for e in reads] == ["create", "read", "read"]
    assert marker not in log


def test_pki_issue_returns_certificate_and_private_key(bao: OpenBaoServer, root: Any) -> None:
    """The PKI role issues leaf certificates for subdomains of the allowed domain."""
    setup.enable_pki(root, "pki", "svc", ["example.test"])
    response = requests.put(
        f"{bao.address}/v1/pki/issue/svc",
        json={"common_name": "app.example.test", "ttl": "1h"},
        headers={"X-Vault-Token": bao.root_token},
        timeout=10,
    )

    assert response.status_code == 200, _errors(response)
    data = response.json()["data"]
    assert "PRIVATE KEY" in data["private_key"]
    cert = x509.load_pem_x509_certificate(data["certificate"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "app.example.test"


def test_kv_in_nested_namespaces(bao: OpenBaoServer, root: Any) -> None:
    """Namespaces (nested too) isolate mounts; KV v1 and v2 both round-trip inside them."""
    setup.create_namespace(root, "team-a")
    setup.create_namespace(root, "team-a")  # a second call keeps the existing namespace
    team = setup.namespace_client(root, "team-a")
    setup.create_namespace(team, "child")
    child = setup.namespace_client(team, "child")
    setup.enable_kv(child, "kv1", version=1)
    setup.enable_kv(child, "kv1", version=1)
    setup.enable_kv(child, "kv2", version=2)
    setup.put_kv(child, "kv1", "db", {"user": "v1"}, version=1)
    setup.put_kv(child, "kv2", "db", {"user": "v2"}, version=2)

    headers = {"X-Vault-Token": bao.root_token, "X-Vault-Namespace": "team-a/child"}
    v1 = requests.get(f"{bao.address}/v1/kv1/db", headers=headers, timeout=5)
    v2 = requests.get(f"{bao.address}/v1/kv2/data/db", headers=headers, timeout=5)
    outside = requests.get(f"{bao.address}/v1/kv1/db", headers={"X-Vault-Token": bao.root_token}, timeout=5)

    assert v1.json()["data"] == {"user": "v1"}
    assert v2.json()["data"]["data"] == {"user": "v2"}
    assert outside.status_code in (403, 404)


def test_database_credentials_are_real_postgres_logins(
    bao: OpenBaoServer, root: Any, postgres: PostgresServer
) -> None:
    """Each creds read creates a PostgreSQL login role; revoking the lease drops it."""
    setup.enable_database(
        root,
        "database",
        postgres.vault_connection_url,
        postgres.superuser,
        postgres.password,
        "app",
        "5m",
        "1h",
    )
    headers = {"X-Vault-Token": bao.root_token}
    response = requests.get(f"{bao.address}/v1/database/creds/app", headers=headers, timeout=10)

    assert response.status_code == 200, _errors(response)
    creds = response.json()
    username, password = creds["data"]["username"], creds["data"]["password"]
    assert postgres.user_exists(username)
    assert postgres.psql("SELECT current_user;", login=(username, password)) == username
    assert postgres.count_roles("v-token-app-") == 1

    revoke = requests.put(
        f"{bao.address}/v1/sys/leases/revoke",
        json={"lease_id": creds["lease_id"]},
        headers=headers,
        timeout=10,
    )
    assert revoke.status_code == 204
    assert not postgres.user_exists(username)
    assert postgres.count_roles("v-token-app-") == 0


def _token_review(apiserver: FakeApiServer, bearer: str, spec: dict[str, Any]) -> requests.Response:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
    return requests.post(
        f"{apiserver.url}{TOKENREVIEW_PATH}",
        json=body,
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=5,
    )
