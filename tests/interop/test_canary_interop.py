"""GTO and `dvc artifacts get` read a registry with weighted canary events: a weighted
promotion, a weight change and a stop (GTO's own unassignment tag)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mvctl.channels.promotion import promote
from mvctl.channels.weights import set_weight, stop
from mvctl.registry.read import show
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, run


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), push=True) for v in ("a", "bb", "ccc")))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def gto(reg: Registry, *args: str) -> Any:
    return json.loads(run("gto", *args, "--json", cwd=reg.root).stdout)


@pytest.mark.slow
def test_gto_and_dvc_read_weighted_promotions_weight_changes_and_stops(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GTO orders events by tag time (one-second resolution): one second each, by git's clock.
    def at(second: int) -> None:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-01-01T00:00:{second:02d}+00:00")

    at(1)
    promote(reg.root, "fraud", "v0.1.0", "production")
    at(2)
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=10)
    at(3)
    set_weight(reg.root, "fraud", 40)
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    # GTO sees one version on canary (a weight change is another assignment of it).
    [held] = gto(reg, "show", "fraud#canary")
    assert held["version"] == "v0.2.0"
    assert [a["tag"] for a in held["stages"][0]["assignments"]] == [
        "fraud#canary#2",
        "fraud#canary#3",
    ]
    assert gto(reg, "show")["fraud"]["stage"] == {"canary": "v0.2.0", "production": "v0.1.0"}
    # dvc artifacts get --stage canary, from the remote the fleet follows.
    out = tmp_path / "got"
    out.mkdir()
    run("dvc", "artifacts", "get", str(reg.origin), "fraud", "--stage", "canary", cwd=out)
    assert (out / "model.bin").read_bytes() == b"bb"
    assert show(reg.root, "fraud@canary").info.version == "v0.2.0"

    at(4)
    stop(reg.root, "fraud", reason="error rate x2")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    # After the stop GTO shows no canary, and its history has the unassignment.
    assert gto(reg, "show", "fraud#canary") == []
    assert gto(reg, "show")["fraud"]["stage"] == {"production": "v0.1.0"}
    history = gto(reg, "history", "fraud")
    stages = [(e["event"], e["ref"]) for e in history if e["stage"] == "canary"]
    assert stages == [
        ("unassignment", "fraud#canary!#4"),
        ("assignment", "fraud#canary#3"),
        ("assignment", "fraud#canary#2"),
    ]
    # ... and GTO agrees with mvctl after a new tenure.
    at(5)
    promote(reg.root, "fraud", "v0.3.0", "canary")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    assert gto(reg, "show")["fraud"]["stage"]["canary"] == "v0.3.0"
    again = tmp_path / "again"
    again.mkdir()
    run("dvc", "artifacts", "get", str(reg.origin), "fraud", "--stage", "canary", cwd=again)
    assert (again / "model.bin").read_bytes() == b"ccc"
