"""The hostile review of `mvctl ui` (issue 14) against a real `mvctl ui` process over raw
sockets: X-Forwarded-For, parallel guesses, DNS rebinding, the ready line, a repository that
is no registry, credentials in --server, and a rollback killed before its push."""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from mvctl.web import lockout
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    git_shim,
    mvctl,
    remote_holder,
)
from tests.web._ui_fixtures import (
    CONFIG,
    TOKEN,
    csrf,
    free_port,
    raw_request,
    read_response,
    served,
    start,
    stop,
    wait_for_line,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v0.1.0 then v0.2.0 in production, both published."""
    return registry_factory(
        Release(weights=b"v1", version="v0.1.0", push=True, promote=("production",)),
        Release(weights=b"v2", version="v0.2.0", push=True, promote=("production",)),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def _guess(i: int) -> bytes:
    return urlencode({"name": "Mallory", "token": f"guess-{i:04d}-0123456789"}).encode()


RIGHT = urlencode({"name": "On Call", "token": TOKEN}).encode()


def test_a_forwarded_for_header_does_not_buy_fresh_guesses(reg: Registry) -> None:
    """Finding 7: proxy headers are never trusted, not even from 127.0.0.1."""
    with served(reg.root) as port:
        for i in range(3 * lockout.AFTER):
            forged = {"X-Forwarded-For": f"10.9.8.{i}"}
            assert raw_request(port, "POST", "/login", _guess(i), headers=forged)[0] in (401, 429)
        after = raw_request(port, "POST", "/login", RIGHT, headers={"X-Forwarded-For": "10.9.9.9"})
    assert after[0] == 429, after[0]


def test_parallel_wrong_logins_still_lock_the_address_out(reg: Registry) -> None:
    """Finding 5: every guess is past the first lockout check before any body arrives."""
    guesses = 3 * lockout.AFTER
    with served(reg.root) as port:
        socks = []
        try:
            for i in range(guesses):
                body = _guess(i)
                s = socket.create_connection(("127.0.0.1", port), timeout=30)
                socks.append((s, body))
                s.sendall(
                    (
                        "POST /login HTTP/1.1\r\n"
                        f"Host: 127.0.0.1:{port}\r\n"
                        f"Origin: http://127.0.0.1:{port}\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\n"
                        f"Content-Length: {len(body)}\r\n"
                        "Expect: 100-continue\r\n"
                        "Connection: close\r\n\r\n"
                    ).encode()
                )
            # "100 Continue" comes when the handler first asks for the body: it has looked at
            # the lockout by then. Every guess is past that check at once.
            for s, _ in socks:
                interim = b""
                while b"\r\n\r\n" not in interim:
                    chunk = s.recv(1)
                    assert chunk, interim
                    interim += chunk
                assert interim.startswith(b"HTTP/1.1 100"), interim
            for s, body in socks:
                s.sendall(body)
            statuses = [read_response(s)[0] for s, _ in socks]
        finally:
            for s, _ in socks:
                s.close()
        after = raw_request(port, "POST", "/login", RIGHT)[0]
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) == lockout.AFTER, statuses  # the rest were not even compared
    assert after == 429, f"{guesses} wrong tokens in parallel, then the right one: {after}"


def test_a_rebinding_page_cannot_lock_the_on_call_out(reg: Registry) -> None:
    """Finding 8: a Host the dashboard is not served at is refused before anything else."""
    with served(reg.root) as port:
        evil = f"rebind.example:{port}"
        answers = []
        for i in range(lockout.AFTER + 1):
            headers = {"Host": evil, "Origin": f"http://{evil}"}
            answers.append(raw_request(port, "POST", "/login", _guess(i), headers=headers)[0])
        mine = raw_request(port, "POST", "/login", RIGHT)
        local = raw_request(port, "GET", "/healthz", headers={"Host": f"localhost:{port}"})
    assert set(answers) == {421}, answers
    assert mine[0] == 303, (answers, mine[0])
    assert local[0] == 200


def test_a_public_url_names_the_host_and_origin_accepted(reg: Registry) -> None:
    """Behind a proxy that rewrites Host: --public-url says where the dashboard is served."""
    public = "https://mvctl.example.com"
    with served(reg.root, "--public-url", public) as port:
        proxied = {"Host": "mvctl.example.com", "Origin": public}
        answer = raw_request(port, "POST", "/login", RIGHT, headers=proxied)
        other = raw_request(port, "POST", "/login", RIGHT, headers={"Host": "evil.example"})
    assert answer[0] == 303
    assert "secure" in answer[1]["set-cookie"].lower()
    assert other[0] == 421


def test_the_server_accepts_connections_once_it_says_it_is_up(reg: Registry) -> None:
    """Finding 12: the ready line comes after listen(), for every server on httpserver."""
    port = free_port()
    proc = start(reg.root, "--port", str(port))
    try:
        seen = wait_for_line(proc, b"mvctl ui on http://", time.monotonic() + 30)
        assert b"mvctl ui on http://" in seen, seen
        try:
            socket.create_connection(("127.0.0.1", port), timeout=10).close()
        except ConnectionRefusedError as exc:
            raise AssertionError(f"said {seen!r}, yet refused the connection") from exc
    finally:
        stop(proc)


def test_ui_in_a_plain_git_repo_exits_3(tmp_path: Path) -> None:
    """Finding 11: outside a registry, the usual one-line error and hint, exit 3."""
    repo = tmp_path / "plain"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("not a registry\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    proc = start(repo, "--port", str(free_port()))
    try:
        seen = wait_for_line(proc, b"mvctl ui on http://", time.monotonic() + 30)
        proc.wait(30)
    finally:
        stop(proc)
    assert b"mvctl ui on http://" not in seen, seen
    assert proc.returncode == 3, (proc.returncode, seen)
    assert b"is not an mvctl registry" in seen
    assert b"mvctl init" in seen


@pytest.mark.parametrize("url", ["http://user:pass@host:8000", "https://tok@host"])
def test_credentials_in_a_server_url_are_refused_at_start(reg: Registry, url: str) -> None:
    """Finding 10: a --server URL never carries credentials (MVCTL_SERVE_TOKEN does)."""
    refused = mvctl(reg.root, "ui", "--port", str(free_port()), "--server", url)
    assert refused.returncode == 2
    said = refused.stderr + refused.stdout
    assert "MVCTL_SERVE_TOKEN" in said
    assert "pass" not in said.replace("passed", "")
    assert "tok@" not in said


@contextmanager
def _browser(port: int) -> Iterator[httpx.Client]:
    """A logged-in client of the dashboard on ``port``, sending its Origin as a browser."""
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as c:
        assert c.post("/login", data={"name": "Grace", "token": TOKEN}).status_code == 303
        yield c


UNPUBLISHED = re.compile(r"not (yet )?(published|pushed|on origin)|unpublished|pending", re.I)


def test_a_rollback_interrupted_before_its_push_is_not_shown_as_done(
    reg: Registry, tmp_path: Path
) -> None:
    """Finding 2: after a restart the pages say the clone's alias is not the fleet's, and
    offer what publishes it."""
    shim = git_shim(tmp_path / "shim", shutil.which("git") or "git")
    crash = {
        "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "push",
        "MVCTL_SHIM_WHEN": "before",  # SIGKILL the dashboard as it starts the push
    }
    with served(reg.root, env=crash) as port, _browser(port) as c:
        form = {
            "csrf": csrf(c.get("/models/fraud").text),
            "channel": "production",
            "to": "v0.1.0",
            "reason": "FPR spike",
            "current": "v0.2.0",
            "confirm": "yes",
        }
        with pytest.raises(httpx.RemoteProtocolError):
            c.post("/models/fraud/rollback", data=form)
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"  # the fleet's

    with served(reg.root) as port, _browser(port) as c:
        home = c.get("/").text
        model = c.get("/models/fraud").text
        for name, page in (("/", home), ("/models/fraud", model)):
            assert UNPUBLISHED.search(page), f"{name} says nothing of the pending move"
            assert "origin has v0.2.0" in page, name
        history = c.get("/models/fraud/history?done=fraud%23production%233").text
        assert "Done:" not in history
        assert "fraud#production#3 exist(s) only here: not published to origin" in history
        assert 'action="/models/fraud/publish"' in model
        published = c.post(
            "/models/fraud/publish", data={"csrf": csrf(model), "channel": "production"}
        )
        assert published.status_code == 303, published.text
        assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
        again = c.get("/models/fraud").text
        history = c.get("/models/fraud/history?done=fraud%23production%233").text
    assert not UNPUBLISHED.search(again)
    assert "Done: fraud#production#3" in history
