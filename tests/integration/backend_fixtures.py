"""Session fixtures: one configured OpenBao, the fake apiserver, PostgreSQL, and the provider process.

A pytest plugin, registered by `tests/conftest.py`, so the integration and the conformance
suites share one OpenBao and one provider process per session.

OpenBao serves plain HTTP (the provider's default address) and an HTTPS listener whose
certificate names `vault.test.internal` and 127.0.0.1. It is configured once:

- kubernetes auth at `kubernetes/` (TokenReviews answered by the fake apiserver):
  role `app` for team-a/app with audience "vault", role `custom-aud` with audience "custom-aud";
- jwt auth at `jwt/` trusting the token issuer's key: role `jwt-app` (bound_subject) and
  role `jwt-team-a` (bound_claims on the namespace);
- KV v1 at `kv1/`, KV v2 at `secret/`, PKI at `pki/` (role `web` for *.example.test);
- Vault namespace `tenant` with its own KV v2 at `secret/` and kubernetes auth;
- on request only (its own fixture): PostgreSQL and the database engine at `database/`.

The roles' policy reads `secret/data/app/*` and `kv1/app/*` but not `secret/data/forbidden/*`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from harness import (
    SERVER_NAME,
    ProviderProcess,
    StartProvider,
    VaultEnv,
    backend_unavailable,
    provider_argv,
    provider_env,
    write_key_file,
)

from devkit import (
    BackendMissing,
    FakeApiServer,
    OpenBaoServer,
    PostgresServer,
    ServiceAccountTokenIssuer,
)
from devkit import vault_setup as setup

APP_POLICY = """
path "secret/data/app/*" { capabilities = ["read"] }
path "kv1/app/*" { capabilities = ["read"] }
path "pki/issue/web" { capabilities = ["create", "update"] }
path "database/creds/app" { capabilities = ["read"] }
"""
TENANT_POLICY = 'path "secret/data/*" { capabilities = ["read"] }'


@pytest.fixture(scope="session")
def issuer() -> ServiceAccountTokenIssuer:
    return ServiceAccountTokenIssuer()


@pytest.fixture(scope="session")
def apiserver(issuer: ServiceAccountTokenIssuer) -> Iterator[FakeApiServer]:
    with FakeApiServer(issuer) as server:
        yield server


def _start_openbao(**options: Any) -> OpenBaoServer:
    server = OpenBaoServer(tls_server_name=SERVER_NAME, **options)
    try:
        server.start()
    except BackendMissing as exc:
        backend_unavailable(exc)
    return server


def _kubernetes_auth(client: Any, apiserver: FakeApiServer, policy: str) -> None:
    setup.enable_kubernetes_auth(client, "kubernetes", apiserver.url)
    setup.kubernetes_role(client, "kubernetes", "app", ["app"], ["team-a"], [policy], ttl="10m")


@pytest.fixture(scope="session")
def vault(issuer: ServiceAccountTokenIssuer, apiserver: FakeApiServer) -> Iterator[VaultEnv]:
    """OpenBao with every engine and auth method above configured."""
    bao = _start_openbao()
    try:
        root = bao.client()
        setup.write_policy(root, "app", APP_POLICY)
        _kubernetes_auth(root, apiserver, "app")
        setup.kubernetes_role(
            root, "kubernetes", "custom-aud", ["app"], ["team-a"], ["app"], audience="custom-aud", ttl="10m"
        )
        setup.enable_jwt_auth(root, "jwt", issuer.public_key_pem)
        setup.jwt_role(root, "jwt", "jwt-app", ["app"], bound_subject="system:serviceaccount:team-a:app")
        setup.jwt_role(
            root, "jwt", "jwt-team-a", ["app"], bound_claims={"/kubernetes.io/namespace": "team-a"}
        )
        setup.enable_kv(root, "kv1", version=1)
        setup.enable_kv(root, "secret", version=2)
        setup.enable_pki(root, "pki", "web", ["example.test"])

        setup.create_namespace(root, "tenant")
        tenant = setup.namespace_client(root, "tenant")
        setup.write_policy(tenant, "tenant-read", TENANT_POLICY)
        setup.enable_kv(tenant, "secret", version=2)
        _kubernetes_auth(tenant, apiserver, "tenant-read")

        yield VaultEnv(bao=bao, root=root, tenant=tenant)
    finally:
        bao.stop()


@pytest.fixture(scope="session")
def mtls_vault(apiserver: FakeApiServer) -> Iterator[OpenBaoServer]:
    """A second OpenBao whose HTTPS listener demands a client certificate from its CA."""
    bao = _start_openbao(require_client_cert=True)
    try:
        root = bao.client()
        setup.write_policy(root, "app", APP_POLICY)
        _kubernetes_auth(root, apiserver, "app")
        setup.put_kv(root, "secret", "app/mtls", {"value": "over-mutual-tls"})
        yield bao
    finally:
        bao.stop()


@pytest.fixture(scope="session")
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


@pytest.fixture(scope="session")
def database(vault: VaultEnv, postgres: PostgresServer) -> PostgresServer:
    """The database engine at `database/` with role `app` issuing PostgreSQL logins."""
    setup.enable_database(
        vault.root,
        "database",
        postgres.vault_connection_url,
        postgres.superuser,
        postgres.password,
        "app",
        default_ttl="5m",
        max_ttl="1h",
    )
    return postgres


def _new_process(
    directory: Path,
    issuer: ServiceAccountTokenIssuer,
    *,
    vault_addr: str | None,
    key_file: Path | None,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> ProviderProcess:
    socket_path = directory / "vault.sock"
    return ProviderProcess(
        socket_path=socket_path,
        log_path=directory / "provider.log",
        key_file=key_file,
        issuer=issuer,
        argv=provider_argv(socket_path, vault_addr=vault_addr, key_file=key_file, extra=args),
        env=provider_env(env),
    )


@pytest.fixture(scope="session")
def provider(
    vault: VaultEnv, issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProviderProcess]:
    """The provider as a real process on `<tmp>/vault.sock`, pointed at OpenBao's HTTP address.

    At the end of the session it must stop on SIGTERM with exit code 0 and remove its socket.
    """
    directory = tmp_path_factory.mktemp("provider")
    key_file = write_key_file(directory / "hmac.key")
    process = _new_process(directory, issuer, vault_addr=vault.address, key_file=key_file)
    process.start()
    try:
        process.wait_ready()
    except BaseException:
        process.kill()
        raise
    yield process
    code = process.stop()
    assert code == 0, process.log_text()
    assert not process.socket_path.exists(), "the provider left its socket behind"


@pytest.fixture
def start_provider(
    vault: VaultEnv, issuer: ServiceAccountTokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartProvider]:
    """Factory for extra provider processes: `start_provider(*args, vault_addr=, key_file=, env=, wait=)`.

    `vault_addr` defaults to OpenBao's HTTP address (None: no -vault-addr flag); `key_file`
    to a new random key (None: no -hmac-key-file); `env` is added to a VAULT_*-free
    environment. With `wait=False` the process is returned without waiting for its socket.
    Processes still running at the end of the test are stopped.
    """
    started: list[ProviderProcess] = []
    default = object()

    def start(
        *args: str,
        vault_addr: Any = default,
        key_file: Any = default,
        env: dict[str, str] | None = None,
        wait: bool = True,
        directory: Path | None = None,
    ) -> ProviderProcess:
        directory = directory or tmp_path_factory.mktemp("extra-provider")
        if key_file is default:
            key_file = write_key_file(directory / "hmac.key")
        process = _new_process(
            directory,
            issuer,
            vault_addr=vault.address if vault_addr is default else vault_addr,
            key_file=key_file,
            args=args,
            env=env,
        )
        process.start()
        started.append(process)
        if wait:
            process.wait_ready()
        return process

    yield start
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            try:
                process.stop()
            except Exception:
                process.kill()
