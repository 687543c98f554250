"""Team remotes as real separate processes on loopback: moto's S3 server (one per session,
a bucket per test) and ``git daemon`` serving a registry's bare remote over git://.

Both wait on their port with a deadline (never a sleep) and are stopped at teardown."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run

DEADLINE = 30.0  # seconds a server gets to answer on its port


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until something accepts connections on 127.0.0.1:``port``; fail if ``proc`` exits
    first or the deadline passes."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            proc_wait(proc, 0.05)  # the server's own exit ends the wait early
    pytest.fail(f"nothing answered on port {port} within {DEADLINE} s")


def proc_wait(proc: subprocess.Popen[bytes], seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(seconds)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- S3 --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``moto_server`` on a free loopback port, as a team's S3 would be: another process."""
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        pytest.skip("moto's server is not installed: pip install -e '.[test]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port, proc, log)
        endpoint = f"http://127.0.0.1:{port}"
        _wait_for_http(endpoint, proc, log)
        yield endpoint
    finally:
        stop(proc)


def _wait_for_http(endpoint: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """The port accepts before the app serves: wait for an HTTP answer too."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto_server exited: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{endpoint}/", timeout=2):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it serves
        except OSError:
            proc_wait(proc, 0.05)
    pytest.fail(f"moto_server did not answer HTTP within {DEADLINE} s")


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket on the moto server, and the credentials the environment carries."""

    endpoint: str
    name: str
    key_id: str
    secret: str
    client: Any  # boto3's S3 client, for the test's own eyes

    def url(self, prefix: str = "store") -> str:
        return f"s3://{self.name}/{prefix}"

    def object_key(self, md5: str, prefix: str = "store") -> str:
        """Where DVC 3 stores object ``md5`` under the remote ``url(prefix)``."""
        return f"{prefix}/files/md5/{md5[:2]}/{md5[2:]}"

    def objects(self, prefix: str = "store") -> set[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=f"{prefix}/"
        )
        return {obj["Key"] for page in pages for obj in page.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.name, Key=key)["Body"].read())

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


def aws_isolated(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """No AWS profile, config or endpoint of the machine leaks into a test."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / ".aws" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / ".aws" / "credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def bucket(s3_endpoint: str, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """A new bucket; its credentials are in the environment, as a CI job or a host has
    them (the secret is random, so a grep for it finds only a leak)."""
    import boto3

    aws_isolated(monkeypatch, isolated_env)
    key_id = "AKIA" + secrets.token_hex(8).upper()
    secret = "mvctl-secret-" + secrets.token_hex(16)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    name = f"mvctl-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=name)
    return Bucket(s3_endpoint, name, key_id, secret, client)


# --- git daemon ------------------------------------------------------------------------


@dataclass(frozen=True)
class GitDaemon:
    """``git daemon`` exporting every repository under ``base`` (pushes allowed)."""

    base: Path
    port: int

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    """A real ``git daemon`` on a free loopback port serving ``tmp_path/served``."""
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    log = tmp_path / "git-daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={port}",
                f"--base-path={base}",
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                str(base),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, proc, log)
        yield GitDaemon(base, port)
    finally:
        stop(proc)


def serve_origin(daemon: GitDaemon, origin: Path, name: str = "registry.git") -> str:
    """Move the bare remote ``origin`` under the daemon; return its git:// URL. Anything
    still using the path fails loudly instead of bypassing the network transport."""
    target = daemon.base / name
    shutil.move(origin, target)
    url = daemon.url(name)
    run("git", "ls-remote", "--", url, cwd=daemon.base)  # answers before any test step
    return url
