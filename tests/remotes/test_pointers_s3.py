"""Pointer files on S3 (moto's server, a separate process): a pushed rollback writes the
pointer to the bucket with the endpoint and credentials DVC's remote config and the
environment give; a host reads it with If-None-Match (304 while nothing changed), swaps
when it changes, and asks git nothing in between."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl import serving
from mvctl._adapters.pointerstore import open_store
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.formats import pointer
from tests.conftest import Registry, copy_registry, run
from tests.remotes.conftest import Bucket
from tests.serving import test_serving as base
from tests.serving.test_pointerwatch import git_log, host_requests, watcher

template, host = base.template, base.host
__all__ = ["git_log"]  # a fixture this module uses

pytestmark = pytest.mark.slow  # a real S3 server and botocore in every test

KEY = "mvctl/channels/fraud/production.json"


@pytest.fixture
def reg(template: Path, tmp_path: Path, bucket: Bucket) -> Registry:
    """The serving template whose DVC remote (as this machine's config.local says) is the
    bucket, with pointers on; weights stay in the copy's folder store, which hosts name."""
    reg = copy_registry(template, tmp_path, storage=False)
    path = reg.root / "mvctl.yaml"
    path.write_text(path.read_text() + "pointers: true\n")
    reg.git("commit", "-q", "-am", "Pointer files for the fleet")
    modify = ("dvc", "remote", "modify", "--local", "mvctl")
    run(*modify, "url", bucket.url(), cwd=reg.root)
    run(*modify, "endpointurl", bucket.endpoint, cwd=reg.root)
    return reg


def test_a_rollback_reaches_a_host_through_an_s3_pointer(
    reg: Registry, host: Path, bucket: Bucket, git_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    doc = pointer.parse(bucket.read(f"store/{KEY}"), "fraud", "production")
    assert doc.version == "v0.1.0"
    assert bucket.secret.encode() not in bucket.read(f"store/{KEY}")

    # The host finds the endpoint where botocore looks (its credentials are in AWS_*).
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", bucket.endpoint)
    store = open_store(bucket.url(), {})
    first = store.read(KEY, None)
    assert first.validator.startswith("etag:") and first.body is not None
    assert store.read(KEY, first.validator).body is None  # 304 Not Modified

    watch, rec = watcher(reg, host, url=bucket.url())
    watch.step(0.0)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(1.0)
    assert serving.status(host).version == "v0.2.0"  # type: ignore[union-attr]
    quiet = host_requests(git_log, host)
    for now in range(2, 6):
        watch.step(float(now))
    assert host_requests(git_log, host) == quiet

    move = rollback(reg.root, "fraud", reason="bad", push=True)
    assert move.pointers is not None and move.pointers.warning is None
    watch.step(6.0)
    assert serving.status(host).version == "v0.1.0"  # type: ignore[union-attr]
    assert host_requests(git_log, host) == quiet + 1 and not rec.errors


def test_a_bucket_that_refuses_the_write_is_a_warning_and_the_rollback_stands(
    reg: Registry, bucket: Bucket
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    run("dvc", "remote", "modify", "--local", "mvctl", "url", "s3://no-such-bucket/x", cwd=reg.root)
    move = rollback(reg.root, "fraud", reason="bad", push=True)
    assert move.pushed and move.pointers is not None
    assert move.pointers.warning and "source of truth" in move.pointers.warning
    assert "NoSuchBucket" in move.pointers.warning and bucket.secret not in move.pointers.warning
    assert reg.git("ls-remote", "origin", "fraud@production")  # git moved
    assert pointer.parse(bucket.read(f"store/{KEY}")).version == "v0.2.0"  # the last written
