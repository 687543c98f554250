"""What every mvctl server on mvctl.web.httpserver (the webhook, `mvctl serve`, the
dashboard) believes about its peers, as a real subprocess met over raw sockets: it accepts
connections once it says it is up, and the client is the socket's peer whatever proxy
headers say (uvicorn's default trusts X-Forwarded-For from 127.0.0.1, the default bind)."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

APP = textwrap.dedent(
    """
    import sys
    from mvctl.web import httpserver

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = f"{scope['client'][0]} {scope['scheme']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    httpserver.run(app, "127.0.0.1", int(sys.argv[1]), httpserver.Limits(),
                   ready=lambda where: print(where, flush=True))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_ready_line_means_listening_and_proxy_headers_are_not_believed() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"127.0.0.1:{port}", proc.stderr
        # At once: no retry loop, the socket listens before the line is printed.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"X-Forwarded-For: 10.9.8.7\r\nX-Forwarded-Proto: https\r\n\r\n"
            )
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert reply.startswith(b"HTTP/1.1 200"), reply
    assert reply.endswith(b"\r\n\r\n127.0.0.1 http"), reply
