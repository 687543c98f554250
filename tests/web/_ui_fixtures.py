"""Helpers for the hostile tests of `mvctl ui`: an in-process client, a real `mvctl ui`
subprocess reached over raw sockets, and a throwaway HTTP server."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from mvctl.web import ui
from tests.conftest import Registry

TOKEN = "ui-token-for-the-hostile-tests-0123456789"
CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    weights: models/model.bin
"""
ORIGIN = "http://testserver"  # the in-process client's origin (its --public-url)


def client(reg: Registry, **settings: Any) -> TestClient:
    """An in-process dashboard served at ORIGIN; its requests carry that Origin, as a
    browser's form POSTs do."""
    settings.setdefault("public_url", ORIGIN)
    app = ui.create_app(ui.Settings(root=reg.root, token=TOKEN, **settings))
    return TestClient(app, base_url=ORIGIN, follow_redirects=False, headers={"Origin": ORIGIN})


def login(c: TestClient, name: str = "Grace Hopper") -> None:
    answer = c.post("/login", data={"name": name, "token": TOKEN})
    assert answer.status_code == 303, answer.text


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "MVCTL_UI_TOKEN": TOKEN, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "mvctl", "ui", *args],
        cwd=root,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for_line(proc: subprocess.Popen[bytes], line: bytes, deadline: float) -> bytes:
    """What ``proc`` wrote to stderr until ``line`` appeared (or it exited: then the
    caller sees the line missing)."""
    assert proc.stderr is not None
    seen = b""
    while line not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen.decode()
        if select.select([proc.stderr], [], [], left)[0]:
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    return seen


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@contextmanager
def served(root: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[int]:
    """`mvctl ui` run for real in ``root``; yields its port once it says it is up (which
    means it accepts connections)."""
    port = free_port()
    proc = start(root, "--port", str(port), *args, env=env)
    try:
        seen = wait_for_line(proc, b"mvctl ui on http://", time.monotonic() + 30)
        assert b"mvctl ui on http://" in seen, seen.decode()
        yield port
    finally:
        stop(proc)


def raw_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request over a fresh socket; (status, headers, body). A POST carries
    this server's Origin unless told otherwise, as a browser's form does."""
    head = {"Host": f"127.0.0.1:{port}", "Connection": "close"}
    if method == "POST":
        head["Origin"] = f"http://127.0.0.1:{port}"
        head["Content-Type"] = "application/x-www-form-urlencoded"
    head.update(headers or {})
    if body or method == "POST":
        head["Content-Length"] = str(len(body))
    text = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(text.encode() + b"\r\n" + body)
        return read_response(s)


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
