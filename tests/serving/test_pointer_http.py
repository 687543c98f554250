"""Pointer files on an HTTP(S) DVC remote: a tiny threaded server of the test's own with
ETags, If-None-Match (304), PUT and basic auth. The publisher takes the auth from DVC's
remote config; a host polling the pointer gets 304s while nothing changes and swaps when
the pointer moves."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mvctl import serving
from mvctl._adapters.pointerstore import open_store
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from tests.conftest import Registry, copy_registry, run
from tests.serving import test_serving as base
from tests.serving.test_pointerwatch import git_log, host_requests, watcher

template, host = base.template, base.host
__all__ = ["git_log"]  # a fixture this module uses

pytestmark = pytest.mark.slow  # a registry's pushes and a host's polls, end to end

KEY = "mvctl/channels/fraud/production.json"
USER, PASSWORD = "ci", "s3cr3t-for-the-test"


class Store(ThreadingHTTPServer):
    objects: dict[str, bytes]
    counts: dict[str, int]


class Handler(BaseHTTPRequestHandler):
    server: Store

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _count(self, what: str) -> None:
        self.server.counts[what] = self.server.counts.get(what, 0) + 1

    def do_GET(self) -> None:
        body = self.server.objects.get(self.path)
        if body is None:
            self._count("404")
            self.send_response(404)
            self.end_headers()
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if self.headers.get("If-None-Match") == etag:
            self._count("304")
            self.send_response(304)
            self.end_headers()
            return
        self._count("200")
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self._count("401")
            self.send_response(401)
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length", "0"))
        self.server.objects[self.path] = self.rfile.read(length)
        self._count("PUT")
        self.send_response(201)
        self.end_headers()


@pytest.fixture
def http_store() -> Iterator[Store]:
    server = Store(("127.0.0.1", 0), Handler)
    server.objects, server.counts = {}, {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: Store) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/dvc"


@pytest.fixture
def reg(template: Path, tmp_path: Path, http_store: Store) -> Registry:
    reg = copy_registry(template, tmp_path, storage=False)
    path = reg.root / "mvctl.yaml"
    path.write_text(path.read_text() + "pointers: true\n")
    reg.git("commit", "-q", "-am", "Pointer files for the fleet")
    modify = ("dvc", "remote", "modify", "--local", "mvctl")
    run(*modify, "url", url_of(http_store), cwd=reg.root)
    run(*modify, "auth", "basic", cwd=reg.root)
    run(*modify, "user", USER, cwd=reg.root)
    run(*modify, "password", PASSWORD, cwd=reg.root)
    return reg


def test_http_pointer_put_with_dvc_auth_and_polled_with_etags(
    reg: Registry, host: Path, http_store: Store, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert http_store.counts.get("PUT") == 1 and f"/dvc/{KEY}" in http_store.objects

    store = open_store(url_of(http_store))
    first = store.read(KEY, None)
    assert store.read(KEY, first.validator).body is None
    assert http_store.counts.get("304") == 1

    watch, rec = watcher(reg, host, url=url_of(http_store))
    watch.step(0.0)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(1.0)
    assert serving.status(host).version == "v0.2.0"  # type: ignore[union-attr]
    quiet, not_modified = host_requests(git_log, host), http_store.counts["304"]
    for now in range(2, 6):
        watch.step(float(now))
    assert host_requests(git_log, host) == quiet
    assert http_store.counts["304"] == not_modified + 4
    rollback(reg.root, "fraud", reason="bad", push=True)
    watch.step(6.0)
    assert serving.status(host).version == "v0.1.0"  # type: ignore[union-attr]
    assert host_requests(git_log, host) == quiet + 1 and not rec.errors


def test_a_refused_put_is_a_warning_without_the_password(reg: Registry, http_store: Store) -> None:
    run("dvc", "remote", "modify", "--local", "mvctl", "password", "wrong", cwd=reg.root)
    move = promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert move.pushed and move.pointers is not None and move.pointers.warning
    assert "401" in move.pointers.warning and "wrong" not in move.pointers.warning
    assert http_store.counts.get("401") == 1
