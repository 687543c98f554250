"""`mvctl get` as a user runs it: a version's weights without a checkout, one line or one
JSON object, and the exit code of the exit-code table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud: {}
"""


@pytest.fixture
def reg(registry_factory: RegistryFactory, tmp_path: Path) -> Registry:
    """v0.1.0 (b"one", in production) and v0.2.0 (b"two"), published to a bare origin."""
    template = registry_factory(
        Release(weights=b"one", push=True, data=(), metrics=False),
        Release(weights=b"two", push=True, data=(), metrics=False),
        config=CONFIG,
        promotions=(("v0.1.0", "production"),),
    )
    return copy_registry(template, tmp_path, storage=False)


def test_get_a_channel_in_the_registry_into_the_current_directory(reg: Registry) -> None:
    proc = mvctl(reg.root, "get", "fraud@production")
    assert proc.returncode == 0, proc.stderr
    assert (reg.root / "model.bin").read_bytes() == b"one"
    sha = hashlib.sha256(b"one").hexdigest()
    assert f"fraud v0.1.0 (production) -> {reg.root / 'model.bin'} (3 bytes, sha256 " in (
        proc.stdout
    )
    assert f"{sha[:12]}, verified)" in proc.stdout
    again = mvctl(reg.root, "get", "fraud@v0.2.0")  # never over what is there
    assert again.returncode == 3
    assert "exists" in again.stderr and "--force" in again.stderr
    assert (reg.root / "model.bin").read_bytes() == b"one"
    forced = mvctl(reg.root, "get", "fraud@v0.2.0", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (reg.root / "model.bin").read_bytes() == b"two"


def test_get_from_a_bare_remote_as_json(reg: Registry, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"  # no registry, no git: the remote is all there is
    elsewhere.mkdir()
    proc = mvctl(elsewhere, "get", "fraud", "--repo", str(reg.origin), "-o", "w.bin", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    commit = reg.git("rev-parse", "fraud@v0.2.0^{commit}").strip()
    assert got == {
        "model": "fraud",
        "version": "v0.2.0",
        "channel": None,
        "commit": commit,
        "path": str(elsewhere / "w.bin"),
        "sha256": hashlib.sha256(b"two").hexdigest(),
        "md5": hashlib.md5(b"two").hexdigest(),  # noqa: S324 - DVC's content address
        "bytes": 3,
    }
    assert names(elsewhere) == ["w.bin"]
    relative = mvctl(
        tmp_path,
        "get",
        "fraud@production",
        "--repo",
        "copy/origin.git",
        "--json",
        "--out",
        "elsewhere",
    )
    assert relative.returncode == 0, relative.stderr
    assert json.loads(relative.stdout)["channel"] == "production"
    assert (elsewhere / "model.bin").read_bytes() == b"one"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("nope@v0.1.0",), 3, "model 'nope' has no registered versions"),
        (("fraud@v9.9.9",), 3, "fraud has no version v9.9.9"),
        (("fraud@staging",), 3, "fraud@staging holds no version"),
        (("Bad@v1.0.0",), 2, "invalid model name"),
        (("fraud", "--dvc-remote", "-x"), 2, "invalid --dvc-remote"),
    ],
)
def test_errors_exit_with_their_code(
    reg: Registry, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    for repo in ((), ("--repo", str(reg.origin))):
        proc = mvctl(reg.root, "get", *args, *repo, "--json")
        assert proc.returncode == code, proc.stderr
        error = json.loads(proc.stdout)
        assert error["exit"] == code
        assert message in error["error"]
        assert not (reg.root / "model.bin").exists()


def test_a_corrupted_object_exits_1_and_leaves_no_file(registry: Registry) -> None:
    """The version's own committed DVC remote (no --dvc-remote) holds a broken object."""
    registry.write("models/model.bin", b"good weights")
    register(RegisterRequest(model="fraud", cwd=registry.root, weights="models/model.bin"))
    promote(registry.root, "fraud", "v0.1.0", "production")
    md5 = hashlib.md5(b"good weights").hexdigest()  # noqa: S324 - DVC's content address
    stored = registry.storage / "files" / "md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    stored.write_bytes(b"evil weights")
    out = registry.root.parent / "out"
    out.mkdir()
    for repo in ((), ("--repo", str(registry.origin))):
        proc = mvctl(registry.root, "get", "fraud@production", "-o", str(out), *repo)
        assert proc.returncode == 1, proc.stderr
        assert "do not match the manifest's sha256" in proc.stderr
        assert "nothing was written" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert names(out) == []


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())
