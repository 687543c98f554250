"""gc on a registry whose versions share content: the same dataset files, identical files
inside directory weights. Nothing a kept version needs goes, every kept version still
pulls and verifies on a host, and the bytes freed are what the DVC remote loses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.registry.register import RegisterRequest, register
from mvctl.retention.prune import gc
from mvctl.serving.pull import pull
from mvctl.serving.request import PullRequest
from tests.conftest import Registry, make_registry, mvctl

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    retention: {keep_gold: 1, keep_recent: 1}
"""


def storage_bytes(reg: Registry) -> int:
    return sum(p.stat().st_size for p in reg.storage.rglob("*") if p.is_file())


def stored(reg: Registry) -> set[str]:
    """Object ids in the DVC remote (files/md5/ab/cdef... -> abcdef...)."""
    return {
        p.parent.name + p.name for p in (reg.storage / "files" / "md5").rglob("*") if p.is_file()
    }


def release(reg: Registry, i: int, dataset: str) -> str:
    reg.write("models/net/shared.bin", b"S" * 4096)  # identical in every version
    reg.write("models/net/head.bin", f"head-{i}".encode() * 100)
    reg.write("data/train/rows.csv", "x,y\n" + "1,0\n" * 50)  # identical in every version
    reg.write("data/train/notes.csv", f"dataset {dataset}\n")
    reg.write("metrics.json", '{"auc": 0.95}')
    result = register(
        RegisterRequest(
            model="fraud",
            cwd=reg.root,
            weights="models/net",
            data=("data/train",),
            metrics_file="metrics.json",
            version=f"v{i}.0.0",
        )
    )
    return result.manifest.version


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    reg = make_registry(tmp_path)
    monkeypatch.chdir(reg.root)
    reg.write("mvctl.yaml", CONFIG)
    reg.git("commit", "-q", "-am", "retention policy")
    for i in range(1, 7):
        release(reg, i, "A" if i <= 3 else "B")
    for version in ("v2.0.0", "v3.0.0", "v4.0.0"):  # v2 and v3 gold, v4 held
        promote(reg.root, "fraud", version, "production")
    return reg


def test_gc_frees_only_what_no_kept_version_needs(shared: Registry, tmp_path: Path) -> None:
    reg = shared
    plan = gc(reg.root, "fraud").plan
    actions = {v.version: (v.action, v.reasons) for v in plan.versions}
    assert {v for v, (a, _) in actions.items() if a == "prune"} == {"v1.0.0", "v2.0.0", "v5.0.0"}
    assert actions["v3.0.0"] == ("keep", ("gold on production (one of its last 1)",))
    assert actions["v4.0.0"] == ("keep", ("held by production",))
    assert actions["v6.0.0"] == ("keep", ("one of the 1 newest",))

    from mvctl._adapters.git import GitRepo
    from mvctl.registry.read import load_manifest, model_tags

    git = GitRepo.open(reg.root)
    tags = model_tags(git, "fraud")

    def manifest(version: str):  # type: ignore[no-untyped-def]
        return load_manifest(git, "fraud", version, tags.versions[version].commit)

    # What each pruned version alone has: its weights listing and its head.bin.
    expected = set()
    for version in ("v1.0.0", "v2.0.0", "v5.0.0"):
        [weights] = manifest(version).weights
        head = next(f for f in weights.files if f.path == "head.bin")
        expected |= {weights.md5, head.md5}
    kept_needs = set()
    for version in ("v3.0.0", "v4.0.0", "v6.0.0"):
        m = manifest(version)
        kept_needs |= {m.weights[0].md5, *(f.md5 for f in m.weights[0].files), m.dataset[0].md5}
    assert {o.oid for o in plan.objects} == expected
    assert not expected & kept_needs
    assert expected <= stored(reg)

    before = storage_bytes(reg)
    result = mvctl(reg.root, "gc", "fraud", "--yes")
    assert result.returncode == 0, result.stderr
    assert "pruned 3 versions" in result.stdout
    assert before - storage_bytes(reg) == plan.bytes > 0
    assert not expected & stored(reg)
    assert kept_needs <= stored(reg)

    # Every kept version pulls and verifies on a host; a pruned one is refused.
    for version in ("v3.0.0", "v6.0.0", "v4.0.0"):
        if version != "v4.0.0":
            promote(reg.root, "fraud", version, "staging")
        channel = "production" if version == "v4.0.0" else "staging"
        host = tmp_path / f"host-{version}"
        got = pull(PullRequest(str(reg.origin), "fraud", channel, host))
        assert got.served.version == version
        assert (got.served.path / "shared.bin").read_bytes() == b"S" * 4096
    refused = mvctl(reg.root, "promote", "fraud", "v1.0.0", "--to", "staging")
    assert refused.returncode == 1
    assert "pruned by 'mvctl gc'" in refused.stderr

    # A second run has nothing left to do, and check still passes.
    again = gc(reg.root, "fraud", dry_run=False)
    assert again.plan.objects == ()
    assert {v.version for v in again.plan.versions if v.action == "pruned"} == {
        "v1.0.0",
        "v2.0.0",
        "v5.0.0",
    }
    assert mvctl(reg.root, "check").returncode == 0
    for command in (
        ("show", "fraud@v1.0.0"),
        ("diff", "fraud", "v1.0.0", "v2.0.0"),
        ("lineage", "fraud"),
        ("history", "fraud"),
    ):
        shown = mvctl(reg.root, *command)
        assert shown.returncode == 0, (command, shown.stderr)


def test_gc_of_one_model_keeps_what_another_model_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = make_registry(tmp_path)
    monkeypatch.chdir(reg.root)
    for i, weights in enumerate((b"first" * 99, b"second" * 99, b"third" * 99), start=1):
        reg.train(weights=weights)
        register(
            RegisterRequest(
                model="fraud", cwd=reg.root, weights="models/model.bin", data=("data/train.csv",),
                version=f"v{i}.0.0",
            )
        )  # fmt: skip
    # churn registers fraud v1's very weights (the same object), under another path.
    reg.write("models/churn.bin", b"first" * 99)
    register(RegisterRequest(model="churn", cwd=reg.root, weights="models/churn.bin"))
    plan = gc(reg.root, "fraud", keep_gold=0, keep_recent=1).plan
    assert {v.version for v in plan.pruned} == {"v1.0.0", "v2.0.0"}
    [freed] = plan.objects  # v2's weights only: v1's are churn's too, the dataset v3's
    assert next(v for v in plan.versions if v.version == "v2.0.0").objects == (freed,)
    before = storage_bytes(reg)
    gc(reg.root, "fraud", keep_gold=0, keep_recent=1, dry_run=False)
    assert before - storage_bytes(reg) == freed.bytes == len(b"second" * 99)
    assert freed.oid not in stored(reg)
    # The same content registered again is uploaded again (no stale "the remote has it").
    reg.train(weights=b"second" * 99)
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="models/model.bin"))
    assert freed.oid in stored(reg)
    host = tmp_path / "host"
    promote(reg.root, "churn", "v0.1.0", "production")
    assert pull(PullRequest(str(reg.origin), "churn", "production", host)).served.version == (
        "v0.1.0"
    )
