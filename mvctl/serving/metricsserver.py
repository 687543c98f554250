"""A tiny HTTP endpoint for a poller's metrics (``mvctl pull --watch --metrics-port``):

    GET /metrics   Authorization: Bearer <token>; the Prometheus text format
    GET /healthz   liveness probe, no authentication

A stdlib server in a thread of its own: a client that sends nothing for ``read_timeout``
seconds is dropped (http.server refuses request lines and headers over 64 KiB), at most
``max_connections`` are served at once (the rest wait in the listen backlog).
"""

from __future__ import annotations

import hmac
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mvctl.errors import OperationalError

Render = Callable[[], tuple[bytes, str]]


class MetricsServer:
    """Serves ``render()`` on ``host:port`` until :meth:`close`; port 0 picks a free one."""

    def __init__(
        self,
        render: Render,
        *,
        host: str,
        port: int,
        token: str,
        read_timeout: float = 10.0,
        max_connections: int = 16,
    ) -> None:
        slots = threading.BoundedSemaphore(max_connections)
        expected = f"Bearer {token}".encode()

        class Handler(BaseHTTPRequestHandler):
            timeout = read_timeout  # applied to the socket: a slow client is dropped
            server_version = "mvctl"
            sys_version = ""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._answer(200, b"ok\n", "text/plain; charset=utf-8")
                elif path != "/metrics":
                    self._answer(404, b"not found\n", "text/plain; charset=utf-8")
                elif not hmac.compare_digest(
                    self.headers.get("Authorization", "").encode(), expected
                ):
                    self._answer(401, b"unauthorized\n", "text/plain; charset=utf-8")
                else:
                    body, content_type = render()
                    self._answer(200, body, content_type)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", "Bearer")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # scrapes every few seconds would flood the poller's log

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(timeout=read_timeout):
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

        try:
            self._server = Server((host, port), Handler)
        except OSError as exc:
            raise OperationalError(
                f"cannot listen on {host}:{port} for metrics: {exc.strerror or exc}",
                hint="pick another --metrics-port, or stop what holds it",
            ) from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mvctl-metrics", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
