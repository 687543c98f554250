"""list and show: read versions, channel holders and manifests from tags alone."""

from __future__ import annotations

import json

import pytest

from mvctl.errors import OperationalError, UsageError
from mvctl.registry.read import list_models, list_versions, show
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, mvctl


def _register(reg: Registry, model: str, weights: bytes, auc: float) -> None:
    reg.train(weights=weights, auc=auc)
    register(
        RegisterRequest(
            model=model,
            cwd=reg.root,
            weights="models/model.bin",
            data=("data/train.csv",),
            metrics_file="metrics.json",
        )
    )


@pytest.fixture
def populated(registry: Registry) -> Registry:
    _register(registry, "fraud", b"f1", 0.90)
    _register(registry, "fraud", b"f2", 0.92)
    _register(registry, "churn", b"c1", 0.80)
    # A channel alias as channels will write it: an annotated tag on the version's commit.
    registry.git("tag", "-a", "-m", "promote", "fraud@production", "fraud@v0.1.0^{commit}")
    return registry


def test_list_models_summarises_each_model(populated: Registry) -> None:
    models = {m.model: m for m in list_models(populated.root)}
    assert set(models) == {"fraud", "churn"}
    assert (models["fraud"].latest, models["fraud"].count) == ("v0.2.0", 2)
    assert models["fraud"].channels == {"production": "v0.1.0"}
    assert (models["churn"].latest, models["churn"].count, models["churn"].channels) == (
        "v0.1.0",
        1,
        {},
    )


def test_list_versions_reads_created_author_metrics_and_channels(populated: Registry) -> None:
    versions = list_versions(populated.root, "fraud")
    assert [v.version for v in versions] == ["v0.1.0", "v0.2.0"]
    first = versions[0]
    assert first.author == "Ada Tester <ada@example.com>"
    assert first.created.endswith("Z")
    assert first.metrics == {"auc": 0.90, "loss.train": 0.2, "loss.val": 0.3}
    assert first.channels == ("production",)
    assert versions[1].channels == ()
    assert first.commit == populated.git("rev-parse", "fraud@v0.1.0^{commit}").strip()


def test_versions_sort_by_semver_not_text(registry: Registry) -> None:
    for version in ("v0.9.0", "v0.10.0", "v1.0.0-rc.1", "v1.0.0"):
        registry.train(weights=version.encode())
        register(
            RegisterRequest(
                model="m", cwd=registry.root, weights="models/model.bin", version=version
            )
        )
    assert [v.version for v in list_versions(registry.root, "m")] == [
        "v0.9.0",
        "v0.10.0",
        "v1.0.0-rc.1",
        "v1.0.0",
    ]


def test_show_resolves_latest_version_and_channel(populated: Registry) -> None:
    latest = show(populated.root, "fraud")
    assert latest.info.version == "v0.2.0"
    assert latest.manifest["version"] == "v0.2.0"
    assert latest.manifest["parent"] == "v0.1.0"
    pinned = show(populated.root, "fraud@v0.1.0")
    assert pinned.manifest["metrics"]["auc"] == 0.90
    by_channel = show(populated.root, "fraud@production")
    assert by_channel.info.version == "v0.1.0"
    assert by_channel.manifest == pinned.manifest


def test_show_reads_the_manifest_of_the_tag_not_the_work_tree(populated: Registry) -> None:
    # The manifest file now holds churn's latest; fraud@v0.1.0 still reads its own record.
    (populated.root / "registry/fraud/manifest.yaml").write_text("garbage: [")
    assert show(populated.root, "fraud@v0.1.0").manifest["weights"][0]["size"] == 2


@pytest.mark.parametrize(
    ("ref", "error", "text"),
    [
        ("nope", OperationalError, "no registered versions"),
        ("fraud@v9.9.9", OperationalError, "has no version v9.9.9"),
        ("fraud@staging", OperationalError, "holds no version"),
        ("Fraud", UsageError, "invalid model name"),
        ("fraud@", UsageError, "names no version"),
    ],
)
def test_show_errors(populated: Registry, ref: str, error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        show(populated.root, ref)


def test_cli_list_and_show_json(populated: Registry) -> None:
    models = json.loads(mvctl(populated.root, "list", "--json", check=True).stdout)
    assert [m["model"] for m in models["models"]] == ["churn", "fraud"]
    versions = json.loads(mvctl(populated.root, "list", "fraud", "--json", check=True).stdout)
    assert [v["version"] for v in versions["versions"]] == ["v0.1.0", "v0.2.0"]
    shown = json.loads(mvctl(populated.root, "show", "fraud@v0.2.0", "--json", check=True).stdout)
    assert shown["manifest"]["metrics"]["auc"] == 0.92
    assert shown["version"] == "v0.2.0"


def test_cli_tables_for_people(populated: Registry) -> None:
    out = mvctl(populated.root, "list", check=True).stdout
    assert "fraud" in out and "production=v0.1.0" in out
    out = mvctl(populated.root, "list", "fraud", check=True).stdout
    assert out.index("v0.2.0") < out.index("v0.1.0")  # newest first
    assert "0.92" in out
    out = mvctl(populated.root, "show", "fraud@production", check=True).stdout
    assert "fraud v0.1.0" in out and "channels: production" in out
    assert "sha256:" in out


def test_cli_unknown_version_exits_3_with_one_line(populated: Registry) -> None:
    proc = mvctl(populated.root, "show", "fraud@v9.9.9")
    assert proc.returncode == 3
    assert proc.stderr.startswith("error: fraud has no version v9.9.9")
    assert "Traceback" not in proc.stderr
