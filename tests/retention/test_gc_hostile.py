"""Hostile findings against gc's decision (issue 14): fewer versions than --keep-recent or
--keep-gold, a kept version whose manifest lacks its weights' file list, and "newest" by
when a version was registered, not by its number."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mvctl._adapters.dvcstore import open_store
from mvctl.registry.register import RegisterRequest, register
from mvctl.retention.prune import gc
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, make_registry, mvctl
from tests.retention._common import four_versions, stored


def test_the_default_keep_recent_keeps_all_of_fewer_versions(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    plan = gc(reg.root, "fraud").plan  # defaults: keep_gold 3, keep_recent 5; 4 versions
    assert {v.version: v.reasons for v in plan.pruned} == {}


def test_keep_gold_3_keeps_both_of_two_hand_marked_versions(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    for version in ("v1.0.0", "v2.0.0"):
        marked = mvctl(reg.root, "mark-gold", "fraud", version, "--reason", "baseline")
        assert marked.returncode == 0, marked.stderr
    plan = gc(reg.root, "fraud", keep_gold=3, keep_recent=0).plan
    why = {v.version: v.reasons for v in plan.versions}
    assert "marked gold (one of the last 3)" in why["v1.0.0"], why
    assert "marked gold (one of the last 3)" in why["v2.0.0"], why


def _release_dir(reg: Registry, i: int) -> str:
    reg.write("models/net/shared.bin", b"S" * 4096)
    reg.write("models/net/head.bin", b"H" * 512)
    reg.write("models/net/extra.bin", f"extra {i}".encode() * 30)
    reg.write("data/train.csv", "x,y\n1,0\n")
    request = RegisterRequest(
        model="fraud",
        cwd=reg.root,
        weights="models/net",
        data=("data/train.csv",),
        version=f"v{i}.0.0",
    )
    return register(request).manifest.weights[0].md5


def test_a_kept_version_keeps_every_file_its_stored_weights_listing_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = make_registry(tmp_path)
    monkeypatch.chdir(reg.root)
    _release_dir(reg, 1)
    listing = _release_dir(reg, 2)
    # v3: v2's very weights directory, its manifest written without the per-file list
    # (schema-valid: 'mvctl check' accepts it).
    path = reg.root / "registry" / "fraud" / "manifest.yaml"
    data = yaml.safe_load(path.read_text())
    data["version"] = "v3.0.0"
    for entry in data["weights"]:
        entry.pop("files", None)
        entry.pop("nfiles", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    reg.git("commit", "-q", "-am", "Register fraud v3.0.0 (by hand)")
    reg.git("tag", "-a", "-m", "Registration of v3.0.0", "fraud@v3.0.0")
    # The work tree moves on: the weights are no longer tracked at HEAD.
    reg.git("rm", "-q", "--cached", "models/net.dvc")
    (reg.root / "models" / "net.dvc").unlink()
    reg.git("commit", "-q", "-m", "Stop tracking models/net")
    reg.git("push", "-q", "origin", "main", "refs/tags/fraud@v3.0.0")
    checked = mvctl(reg.root, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with open_store(reg.root) as store:
        needed = set(store.listing(listing) or ())
    assert len(needed) == 3 and needed <= stored(reg)

    got = mvctl(reg.root, "gc", "fraud", "--keep-gold", "0", "--keep-recent", "1", "--yes")
    assert got.returncode == 0, got.stderr
    plan = gc(reg.root, "fraud", keep_gold=0, keep_recent=1).plan
    assert next(v for v in plan.versions if v.version == "v3.0.0").keep
    assert needed <= stored(reg), f"kept v3.0.0 lost {len(needed - stored(reg))} files"


def test_a_kept_version_whose_weights_listing_is_gone_stops_gc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = make_registry(tmp_path)
    monkeypatch.chdir(reg.root)
    _release_dir(reg, 1)
    listing = _release_dir(reg, 2)
    for base in (reg.storage, reg.root / ".dvc" / "cache"):
        for found in base.rglob(listing[2:]):
            found.unlink()
    before = stored(reg)
    got = mvctl(reg.root, "gc", "fraud", "--keep-gold", "0", "--keep-recent", "1", "--yes")
    assert got.returncode == 3, got.stdout + got.stderr
    assert listing in got.stderr
    assert stored(reg) == before
    assert not [t for t in reg.tags() if t.endswith("!")]


def test_the_most_recently_registered_version_is_the_newest(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = registry_factory(
        Release(weights=b"one" * 50, version="v1.0.0", date="2026-01-01T00:00:00+00:00"),
        Release(weights=b"two" * 50, version="v2.0.0", date="2026-02-01T00:00:00+00:00"),
        Release(weights=b"hotfix" * 50, version="v1.0.1", date="2026-03-01T00:00:00+00:00"),
    )
    reg = copy_registry(template, tmp_path)
    monkeypatch.chdir(reg.root)
    plan = gc(reg.root, "fraud", keep_gold=0, keep_recent=1).plan
    why = {v.version: (v.action, v.reasons) for v in plan.versions}
    assert why["v1.0.1"] == ("keep", ("one of the 1 newest",)), why
    assert why["v2.0.0"][0] == "prune", why
