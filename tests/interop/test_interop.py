"""An mvctl registry reads correctly in GTO and in `dvc artifacts get`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mvctl.registry.read import list_versions
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, run


@pytest.fixture
def three_versions(registry: Registry) -> Registry:
    for n, weights in enumerate((b"alpha", b"beta", b"gamma")):
        registry.train(weights=weights * (n + 1))
        register(
            RegisterRequest(
                model="fraud",
                cwd=registry.root,
                weights="models/model.bin",
                data=("data/train.csv",),
                metrics_file="metrics.json",
                push=True,
            )
        )
    return registry


@pytest.mark.slow
def test_gto_show_and_history_agree_with_mvctl(three_versions: Registry) -> None:
    ours = [v.version for v in list_versions(three_versions.root, "fraud")]
    assert ours == ["v0.1.0", "v0.2.0", "v0.3.0"]

    shown = json.loads(run("gto", "show", "--json", cwd=three_versions.root).stdout)
    assert shown["fraud"]["version"] == "v0.3.0"
    assert shown["fraud"]["registered"] is True

    versions = json.loads(run("gto", "show", "fraud", "--json", cwd=three_versions.root).stdout)
    assert sorted(v["version"] for v in versions) == ours

    history = json.loads(run("gto", "history", "fraud", "--json", cwd=three_versions.root).stdout)
    registrations = [e for e in history if e["event"] == "registration"]
    assert sorted(e["version"] for e in registrations) == ours
    for event in registrations:
        tag_commit = three_versions.git("rev-parse", f"fraud@{event['version']}^{{commit}}")
        assert event["commit"] == tag_commit.strip()


@pytest.mark.slow
@pytest.mark.parametrize("version", ["v0.1.0", "v0.3.0"])
def test_dvc_artifacts_get_downloads_the_registered_weights(
    three_versions: Registry, tmp_path: Path, version: str
) -> None:
    out = tmp_path / f"got-{version}"
    out.mkdir()
    run(
        "dvc",
        "artifacts",
        "get",
        str(three_versions.origin),
        "fraud",
        "--rev",
        version,
        cwd=out,
    )
    got = (out / "model.bin").read_bytes()
    manifest_sha = three_versions.git("show", f"fraud@{version}:registry/fraud/manifest.yaml")
    assert hashlib.sha256(got).hexdigest() in manifest_sha
    expected = {"v0.1.0": b"alpha", "v0.3.0": b"gamma" * 3}[version]
    assert got == expected
