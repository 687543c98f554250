"""mvctl get's core: a version's weights from a registry (the current one, or a bare git
remote with no checkout, read as untrusted) to a path, verified, written atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mvctl import api
from mvctl.errors import MvctlError, NotFoundError, OperationalError, PolicyError, UsageError
from mvctl.registry.get import get
from mvctl.registry.register import RegisterRequest, register
from mvctl.serving.get import Options, Wanted
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, git

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud: {}
"""
WEIGHTS = {"v0.1.0": b"one", "v0.2.0": b"two"}


@pytest.fixture
def reg(registry_factory: RegistryFactory, tmp_path: Path) -> Registry:
    """v0.1.0 (in production) and v0.2.0, published to a bare origin. The versions'
    commits name the template's DVC store (read only here); a test that breaks an object
    breaks it in this copy's own store and names that with dvc_remote."""
    template = registry_factory(
        *(Release(weights=w, push=True, data=(), metrics=False) for w in WEIGHTS.values()),
        config=CONFIG,
        promotions=(("v0.1.0", "production"),),
    )
    return copy_registry(template, tmp_path, storage=False)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    where = tmp_path / "out"
    where.mkdir()
    return where


def remote(reg: Registry, ref: str, out: Path | None, **kw: object) -> Path:
    options = Options(cwd=reg.root.parent, out=out, **kw)  # type: ignore[arg-type]
    return get(Wanted.parse(ref), options, str(reg.origin)).path


def object_path(reg: Registry, version: str) -> Path:
    md5 = hashlib.md5(WEIGHTS[version]).hexdigest()  # noqa: S324 - DVC's content address
    return reg.storage / "files" / "md5" / md5[:2] / md5[2:]


@pytest.mark.parametrize(
    ("ref", "version", "channel"),
    [
        ("fraud@v0.2.0", "v0.2.0", None),
        ("fraud@production", "v0.1.0", "production"),
        ("fraud", "v0.2.0", None),  # the newest live version
    ],
)
def test_a_version_comes_from_a_bare_remote_verified(
    reg: Registry, out: Path, ref: str, version: str, channel: str | None
) -> None:
    options = Options(cwd=out, out=None)
    got = get(Wanted.parse(ref), options, str(reg.origin))
    assert got.path == out / "model.bin"
    assert got.path.read_bytes() == WEIGHTS[version]
    assert (got.model, got.version, got.channel, got.size) == ("fraud", version, channel, 3)
    assert got.sha256 == hashlib.sha256(WEIGHTS[version]).hexdigest()
    assert got.commit == git(reg.origin, "rev-parse", f"fraud@{version}^{{commit}}").strip()
    assert names(out) == ["model.bin"]  # no temporary entry left


def test_the_current_registry_is_read_without_a_remote(
    reg: Registry, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(reg.root, "remote", "remove", "origin")  # nothing but the work tree's own git
    monkeypatch.chdir(reg.root / "registry")  # a subdirectory of the registry
    got = get(Wanted.parse("fraud", "production"), Options(cwd=Path.cwd(), out=out / "w.bin"))
    assert (got.path, got.version) == (out / "w.bin", "v0.1.0")
    assert got.path.read_bytes() == b"one"


def test_out_is_a_file_or_a_directory_to_write_into(reg: Registry, out: Path) -> None:
    assert remote(reg, "fraud@v0.1.0", out) == out / "model.bin"
    assert remote(reg, "fraud@v0.1.0", out / "renamed.bin") == out / "renamed.bin"
    assert (out / "renamed.bin").read_bytes() == b"one"
    with pytest.raises(OperationalError, match="is not a directory"):
        remote(reg, "fraud@v0.1.0", out / "missing" / "w.bin")


def test_what_is_there_stays_unless_forced(reg: Registry, out: Path) -> None:
    (out / "model.bin").write_bytes(b"mine")
    with pytest.raises(OperationalError, match="exists") as caught:
        remote(reg, "fraud@v0.2.0", out)
    assert caught.value.exit_code == 3
    assert (out / "model.bin").read_bytes() == b"mine"
    remote(reg, "fraud@v0.2.0", out, force=True)
    assert (out / "model.bin").read_bytes() == b"two"
    (out / "model.bin").unlink()
    (out / "model.bin").mkdir()  # a directory in the way goes too, with force
    (out / "model.bin" / "x").write_text("x")
    remote(reg, "fraud@v0.1.0", out, force=True)
    assert (out / "model.bin").read_bytes() == b"one"
    assert names(out) == ["model.bin"]


@pytest.mark.parametrize("content", [b"onf", b"one and more", b""])
def test_a_corrupted_object_is_refused_and_leaves_nothing(
    reg: Registry, out: Path, content: bytes
) -> None:
    object_path(reg, "v0.1.0").chmod(0o644)
    object_path(reg, "v0.1.0").write_bytes(content)  # same size, larger, truncated
    with pytest.raises(PolicyError, match="do not match the manifest's sha256") as caught:
        remote(reg, "fraud@production", out, dvc_remote=str(reg.storage))
    assert caught.value.exit_code == 1
    assert "nothing was written" in str(caught.value.hint)
    assert names(out) == []


def test_a_corrupted_object_never_replaces_a_file_even_forced(reg: Registry, out: Path) -> None:
    (out / "model.bin").write_bytes(b"mine")
    object_path(reg, "v0.1.0").chmod(0o644)
    object_path(reg, "v0.1.0").write_bytes(b"bad")
    with pytest.raises(PolicyError):
        remote(reg, "fraud@v0.1.0", out, dvc_remote=str(reg.storage), force=True)
    assert (out / "model.bin").read_bytes() == b"mine"
    assert names(out) == ["model.bin"]


def test_a_missing_object_is_an_operational_error(reg: Registry, out: Path) -> None:
    object_path(reg, "v0.2.0").unlink()
    with pytest.raises(OperationalError, match="missing from the DVC remote"):
        remote(reg, "fraud@v0.2.0", out, dvc_remote=str(reg.storage))
    assert names(out) == []


@pytest.mark.parametrize(
    ("ref", "error", "match"),
    [
        ("nope@v0.1.0", NotFoundError, "model 'nope' has no registered versions"),
        ("fraud@v9.9.9", NotFoundError, "fraud has no version v9.9.9"),
        ("fraud@staging", NotFoundError, "fraud@staging holds no version"),
    ],
)
def test_unknown_names_are_not_found(
    reg: Registry, out: Path, ref: str, error: type[MvctlError], match: str
) -> None:
    with pytest.raises(error, match=match) as caught:
        remote(reg, ref, out)
    assert caught.value.exit_code == 3
    assert names(out) == []


@pytest.mark.parametrize("ref", ["Fraud@v1.0.0", "fraud@", "fraud@Prod!", "-x"])
def test_malformed_refs_are_usage_errors(ref: str) -> None:
    with pytest.raises(UsageError) as caught:
        Wanted.parse(ref)
    assert caught.value.exit_code == 2


def test_a_ref_is_given_once() -> None:
    assert Wanted.parse("fraud", "v1.2.0") == Wanted("fraud", version="v1.2.0")
    assert Wanted.parse("fraud", "production") == Wanted("fraud", channel="production")
    with pytest.raises(UsageError):
        Wanted.parse("fraud@v1.2.0", "production")


def _hostile(
    reg: Registry, version: str, edit: dict[str, object], files: dict[str, str] | None = None
) -> None:
    """An attacker with push access: a version tag on a commit whose manifest's weights
    entry is ``edit``ed (and ``files`` written)."""
    clone = reg.root.parent / "attacker"
    git(reg.root.parent, "clone", "-q", str(reg.origin), str(clone))
    git(clone, "checkout", "-q", "--detach", "fraud@v0.2.0^{commit}")
    for rel, text in (files or {}).items():
        (clone / rel).write_text(text)
        git(clone, "add", "-f", rel)
    path = clone / "registry" / "fraud" / "manifest.yaml"
    manifest = yaml.safe_load(path.read_text())
    manifest["version"] = version
    manifest["weights"][0].update(edit)
    path.write_text(yaml.safe_dump(manifest))
    git(clone, "commit", "-q", "-am", "hostile")
    git(clone, "tag", "-a", "-m", f"fraud@{version}", f"fraud@{version}")
    git(clone, "push", "-q", "origin", f"refs/tags/fraud@{version}")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"path": "../../escaped.bin"}, "not a safe relative path"),
        ({"path": "/tmp/escaped.bin"}, "not a safe relative path"),
        ({"md5": "../../../etc/passwd"}, "invalid object id"),
        ({"size": -1}, "no valid size"),
        ({"sha256": "x" * 64}, "no valid sha256"),
        ({"path": "models/other.bin"}, "does not match the manifest"),  # no such .dvc file
    ],
)
def test_a_hostile_manifest_is_refused_before_any_download(
    reg: Registry, out: Path, edit: dict[str, object], match: str
) -> None:
    _hostile(reg, "v6.6.6", edit)
    with pytest.raises(OperationalError, match=match):
        remote(reg, "fraud@v6.6.6", out)
    assert names(out) == []
    assert not (reg.root.parent / "escaped.bin").exists()


def test_a_hostile_name_never_picks_a_dotfile(reg: Registry, out: Path) -> None:
    dvcfile = (reg.root / "models" / "model.bin.dvc").read_text()
    if "path: model.bin" not in dvcfile:  # the fixture's .dvc file names what it tracks
        pytest.fail(dvcfile)
    forged = {"models/.bashrc.dvc": dvcfile.replace("path: model.bin", "path: .bashrc")}
    _hostile(reg, "v6.6.6", {"path": "models/.bashrc"}, forged)
    (out / ".bashrc").write_text("mine")
    with pytest.raises(OperationalError, match="a hidden name"):
        remote(reg, "fraud@v6.6.6", out, force=True)
    assert (out / ".bashrc").read_text() == "mine"
    assert remote(reg, "fraud@v6.6.6", out / "chosen.bin").read_bytes() == b"two"


def test_a_manifest_of_another_version_is_refused(reg: Registry, out: Path) -> None:
    _hostile(reg, "v0.2.0-rc.1", {})  # the tag says v0.2.0-rc.1, so does the manifest
    path = remote(reg, "fraud@v0.2.0-rc.1", out)
    assert path.read_bytes() == b"two"
    clone = reg.root.parent / "attacker"
    git(clone, "tag", "-a", "-m", "lie", "fraud@v7.0.0", "HEAD")  # a manifest saying rc.1
    git(clone, "push", "-q", "origin", "refs/tags/fraud@v7.0.0")
    with pytest.raises(OperationalError, match="says version"):
        remote(reg, "fraud@v7.0.0", out / "other.bin")
    assert names(out) == ["model.bin"]


def test_api_get_returns_the_path_written(
    reg: Registry, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(out)
    assert api.get("fraud", "production", repo=reg.origin) == out / "model.bin"
    assert (out / "model.bin").read_bytes() == b"one"
    assert api.get("fraud@v0.2.0", repo=str(reg.origin), out="two.bin") == out / "two.bin"
    assert (out / "two.bin").read_bytes() == b"two"
    monkeypatch.chdir(reg.root)
    assert api.get("fraud", "v0.2.0", out=out / "local.bin") == out / "local.bin"
    with pytest.raises(api.NotFoundError):
        api.get("fraud", "v9.0.0", repo=reg.origin, out=out)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


class Recorded:
    """A ProgressSink that keeps each task's label, total and the bytes reported."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None, list[int]]] = []

    def task(self, label: str, total: int | None) -> Callable[[int], None]:
        seen: list[int] = []
        self.tasks.append((label, total, seen))
        return seen.append


def test_progress_reports_byte_totals(reg: Registry, out: Path) -> None:
    progress = Recorded()
    options = Options(cwd=out)
    get(Wanted.parse("fraud@v0.2.0"), options, str(reg.origin), progress)
    assert [(label, total, sum(seen)) for label, total, seen in progress.tasks] == [
        ("fraud v0.2.0 model.bin", 3, 3)
    ]


def test_directory_weights_come_whole_and_verified(registry: Registry, tmp_path: Path) -> None:
    files = {"net/config.json": b"{}", "net/layers/0.bin": b"zero", "net/layers/1.bin": b"one"}
    for rel, content in files.items():
        registry.write(f"models/{rel}", content)
    register(RegisterRequest(model="fraud", cwd=registry.root, weights="models/net"))
    out = tmp_path / "out"
    out.mkdir()
    got = get(Wanted.parse("fraud"), Options(cwd=out), str(registry.origin))
    assert got.path == out / "net"
    assert {
        p.relative_to(out).as_posix(): p.read_bytes() for p in got.path.rglob("*") if p.is_file()
    } == files
    assert got.size == sum(len(c) for c in files.values())
    assert names(out) == ["net"]
    # A file of the directory broken in the store: refused, and nothing is left.
    md5 = hashlib.md5(b"zero").hexdigest()  # noqa: S324 - DVC's content address
    stored = registry.storage / "files" / "md5" / md5[:2] / md5[2:]
    stored.chmod(0o644)
    stored.write_bytes(b"zer0")
    again = tmp_path / "again"
    again.mkdir()
    with pytest.raises(PolicyError):
        get(Wanted.parse("fraud"), Options(cwd=again), str(registry.origin))
    assert names(again) == []
