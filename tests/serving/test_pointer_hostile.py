"""Hostile pointer stores: a server of the test's own (a real socket, http.server threads)
that answers what no honest DVC remote does. Whatever it does, a read is a StoreUnreachable
(or a refused pointer) in bounded time, never an exception that stops a watching host, and
no credential of the host or the publisher ever shows in a message."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mvctl._adapters.pointerstore import MAX_READ, StoreUnreachable, open_store

KEY = "mvctl/channels/fraud/production.json"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    answer: Callable[[BaseHTTPRequestHandler], None]
    seen: list[tuple[str, str, dict[str, str]]]
    done: threading.Event


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _any(self) -> None:
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        self.server.answer(self)

    do_GET = do_PUT = do_DELETE = _any


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.seen, srv.done = [], threading.Event()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.done.set()
    srv.shutdown()
    srv.server_close()


def url(srv: Server, userinfo: str = "") -> str:
    return f"http://{userinfo}127.0.0.1:{srv.server_address[1]}/dvc"


def raw(data: bytes) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(data)
        h.wfile.flush()

    return answer


@pytest.mark.parametrize(
    "answer",
    [
        b"NOT-HTTP garbage\r\n\r\n",  # BadStatusLine
        b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",  # too many headers
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",  # IncompleteRead
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",  # LineTooLong
    ],
    ids=["bad-status", "many-headers", "incomplete", "long-line"],
)
def test_a_garbage_http_answer_is_an_unreachable_store_not_a_crash(
    server: Server, answer: bytes
) -> None:
    server.answer = raw(answer)
    store = open_store(url(server), timeout=2)
    with pytest.raises(StoreUnreachable):
        store.read(KEY, None)
    if b"Content-Length" not in answer:  # a PUT's answer is not read for its content
        with pytest.raises(StoreUnreachable):
            store.write(KEY, b"{}")


def status(code: int, body: bytes = b"") -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(h: BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return answer


SECRET = "pw-S3CRET-of-the-test"


def test_credentials_in_the_remote_url_are_basic_auth_never_a_host_name(server: Server) -> None:
    server.answer = status(200, b"{}")
    store = open_store(url(server, f"alice:{SECRET}@"))
    assert store.read(KEY, None).body == b"{}"
    store.write(KEY, b"{}")
    assert [(m, p) for m, p, _ in server.seen] == [("GET", f"/dvc/{KEY}"), ("PUT", f"/dvc/{KEY}")]
    for _, _, headers in server.seen:
        assert headers["Authorization"].startswith("Basic ")
        assert SECRET not in headers.get("Host", "")
    server.answer = status(500)
    with pytest.raises(StoreUnreachable) as exc:
        store.write(KEY, b"{}")
    assert SECRET not in str(exc.value) and "alice:***@" in str(exc.value)


def test_a_password_http_refuses_never_shows_in_the_message(server: Server) -> None:
    options = {"auth": "custom", "custom_auth_header": "X-Token", "password": f"a\n{SECRET}"}
    store = open_store(url(server), options)
    for call in (lambda: store.read(KEY, None), lambda: store.write(KEY, b"{}")):
        with pytest.raises(StoreUnreachable) as exc:
            call()
        assert SECRET not in str(exc.value)


def test_a_server_trickling_bytes_is_cut_off_at_the_read_deadline(server: Server) -> None:
    def trickle(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(b'HTTP/1.1 200 OK\r\nETag: "x"\r\n\r\n')  # no length: ends at close
        for _ in range(100):  # one byte every 0.05 s, each well within the socket timeout
            if server.done.wait(0.05):
                return
            h.wfile.write(b" ")
            h.wfile.flush()

    server.answer = trickle
    store = open_store(url(server), timeout=0.5)  # a whole read gets 3 timeouts at most
    with pytest.raises(StoreUnreachable) as exc:
        store.read(KEY, None)
    assert "within" in str(exc.value)


def test_a_directory_fifo_or_device_at_a_folder_pointer_never_raises_anything_else(
    tmp_path: Path,
) -> None:
    store = open_store(str(tmp_path))
    path = tmp_path / KEY
    path.mkdir(parents=True)  # a directory where the pointer goes
    with pytest.raises(StoreUnreachable):
        store.read(KEY, None)
    path.rmdir()
    os.mkfifo(path)  # a FIFO nobody writes: read at once, never blocking
    assert store.read(KEY, None).body == b""
    path.unlink()
    path.symlink_to("/dev/zero")  # endless: never read past the cap
    body = store.read(KEY, None).body
    assert body is not None and len(body) == MAX_READ
