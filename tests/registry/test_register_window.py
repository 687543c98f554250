"""register: KEY=VALUE labels and the window of the training data, given (--data-window)
or read from the model's date column; recorded in the manifest and the version tag."""

from __future__ import annotations

import json

import pytest
import yaml

from mvctl.errors import OperationalError, UsageError
from mvctl.formats import tags
from mvctl.formats.manifest import problems
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, mvctl


def request(reg: Registry, **kw: object) -> RegisterRequest:
    defaults: dict[str, object] = {
        "model": "fraud",
        "cwd": reg.root,
        "weights": "models/model.bin",
        "data": ("data/train.csv",),
        "metrics_file": "metrics.json",
        "push": False,
    }
    defaults.update(kw)
    return RegisterRequest(**defaults)  # type: ignore[arg-type]


def configure(reg: Registry, columns: str) -> None:
    reg.write("mvctl.yaml", f"version: 1\nmodels:\n  fraud:\n    columns: {columns}\n")
    reg.git("commit", "-q", "-am", "Date column")


def dated(reg: Registry, *days: str) -> None:
    reg.train()
    rows = "".join(f"{day},{i},{i % 2}\n" for i, day in enumerate(days))
    reg.write("data/train.csv", "ts,x,y\n" + rows)


def version_body(reg: Registry, version: str = "v0.1.0") -> tags.VersionBody:
    message = reg.git("tag", "-l", "--format=%(contents)", f"fraud@{version}")
    return tags.VersionBody.from_dict(tags.parse_message(message)[1])


def test_labels_and_a_given_window_are_recorded(registry: Registry) -> None:
    registry.train()
    result = register(
        request(
            registry,
            labels=("team=risk", "season=holiday"),
            data_window="2025-11-20..2026-01-05",
            description="holiday retrain",
        )
    )
    m = yaml.safe_load((registry.root / "registry/fraud/manifest.yaml").read_text())
    assert problems(m) == []
    assert m["labels"] == ["season=holiday", "team=risk"]  # sorted by key
    assert m["data_window"] == {"start": "2025-11-20", "end": "2026-01-05"}
    assert result.manifest.data_window == m["data_window"]
    body = version_body(registry)  # what list reads without the manifest
    assert body.labels == ("season=holiday", "team=risk")
    assert body.description == "holiday retrain"
    assert body.data_window == {"start": "2025-11-20", "end": "2026-01-05"}


def test_a_version_without_them_has_the_same_manifest_and_tag_fields(registry: Registry) -> None:
    registry.train()
    register(request(registry))
    m = yaml.safe_load((registry.root / "registry/fraud/manifest.yaml").read_text())
    assert "data_window" not in m and m["labels"] == []
    message = registry.git("tag", "-l", "--format=%(contents)", "fraud@v0.1.0")
    assert set(tags.parse_message(message)[1]) == {
        "kind", "model", "version", "created", "author", "parent", "metrics", "fingerprint",
    }  # fmt: skip


def test_the_window_is_read_from_the_date_column(registry: Registry) -> None:
    configure(registry, "{date: ts, label: y}")
    dated(registry, "2025-12-01", "2025-11-20T23:30:00Z", "", "2026-01-05T01:00:00+02:00")
    register(request(registry))
    m = yaml.safe_load((registry.root / "registry/fraud/manifest.yaml").read_text())
    # An empty cell is skipped; times with a zone count in UTC (2026-01-04T23:00Z).
    assert m["data_window"] == {"start": "2025-11-20", "end": "2026-01-04", "column": "ts"}
    profile = json.loads((registry.root / "registry/fraud/profile.json").read_text())
    assert "ts" not in profile["columns"] and "x" in profile["columns"]  # a time always drifts


def test_a_given_window_wins_over_the_column(registry: Registry) -> None:
    configure(registry, "{date: ts}")
    dated(registry, "2025-12-01")
    register(request(registry, data_window="2025-01-01..2025-03-31"))
    m = yaml.safe_load((registry.root / "registry/fraud/manifest.yaml").read_text())
    assert m["data_window"] == {"start": "2025-01-01", "end": "2025-03-31"}


@pytest.mark.parametrize(
    ("columns", "days", "error"),
    [
        ("{date: when}", ("2025-12-01",), "has no column 'when'"),
        ("{date: ts}", ("yesterday",), "holds values that are not dates"),
        ("{date: x}", ("2025-12-01",), "holds numbers, not dates"),
        ("{date: ts}", ("", ""), "holds no dates"),
    ],
)
def test_a_date_column_that_gives_no_window_refuses_with_nothing_changed(
    registry: Registry, columns: str, days: tuple[str, ...], error: str
) -> None:
    configure(registry, columns)
    dated(registry, *days)
    before = registry.snapshot()
    with pytest.raises(OperationalError, match=error):
        register(request(registry))
    assert registry.snapshot() == before


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"labels": ("baseline",)}, "is not KEY=VALUE"),
        ({"labels": ("season=holiday", "season=summer")}, "season twice"),
        ({"data_window": "2026-01-05..2025-11-20"}, "ends before it starts"),
        ({"data_window": "last winter"}, "is not START..END"),
    ],
)
def test_bad_labels_and_windows_refuse_with_nothing_changed(
    registry: Registry, kw: dict[str, object], error: str
) -> None:
    registry.train()
    before = registry.snapshot()
    with pytest.raises(UsageError, match=error):
        register(request(registry, **kw))
    assert registry.snapshot() == before


def test_cli_register_with_labels_and_window_then_list_filters(registry: Registry) -> None:
    registry.train()
    base = ("register", "fraud", "-w", "models/model.bin", "-d", "data/train.csv", "--local")
    done = mvctl(registry.root, *base, "--label", "season=holiday",
                 "--data-window", "2025-11-20..2026-01-05", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["manifest"]["data_window"]["end"] == "2026-01-05"
    registry.train(weights=b"two")
    assert mvctl(registry.root, *base, "--label", "season=regular").returncode == 0
    listed = mvctl(registry.root, "list", "fraud", "--label", "season=holiday", "--json")
    rows = json.loads(listed.stdout)["versions"]
    assert [(r["version"], r["labels"], r["data_window"]) for r in rows] == [
        ("v0.1.0", ["season=holiday"], {"start": "2025-11-20", "end": "2026-01-05"})
    ]
    bad = mvctl(registry.root, *base, "--label", "season holiday")
    assert bad.returncode == 2 and "is not KEY=VALUE" in bad.stderr
    window = mvctl(registry.root, *base, "--data-window", "2026-01-05..2025-01-01", "--json")
    assert window.returncode == 2 and json.loads(window.stdout)["exit"] == 2
    for args, code in (
        (("--metric", "auc>>1"), 2),
        (("--label", "x"), 2),
        (("--channel", "Prod"), 2),
    ):
        got = mvctl(registry.root, "list", "fraud", *args)
        assert got.returncode == code, (args, got.stderr)
    assert mvctl(registry.root, "list", "--label", "a=b").returncode == 2
