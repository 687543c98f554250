"""A registry whose DVC remote is S3 (moto's server, a separate process on loopback):
register pushes there, a host with its own DVC config for the bucket pulls and verifies,
a corrupted object is refused while the previous version keeps serving, gc deletes from
the bucket, and the credentials (environment, .dvc/config.local) never reach git or output.

The registry commits what a team commits: the remote's URL and the endpoint of its
S3-compatible store. Of that, a host takes only the URL; the endpoint it uses is the one
its own DVC config gives the remote it configured for that URL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, make_registry, mvctl, run
from tests.remotes.conftest import Bucket

pytestmark = pytest.mark.slow  # a real S3 server and DVC's S3 client in every test

W1, W2, W3, W4 = (f"weights {n} ".encode() * 500 for n in ("one", "two", "three", "four"))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - DVC's content address


def s3_registry(tmp_path: Path, bucket: Bucket, *, local_credentials: bool = False) -> Registry:
    """A registry whose committed default DVC remote is the bucket (URL and endpoint);
    credentials come from the environment, or from the git-ignored .dvc/config.local."""
    reg = make_registry(tmp_path)
    modify = ("dvc", "remote", "modify")
    run(*modify, "mvctl", "url", bucket.url(), cwd=reg.root)
    run(*modify, "mvctl", "endpointurl", bucket.endpoint, cwd=reg.root)
    if local_credentials:
        run(*modify, "--local", "mvctl", "access_key_id", bucket.key_id, cwd=reg.root)
        run(*modify, "--local", "mvctl", "secret_access_key", bucket.secret, cwd=reg.root)
    reg.git("commit", "-q", "-am", "Artifacts on the team's S3")
    reg.git("push", "-q", "origin", "main")
    return reg


def register_cli(reg: Registry, version: str, weights: bytes) -> subprocess.CompletedProcess[str]:
    reg.train(weights=weights)
    args = ("-w", "models/model.bin", "-d", "data/train.csv", "--metrics", "metrics.json")
    proc = mvctl(reg.root, "register", "fraud", *args, "--version", version)
    assert proc.returncode == 0, proc.stderr
    return proc


def register_in_process(reg: Registry, version: str, weights: bytes) -> None:
    reg.train(weights=weights)
    register(
        RegisterRequest(
            model="fraud",
            cwd=reg.root,
            weights="models/model.bin",
            data=("data/train.csv",),
            metrics_file="metrics.json",
            version=version,
        )
    )


def host_env(tmp_path: Path, bucket: Bucket, *, remote: bool = True) -> dict[str, str]:
    """A serving host's environment: its own DVC global config (a remote for the
    bucket's URL with the endpoint, when ``remote``) and the credentials in AWS_*."""
    config_dir = tmp_path / "host-home" / "dvc"
    config_dir.mkdir(parents=True)
    env = {**os.environ, "DVC_GLOBAL_CONFIG_DIR": str(config_dir)}
    if remote:
        cwd = config_dir.parent
        subprocess.run(
            ["dvc", "remote", "add", "--global", "team", bucket.url()], cwd=cwd, env=env, check=True
        )
        subprocess.run(
            ["dvc", "remote", "modify", "--global", "team", "endpointurl", bucket.endpoint],
            cwd=cwd,
            env=env,
            check=True,
        )
    return env


def pull(reg: Registry, dest: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mvctl", "pull", str(reg.origin), "fraud", "--dest", str(dest)]
    return subprocess.run(argv, cwd=dest.parent, env=env, capture_output=True, text=True)


def served(dest: Path) -> tuple[str, bytes]:
    state = json.loads((dest / "state.json").read_text())
    return state["version"], (dest / "current" / "model.bin").read_bytes()


def test_register_pushes_to_s3_and_a_host_with_its_own_config_pulls_it(
    tmp_path: Path, bucket: Bucket
) -> None:
    reg = s3_registry(tmp_path, bucket)
    register_cli(reg, "v0.1.0", W1)
    data = md5((reg.root / "data" / "train.csv").read_bytes())
    keys = bucket.objects()
    assert {bucket.object_key(md5(W1)), bucket.object_key(data)} <= keys
    assert bucket.read(bucket.object_key(md5(W1))) == W1
    assert mvctl(reg.root, "promote", "fraud", "v0.1.0", "--to", "production").returncode == 0

    dest = tmp_path / "host"
    dest.mkdir()
    got = pull(reg, dest, host_env(tmp_path, bucket))
    assert got.returncode == 0, got.stderr
    assert served(dest) == ("v0.1.0", W1)
    # Verified from the manifest's sha256, which the host keeps beside the weights.
    assert hashlib.sha256(W1).hexdigest() in (dest / "current" / "manifest.yaml").read_text()
    assert not list((dest / "versions").glob(".tmp-*"))  # DVC's scratch is gone


def test_a_host_does_not_take_the_endpoint_from_the_registry_commit(
    tmp_path: Path, bucket: Bucket
) -> None:
    """The committed endpoint applies to the registry's own DVC calls, never to a host's:
    a pusher could point it anywhere. A host with no remote of its own for the URL opens
    it with no options, so it reaches for AWS's endpoint, not the committed one."""
    reg = s3_registry(tmp_path, bucket)
    register_in_process(reg, "v0.1.0", W1)
    promote(reg.root, "fraud", "v0.1.0", "production")
    dest = tmp_path / "host"
    dest.mkdir()
    env = host_env(tmp_path, bucket, remote=False)
    # Where a host's S3 client goes without an endpoint: a closed loopback port stands in
    # for AWS (botocore's documented override, so the test never leaves the machine).
    env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"
    env["AWS_MAX_ATTEMPTS"] = "1"
    refused = pull(reg, dest, env)
    assert refused.returncode == 3, refused.stderr
    assert "http://127.0.0.1:9/" in refused.stderr and bucket.endpoint not in refused.stderr
    assert not (dest / "current").exists()
    # The same host with the endpoint as its own remote option pulls.
    env = host_env(tmp_path / "again", bucket)
    assert pull(reg, dest, env).returncode == 0
    assert served(dest) == ("v0.1.0", W1)


FAULTS = {
    # fault: (what the bucket gets instead of v0.2.0's object, exit code, message)
    "corrupted": (W2[::-1], 1, "do not match the manifest's sha256"),
    "oversized": (W2 + b"!" * 4096, 3, "larger than the"),
    "missing": (None, 3, "missing from the DVC remote"),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_bad_object_in_the_bucket_is_refused_and_the_previous_version_keeps_serving(
    tmp_path: Path, bucket: Bucket, fault: str
) -> None:
    reg = s3_registry(tmp_path, bucket)
    register_in_process(reg, "v0.1.0", W1)
    register_in_process(reg, "v0.2.0", W2)
    promote(reg.root, "fraud", "v0.1.0", "production")
    dest = tmp_path / "host"
    dest.mkdir()
    env = host_env(tmp_path, bucket)
    assert pull(reg, dest, env).returncode == 0
    body, code, message = FAULTS[fault]
    key = bucket.object_key(md5(W2))
    if body is None:
        bucket.delete(key)
    else:
        bucket.put(key, body)
    promote(reg.root, "fraud", "v0.2.0", "production")
    refused = pull(reg, dest, env)
    assert refused.returncode == code, refused.stderr
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert served(dest) == ("v0.1.0", W1)
    assert sorted(p.name for p in (dest / "versions").iterdir()) == ["v0.1.0"]


def test_credentials_never_reach_git_nor_output(
    tmp_path: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry side keeps its keys in .dvc/config.local (git-ignored, as DVC makes
    it), the host in its environment; neither appears in any commit, tag or output."""
    reg = s3_registry(tmp_path, bucket, local_credentials=True)
    host = host_env(tmp_path, bucket)  # the host's copy of the keys, before they go
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")  # the registry side: .dvc/config.local only
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    outputs = [register_cli(reg, "v0.1.0", W1), register_cli(reg, "v0.2.0", W2)]
    for version, args in (("v0.1.0", ("--to", "production")), ("v0.2.0", ("--to", "staging"))):
        outputs.append(mvctl(reg.root, "promote", "fraud", version, *args, "--json"))
    outputs.append(mvctl(reg.root, "gc", "fraud", "--json"))
    outputs.append(mvctl(reg.root, "check"))
    assert all(p.returncode == 0 for p in outputs), [p.stderr for p in outputs]
    assert bucket.object_key(md5(W2)) in bucket.objects()  # the keys were used, and worked

    dest = tmp_path / "host"
    dest.mkdir()
    outputs.append(pull(reg, dest, host))
    assert outputs[-1].returncode == 0, outputs[-1].stderr
    for json_flag in ((), ("--json",)):
        argv = [sys.executable, "-m", "mvctl", "pull", "--status", *json_flag, "--dest", str(dest)]
        outputs.append(subprocess.run(argv, env=host, capture_output=True, text=True))

    assert ".dvc/config.local" not in reg.git("ls-files", ".dvc")
    for repo in (reg.root, reg.origin):
        history = [
            git_text(repo, "log", "-p", "--all", "--format=%H %B"),
            git_text(repo, "for-each-ref", "--format=%(refname) %(contents)", "refs/tags"),
            git_text(repo, "show", "main:.dvc/config"),
        ]
        assert bucket.endpoint in history[2]  # what a team commits: URL and endpoint
        for text in history:
            assert bucket.secret not in text and bucket.key_id not in text
    for proc in outputs:
        for text in (proc.stdout, proc.stderr):
            assert bucket.secret not in text and bucket.key_id not in text
    for path in dest.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            assert bucket.secret.encode() not in content, path
            assert bucket.key_id.encode() not in content, path


def git_text(repo: Path, *args: str) -> str:
    return run("git", *args, cwd=repo).stdout


def test_gc_deletes_the_pruned_objects_from_the_bucket(tmp_path: Path, bucket: Bucket) -> None:
    reg = s3_registry(tmp_path, bucket)
    for version, weights in zip(
        ("v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0"), (W1, W2, W3, W4), strict=True
    ):
        register_in_process(reg, version, weights)
    promote(reg.root, "fraud", "v1.0.0", "production")
    data = bucket.object_key(md5((reg.root / "data" / "train.csv").read_bytes()))
    objects = {w: bucket.object_key(md5(w)) for w in (W1, W2, W3, W4)}
    assert set(objects.values()) | {data} <= bucket.objects()

    done = mvctl(reg.root, "gc", "fraud", "--keep-gold", "0", "--keep-recent", "1", "--yes")
    assert done.returncode == 0, done.stderr
    left = bucket.objects()
    assert objects[W2] not in left and objects[W3] not in left  # pruned
    assert {objects[W1], objects[W4], data} <= left  # held by production, newest, shared
    # The host still gets what production holds, straight from the bucket.
    dest = tmp_path / "host"
    dest.mkdir()
    assert pull(reg, dest, host_env(tmp_path, bucket)).returncode == 0
    assert served(dest) == ("v1.0.0", W1)
