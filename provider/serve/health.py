"""HTTP health and metrics on `-health-addr`: /health/live, /health/ready, /metrics.

Both probes ask our own gRPC server, over the same unix socket the driver uses,
through the standard grpc.health.v1 service. They never ask Vault: a Vault outage
must not make the kubelet restart every provider pod in the cluster.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from provider.serve.health_probe import check_health
from provider.serve.metrics import Metrics

__all__ = ["HealthServer", "parse_address"]

PROBE_TIMEOUT_SECONDS = 2.0

log = logging.getLogger("provider.health")


def parse_address(address: str) -> tuple[str, int]:
    """Go-style listen address: ':8080' (all interfaces), 'host:8080', '[::1]:8080'."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"invalid -health-addr {address!r}: use host:port or :port")
    return host.strip("[]"), int(port)


class _ProbeHTTPServer(ThreadingHTTPServer):
    """The standard threading HTTP server, without a reverse DNS lookup of its own address."""

    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the address back to a name (socket.getfqdn) only to
        # fill server_name, which nothing here reads. In a pod that is a DNS query at every
        # start, with the idna codec loaded for it: 0.4 MiB of idle RSS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class HealthServer:
    """Serves probes and metrics from a daemon thread until `stop`."""

    def __init__(self, address: str, socket_path: Path, metrics: Metrics) -> None:
        self._bind = parse_address(address)
        self._metrics = metrics
        self._socket_path = str(socket_path)
        self._draining = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        metrics.observe_readiness(lambda: not self._draining.is_set() and self._probe() is None)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._bind[1]

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                status, content_type, body = server.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Probes every few seconds are not worth a log line."""

        httpd = _ProbeHTTPServer(self._bind, Handler)
        self._httpd = httpd
        # No poll interval: the loop sleeps in select until a request comes (a 0.1 s poll cost
        # 1 ms of CPU a second, two thirds of the idle provider's); `stop` wakes it.
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": None}, name="health", daemon=True
        ).start()
        log.info("health and metrics on %s:%d", self._bind[0] or "*", self.port)

    def draining(self) -> None:
        """From now on readiness fails: the provider is shutting down."""
        self._draining.set()

    def stop(self) -> None:
        if self._httpd is not None:
            # A listening socket shut down stays readable: the loop wakes, its accept fails,
            # and it sees the shutdown request.
            with contextlib.suppress(OSError):
                self._httpd.socket.shutdown(socket.SHUT_RDWR)
            self._httpd.shutdown()
            self._httpd.server_close()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        route = path.split("?", 1)[0]
        if route == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", self._metrics.exposition()
        if route not in ("/health/live", "/health/ready"):
            return 404, "text/plain", b"not found\n"
        if self._draining.is_set():
            # Not ready for new pods; but alive, so the kubelet lets in-flight Mounts finish
            # within the termination grace instead of killing the container.
            if route == "/health/ready":
                return 503, "text/plain", b"shutting down\n"
            return 200, "text/plain", b"draining\n"
        problem = self._probe()
        if problem is None:
            return 200, "text/plain", b"ok\n"
        if self._draining.is_set():
            # The drain began while we asked: that, not the gRPC status, is the answer.
            return self.answer(path)
        return 503, "text/plain", f"{problem}\n".encode()

    def _probe(self) -> str | None:
        """None when our gRPC server answers SERVING over its socket, else why not."""
        return check_health(self._socket_path, PROBE_TIMEOUT_SECONDS)
