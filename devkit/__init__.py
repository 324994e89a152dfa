"""Real backends and stand-ins for the tests, the benchmarks and `make demo`, all on 127.0.0.1.

OpenBao (a real dev server, or a three-node raft cluster), PostgreSQL (a private cluster),
a fake kube-apiserver that answers TokenReviews for service-account shaped tokens we sign
ourselves, a throwaway CA, and helpers that configure OpenBao's engines and auth methods.
Not part of the wheel or the image: the provider never imports it (`provider` is one
package, `devkit` another).
"""

from __future__ import annotations

from devkit.apiserver import TOKENREVIEW_PATH, ApiCall, FakeApiServer, kube_status, review_token
from devkit.certs import CertificateAuthority, KeyPair, write_pem
from devkit.errors import BackendFailed, BackendMissing, DevkitError, InvalidToken
from devkit.http_stub import Handler, JsonHttpServer, StubRequest, StubResponse
from devkit.openbao import OpenBaoServer, find_bao
from devkit.openbao_cluster import OpenBaoRaftCluster
from devkit.ports import free_port
from devkit.postgres import PostgresServer, find_pg_bin
from devkit.sa_tokens import DEFAULT_ISSUER, ServiceAccountTokenIssuer, service_account_uid

__all__ = [
    "DEFAULT_ISSUER",
    "TOKENREVIEW_PATH",
    "ApiCall",
    "BackendFailed",
    "BackendMissing",
    "CertificateAuthority",
    "DevkitError",
    "FakeApiServer",
    "Handler",
    "InvalidToken",
    "JsonHttpServer",
    "KeyPair",
    "OpenBaoRaftCluster",
    "OpenBaoServer",
    "PostgresServer",
    "ServiceAccountTokenIssuer",
    "StubRequest",
    "StubResponse",
    "find_bao",
    "find_pg_bin",
    "free_port",
    "kube_status",
    "review_token",
    "service_account_uid",
    "write_pem",
]
