"""The webhook server must not fail open: transient failures answer 503 so Alertmanager
retries, and stalled or flooding peers are timed out and capped so they cannot keep
Alertmanager out. Everything here runs a real `mvctl webhook serve` over real sockets."""

from __future__ import annotations

import json
import os
import resource
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    mvctl,
    run,
)

TOKEN = "s3cret-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    weights: models/model.bin
"""


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """fraud v0.1.0 then v0.2.0 in production, published to the bare remote, released in
    January, so that an alert starting now is about the version production serves."""
    releases = (
        Release(
            weights=version.encode(),
            metrics=False,
            push=True,
            promote=("production",),
            date=f"2026-01-0{day}T12:00:00Z",
        )
        for day, version in enumerate(("v0.1.0", "v0.2.0"), start=1)
    )
    return registry_factory(*releases, config=CONFIG)


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def webhook(
    reg: Registry, *args: str, nofile: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A real `mvctl webhook serve` in the clone, up and answering /healthz.

    ``nofile`` caps the server's file descriptors, so a flood that would exhaust them
    shows up quickly."""
    port = _free_port()

    def limit() -> None:  # pragma: no cover - runs in the child
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(
        [sys.executable, "-m", "mvctl", "webhook", "serve", "--port", str(port), *args],
        cwd=reg.root,
        env={**os.environ, "MVCTL_WEBHOOK_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit if nofile is not None else None,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield url, proc
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def alert(channel: str = "production") -> dict[str, object]:
    """A firing alert that started now (long after the template's releases)."""
    starts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "4",
        "groupKey": '{}:{alertname="FraudFalsePositives"}',
        "status": "firing",
        "receiver": "mvctl",
        "groupLabels": {"alertname": "FraudFalsePositives"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "FraudFalsePositives",
                    "mvctl_model": "fraud",
                    "mvctl_channel": channel,
                },
                "annotations": {"summary": "false positives above 5%"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus",
                "fingerprint": "abc123",
            }
        ],
    }


def remote_tags(reg: Registry) -> str:
    return run("git", "ls-remote", "--tags", str(reg.origin), cwd=reg.root).stdout


# --- failures Alertmanager must retry answer 503 -------------------------------------------


def test_an_unreachable_remote_answers_503_until_it_is_back(reg: Registry) -> None:
    before, published = reg.tags(), remote_tags(reg)
    moved = reg.origin.with_name("origin-away.git")
    with webhook(reg, "--push") as (url, _):
        reg.origin.rename(moved)
        response = httpx.post(f"{url}/alerts", json=alert(), headers=AUTH, timeout=30)
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        [decision] = response.json()["decisions"]
        assert decision["action"] == "failed" and decision["retry"] is True
        assert reg.tags() == before
        moved.rename(reg.origin)
        assert remote_tags(reg) == published
        # Alertmanager's retry of the same notification completes the rollback, once.
        again = httpx.post(f"{url}/alerts", json=alert(), headers=AUTH, timeout=30)
        assert again.status_code == 200
        [done] = again.json()["decisions"]
        assert done["action"] == "rolled_back" and done["retry"] is False
    assert "fraud#production#3" in remote_tags(reg)


def test_a_race_lost_every_time_answers_503_and_leaves_nothing_behind(reg: Registry) -> None:
    # Someone else re-publishes the channel's alias between each fetch and push of the server.
    hook = reg.root / ".git" / "hooks" / "pre-push"
    hook.write_text(
        f"""#!/bin/sh
export GIT_DIR='{reg.origin}'
message=$(git tag --list --format='%(contents)' fraud@production)
title="$(echo "$message" | head -n 1) (re-published $(date +%s%N))"
body=$(echo "$message" | tail -n +3)
commit=$(git rev-parse 'refs/tags/fraud@production^{{commit}}')
git tag -f -a -m "$title" -m "$body" fraud@production "$commit" >/dev/null
"""
    )
    hook.chmod(0o755)
    with webhook(reg, "--push") as (url, _):
        response = httpx.post(f"{url}/alerts", json=alert(), headers=AUTH, timeout=30)
    assert response.status_code == 503, response.text
    [decision] = response.json()["decisions"]
    assert decision["action"] == "failed" and decision["retry"] is True
    assert "someone else" in decision["detail"]
    assert "fraud#production#3" not in reg.tags() and "fraud#production#3" not in remote_tags(reg)


def test_a_policy_refusal_is_final_and_answers_200(reg: Registry) -> None:
    before = reg.tags()
    with webhook(reg) as (url, _):
        response = httpx.post(f"{url}/alerts", json=alert("staging"), headers=AUTH, timeout=30)
    assert response.status_code == 200
    [decision] = response.json()["decisions"]
    assert decision["action"] == "failed" and decision["retry"] is False
    assert reg.tags() == before


def test_a_deeply_nested_body_is_a_bad_request(reg: Registry) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with webhook(reg) as (url, proc):
        response = httpx.post(f"{url}/alerts", content=deep, headers=AUTH, timeout=30)
        assert response.status_code == 400
        assert httpx.get(f"{url}/healthz").text == "ok"
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err


# --- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--port", "99999"),
        ("--port", "-1"),
        ("--port", "0"),
        ("--read-timeout", "0"),
        ("--max-connections", "0"),
    ],
)
def test_out_of_range_options_are_one_line_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    monkeypatch.setenv("MVCTL_WEBHOOK_TOKEN", TOKEN)
    proc = mvctl(tmp_path, "webhook", "serve", *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and args[0] in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_a_port_in_use_is_an_operational_error(reg: Registry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        proc = subprocess.run(
            [sys.executable, "-m", "mvctl", "webhook", "serve", "--port", port],
            cwd=reg.root,
            env={**os.environ, "MVCTL_WEBHOOK_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert f"127.0.0.1:{port}" in proc.stderr


# --- stalled and flooding peers -------------------------------------------------------------

READ_TIMEOUT = 1.0


def _enough_descriptors(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def _closed_by_server(sock: socket.socket, deadline: float) -> float | None:
    """When the server closed ``sock`` (a monotonic time), reading whatever it said first;
    None if it was still open at ``deadline``."""
    sock.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                continue
            try:
                if not sock.recv(65536):
                    return time.monotonic()
            except ConnectionResetError:
                return time.monotonic()
    return None


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@pytest.mark.slow
def test_idle_connections_neither_starve_the_server_nor_stay_open(reg: Registry) -> None:
    _enough_descriptors(1024)
    args = ("--read-timeout", str(READ_TIMEOUT), "--max-connections", "64")
    # 256 descriptors for the server: 300 idle sockets would exhaust them if it kept them.
    with webhook(reg, *args, nofile=256) as (url, _):
        idle = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(300)]
        try:
            started = time.monotonic()
            response = httpx.post(f"{url}/alerts", json=alert(), headers=AUTH, timeout=10)
            answered = time.monotonic() - started
            assert response.status_code == 200, response.text
            assert response.json()["decisions"][0]["action"] == "rolled_back", response.text
            assert answered < 5, f"answered after {answered:.1f} s"
            deadline = time.monotonic() + READ_TIMEOUT + 3
            still_open = [s for s in idle if _closed_by_server(s, deadline) is None]
            assert not still_open, f"{len(still_open)} idle connections still open"
        finally:
            for sock in idle:
                sock.close()


@pytest.mark.slow
def test_beyond_the_cap_the_longest_stalled_connection_makes_room(reg: Registry) -> None:
    with webhook(reg, "--max-connections", "4", "--read-timeout", "30") as (url, _):
        stalled = [socket.create_connection(("127.0.0.1", _port(url))) for _ in range(4)]
        try:
            opened = time.monotonic()
            assert httpx.get(f"{url}/healthz", timeout=5).text == "ok"
            # Long before its read timeout, the oldest stalled connection was dropped.
            closed = _closed_by_server(stalled[0], opened + 5)
            assert closed is not None and closed - opened < 5
        finally:
            for sock in stalled:
                sock.close()


def _dribble(sock: socket.socket, data: bytes, every: float, deadline: float) -> float | None:
    """Send ``data`` a byte every ``every`` seconds (slowloris) until the server closes the
    connection (the time it did) or ``deadline`` (None)."""
    sock.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        for i in range(len(data) * 1000):
            if time.monotonic() > deadline:
                return None
            try:
                sock.send(data[i % len(data) : i % len(data) + 1])
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic()
            for _key, _ in sel.select(timeout=every):
                try:
                    if not sock.recv(65536):
                        return time.monotonic()
                except ConnectionResetError:
                    return time.monotonic()
    return None


@pytest.mark.slow
def test_slowloris_headers_are_cut_off_after_the_read_timeout(reg: Registry) -> None:
    with webhook(reg, "--read-timeout", str(READ_TIMEOUT)) as (url, _):
        headers = b"POST /alerts HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4096
        with socket.create_connection(("127.0.0.1", _port(url))) as sock:
            opened = time.monotonic()
            closed = _dribble(sock, headers, 0.2, opened + READ_TIMEOUT + 5)
            assert closed is not None, "a slowloris connection was never closed"
            assert READ_TIMEOUT * 0.8 <= closed - opened <= READ_TIMEOUT + 2
        # The same on a kept-alive connection, after a first request was answered.
        with socket.create_connection(("127.0.0.1", _port(url))) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"ok"):
                reply += sock.recv(65536)
            assert reply.startswith(b"HTTP/1.1 200")
            answered = time.monotonic()
            closed = _dribble(sock, headers, 0.2, answered + READ_TIMEOUT + 5)
            assert closed is not None, "a kept-alive slowloris connection was never closed"
            assert closed - answered <= READ_TIMEOUT + 2


@pytest.mark.slow
def test_a_declared_body_never_sent_is_answered_408_and_closed(reg: Registry) -> None:
    before = reg.tags()
    with webhook(reg, "--read-timeout", str(READ_TIMEOUT)) as (url, _):
        for auth in (f"Authorization: Bearer {TOKEN}\r\n".encode(), b""):
            with socket.create_connection(("127.0.0.1", _port(url))) as sock:
                sock.sendall(
                    b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + auth
                    + b'Content-Length: 1000\r\n\r\n{"version": "4"'
                )
                sent = time.monotonic()
                sock.settimeout(READ_TIMEOUT + 5)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
                closed = time.monotonic() - sent
                assert reply.startswith(b"HTTP/1.1 408" if auth else b"HTTP/1.1 401"), reply
                assert closed <= READ_TIMEOUT + 2
                if auth:
                    assert closed >= READ_TIMEOUT * 0.8
                    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["error"]
        assert httpx.get(f"{url}/healthz").text == "ok"
    assert reg.tags() == before
