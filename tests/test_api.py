"""mvctl.api: the supported Python surface imports light, reads a real registry, and is
typed for its users (mypy accepts a user's script and rejects a misuse)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mvctl
from mvctl import api, serving
from mvctl.channels.promotion import promote
from tests.conftest import Registry, build_template, remote_tags

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.80}
"""

HEAVY = ("dvc", "git", "numpy", "pandas", "pyarrow", "rich", "scipy", "sklearn", "typer")


def test_every_name_in_all_exists_and_is_documented() -> None:
    assert api.__all__ == sorted(api.__all__)
    for name in api.__all__:
        obj = getattr(api, name)
        if callable(obj):
            assert obj.__doc__ or name in ("list_models", "list_versions", "history"), name
    assert api.__version__ == mvctl.__version__
    # One set of serving helpers: the API's are mvctl.serving's own objects.
    assert api.status is serving.status
    assert api.PullRequest is serving.PullRequest


def test_import_loads_no_heavy_package_and_mvctl_does_not_load_the_api() -> None:
    probe = textwrap.dedent(
        f"""
        import json, sys
        import mvctl
        before = "mvctl.api" in sys.modules
        import mvctl.api
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r}))
        print(json.dumps({{"api_with_mvctl": before, "heavy": loaded}}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"api_with_mvctl": False, "heavy": []}


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    registry = build_template(tmp_path, CONFIG, {"v0.1.0": 0.91, "v0.2.0": 0.93})
    promote(registry.root, "fraud", "v0.1.0", "production")
    return registry


def test_round_trip_on_a_real_registry(reg: Registry) -> None:
    root = reg.root
    [summary] = api.list_models(root)
    assert (summary.model, summary.latest, summary.channels) == (
        "fraud",
        "v0.2.0",
        {"production": "v0.1.0"},
    )
    versions = api.list_versions(root, "fraud")
    assert [v.version for v in versions] == ["v0.1.0", "v0.2.0"]

    held = api.resolve(root, "fraud@production")
    assert held.version == "v0.1.0"
    assert held.channels == ("production",)
    assert held.commit == reg.git("rev-list", "-n1", "fraud@v0.1.0").strip()
    assert api.resolve(root, "fraud").version == "v0.2.0"

    shown = api.show(root, "fraud@production")
    assert shown.info == held
    assert shown.manifest["version"] == "v0.1.0"
    assert shown.manifest["metrics"]["auc"] == 0.91
    assert api.manifest(root, "fraud@v0.2.0")["metrics"]["auc"] == 0.93

    [event] = api.history(root, "fraud", "production")
    assert (event.kind, event.version) == ("promote", "v0.1.0")
    lineage = api.lineage(root, "fraud")
    assert lineage.nodes["v0.2.0"].parent == "v0.1.0"
    change = api.diff(root, "fraud", "production", "v0.2.0")
    assert [(m.key, m.old, m.new) for m in change.metrics if m.key == "auc"] == [
        ("auc", 0.91, 0.93)
    ]


def test_errors_are_the_documented_family(reg: Registry, tmp_path: Path) -> None:
    with pytest.raises(api.NotFoundError) as missing:
        api.resolve(reg.root, "churn@production")
    assert missing.value.exit_code == 3
    assert "churn" in missing.value.message
    with pytest.raises(api.UsageError):
        api.resolve(reg.root, "Fraud@production")
    with pytest.raises(api.OperationalError):
        api.resolve(reg.root, "fraud@staging")  # a channel that holds nothing
    assert api.status(tmp_path / "no-host-here") is None


def test_label_catalog_and_select_from_python(reg: Registry) -> None:
    root = reg.root
    relabel = api.label(root, "fraud@v0.1.0", ["season=holiday"], description="Q4 retrain")
    assert isinstance(relabel, api.Relabel)
    assert (relabel.changed, relabel.tag, relabel.labels) == (
        True,
        "fraud@v0.1.0#labels#1",
        ("season=holiday",),
    )
    assert relabel.pushed and "fraud@v0.1.0#labels#1" in remote_tags(reg.origin)
    planned = api.label(root, "fraud@v0.2.0", ["season=holiday"], dry_run=True)
    assert planned.changed and planned.dry_run
    assert "fraud@v0.2.0#labels#1" not in reg.git("tag", "-l").split()
    unchanged = api.label(root, "fraud@v0.1.0", ["season=holiday"])
    assert (unchanged.changed, unchanged.tag) == (False, None)

    listed = api.catalog(root, "fraud")
    assert [(v.version, v.labels) for v in listed] == [
        ("v0.1.0", ("season=holiday",)),
        ("v0.2.0", ()),
    ]
    assert isinstance(listed[0], api.ListedVersion) and listed[0].description == "Q4 retrain"
    assert [v.version for v in api.catalog(root, "fraud", labels=["season=holiday"])] == ["v0.1.0"]
    assert [v.version for v in api.catalog(root, "fraud", metrics=["auc>=0.92"])] == ["v0.2.0"]
    assert [v.version for v in api.catalog(root, "fraud", channel="production")] == ["v0.1.0"]
    assert api.catalog(root, "fraud", labels=["season=holiday"], metrics=["auc>0.92"]) == []
    with pytest.raises(api.UsageError, match="is not KEY=VALUE"):
        api.catalog(root, "fraud", labels=["season"])

    holiday = ["label season=holiday"]
    assert api.select(root, "fraud", "production", holiday).version == "v0.1.0"  # it holds it
    api.label(root, "fraud@v0.2.0", ["season=holiday"])
    # v0.2.0 matches but never served production: not gold there, so not chosen.
    assert api.select(root, "fraud", "production", holiday).version == "v0.1.0"
    promote(root, "fraud", "v0.2.0", "production")
    chosen = api.select(root, "fraud", "production", [*holiday, "metric auc>=0.9"])
    assert (chosen.version, chosen.labels) == ("v0.2.0", ("season=holiday",))
    assert api.resolve(root, "fraud@production").version == "v0.2.0"  # select moved nothing
    with pytest.raises(api.PolicyError, match="no gold version of fraud on production"):
        api.select(root, "fraud", "production", ["label season=summer"])
    with pytest.raises(api.UsageError, match="names no kind"):
        api.select(root, "fraud", "production", ["season=holiday"])
    with pytest.raises(api.UsageError, match="unknown channel"):
        api.select(root, "fraud", "europe", holiday)


def test_unassign_from_python(reg: Registry) -> None:
    root = reg.root
    promote(root, "fraud", "v0.2.0", "staging")
    planned = api.unassign(root, "fraud", "staging", reason="trial over", dry_run=True)
    assert planned.dry_run and api.resolve(root, "fraud@staging").version == "v0.2.0"
    move = api.unassign(root, "fraud", "staging", reason="trial over")
    assert isinstance(move, api.ChannelMove)
    assert (move.kind, move.version, move.event, move.pushed) == (
        "stop",
        "v0.2.0",
        planned.event,
        True,
    )
    assert move.event.startswith("fraud#staging!#")
    on_remote = remote_tags(reg.origin)
    assert move.event in on_remote and "fraud@staging" not in on_remote
    with pytest.raises(api.OperationalError):
        api.resolve(root, "fraud@staging")
    last = api.history(root, "fraud", "staging")[-1]
    assert (last.kind, last.version, last.reason) == ("stop", "v0.2.0", "trial over")
    with pytest.raises(api.PolicyError, match="holds no version") as empty:
        api.unassign(root, "fraud", "canary", reason="x")
    assert empty.value.exit_code == 1
    with pytest.raises(api.PolicyError, match="keeps its current weights") as refused:
        api.unassign(root, "fraud", "production", reason="x")
    assert refused.value.exit_code == 1 and "rollback" in (refused.value.hint or "")
    assert api.resolve(root, "fraud@production").version == "v0.1.0"
    forced = api.unassign(root, "fraud", "production", reason="decommission", force=True)
    assert forced.kind == "stop" and "fraud@production" not in remote_tags(reg.origin)


USER_SCRIPT = """
from pathlib import Path

from mvctl import api


def production_auc(root: Path) -> float:
    held: api.VersionInfo = api.resolve(root, "fraud@production")
    metrics = api.show(root, f"fraud@{held.version}").manifest["metrics"]
    return float(metrics["auc"])


def newest(root: Path) -> list[str]:
    return [v.version for v in api.list_versions(root, "fraud")]


def served(dest: Path) -> str | None:
    now = api.status(dest)
    return None if now is None else now.version


def holiday(root: Path) -> str:
    chosen: api.ListedVersion = api.select(root, "fraud", "production", ["label season=x"])
    rows: list[api.ListedVersion] = api.catalog(root, "fraud", labels=["season=x"])
    done: api.Relabel = api.label(root, "fraud@v1.0.0", ["season=x"], push=False)
    cleared: api.ChannelMove = api.unassign(root, "fraud", "staging", reason="over")
    return chosen.version + str(len(rows)) + str(done.changed) + cleared.event


request = api.PullRequest("https://git.example.com/ml.git", "fraud", "production", Path("/srv"))
"""

MISUSE = """
from pathlib import Path

from mvctl import api

version: int = api.resolve(Path("."), "fraud@production").version
"""


def _mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / name
    script.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", script.name],
        # No project config here: mypy sees the installed package as a user does.
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )


def test_mypy_accepts_a_typed_user_script_and_rejects_a_misuse(tmp_path: Path) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed")
    good = _mypy(tmp_path, "user_script.py", USER_SCRIPT)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = _mypy(tmp_path, "misuse.py", MISUSE)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert 'Incompatible types in assignment (expression has type "str"' in bad.stdout
