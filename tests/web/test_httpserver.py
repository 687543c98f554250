"""The guarded HTTP server both mvctl servers run on (mvctl.web.httpserver), as a real
subprocess serving a tiny ASGI app, met over raw sockets: who a connection beyond the cap
evicts. A flood of sockets that never send a request must not cost a client that has
completed requests its kept-alive connection."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

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
        more = True
        while more:  # the whole body, as the servers' apps read it
            more = (await receive()).get("more_body", False)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    limits = httpserver.Limits(read_timeout=30, max_connections=int(sys.argv[2]))
    httpserver.run(app, "127.0.0.1", int(sys.argv[1]), limits,
                   ready=lambda where: print(where, flush=True))
    """
)
REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(max_connections: int) -> Iterator[int]:
    """The guarded server on a free loopback port, listening; yields the port."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(port), str(max_connections)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"127.0.0.1:{port}", proc.stderr
        deadline = time.monotonic() + 30
        while True:  # "ready" is printed once the socket listens: this connects at once
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the server never listened"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _ask(sock: socket.socket) -> bytes:
    """One request on ``sock`` and its whole answer (b"" if the server closed it)."""
    try:
        sock.sendall(REQUEST)
        reply = b""
        while not reply.endswith(b"\r\n\r\nok"):
            chunk = sock.recv(65536)
            if not chunk:
                return reply
            reply += chunk
    except (BrokenPipeError, ConnectionResetError):
        return b""
    return reply


def _first_closed(socks: list[socket.socket], timeout: float = 10) -> socket.socket | None:
    """The first of ``socks`` the server closes within ``timeout`` seconds (None: none)."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            for key, _ in sel.select(timeout=deadline - time.monotonic()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        return sock
                except ConnectionResetError:
                    return sock
    return None


def test_a_flood_evicts_silent_connections_never_a_kept_alive_client() -> None:
    with server(max_connections=4) as port, _connect(port) as client:
        assert _ask(client).startswith(b"HTTP/1.1 200")  # now idle between two requests
        flood = [_connect(port) for _ in range(3)]  # the cap is reached
        try:
            flood.append(_connect(port))  # one beyond it: someone must make room
            closed = _first_closed([client, flood[0]])
            # The kept-alive client idled longest, but it has completed a request: the
            # silent socket that waited longest for its first request makes room instead.
            assert closed is flood[0], "the kept-alive client was evicted"
            for oldest in range(1, 4):  # and so on, as long as the flood comes
                flood.append(_connect(port))
                assert _first_closed([client, flood[oldest]]) is flood[oldest]
            assert _ask(client).startswith(b"HTTP/1.1 200")
        finally:
            for sock in flood:
                sock.close()


def test_with_no_silent_connection_the_longest_idle_one_makes_room() -> None:
    with server(max_connections=2) as port, _connect(port) as first, _connect(port) as second:
        assert _ask(first).startswith(b"HTTP/1.1 200")
        assert _ask(second).startswith(b"HTTP/1.1 200")
        with _connect(port) as third:
            assert _first_closed([first, second]) is first
            assert _ask(third).startswith(b"HTTP/1.1 200")
            assert _ask(second).startswith(b"HTTP/1.1 200")


def test_when_every_connection_is_inside_a_request_the_newcomer_is_closed() -> None:
    with server(max_connections=1) as port, _connect(port) as busy:
        busy.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n"
        )
        # "100 Continue" comes once the app reads the body: the request is in flight.
        assert busy.recv(65536).startswith(b"HTTP/1.1 100")
        busy.sendall(b"12345")
        with _connect(port) as newcomer:
            assert _first_closed([busy, newcomer]) is newcomer
        busy.sendall(b"67890")  # the request in flight is untouched
        reply = b""
        while not reply.endswith(b"ok"):
            chunk = busy.recv(65536)
            assert chunk, reply
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
