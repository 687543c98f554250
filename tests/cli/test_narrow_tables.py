"""history, show, status, lineage and list at 80 and 200 columns, on a registry with long
reasons, a long actor and several metrics: no value is cut with '…'; free text wraps."""

from __future__ import annotations

import json

import pytest

from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, isolate, make_registry, mvctl

MODEL = "fraud-detector-eu"
ACTOR = "Margarethe Vandenberg-Oyelaran"
METRICS = [
    {
        "auc": 0.9123 + i / 100,
        "precision_at_1pct": 0.8123 + i / 1000,
        "recall": 0.7012,
        "false_positive_rate": 0.0123456,
        "latency_p99_ms": 12.5 + i,
    }
    for i in range(3)
]
REASONS = {
    1: "initial production rollout after the quarterly review with risk and compliance teams",
    2: "recall improved on the holiday-season backtest; signed off by the fraud operations "
    "on-call lead",
    3: "shadow results looked good",
    4: "false positive rate spiked on card-not-present transactions in the Nordics; paging "
    "incident INC-20931",
}


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    base = tmp_path_factory.mktemp("narrow")
    (base / "home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base / "home")
        for key in ("GIT_AUTHOR", "GIT_COMMITTER"):
            mp.setenv(f"{key}_NAME", ACTOR)
            mp.setenv(f"{key}_EMAIL", "m.vandenberg-oyelaran@payments.example.com")
        reg = make_registry(base)
        for metrics in METRICS:
            reg.write("models/model.bin", json.dumps(metrics).encode())
            reg.write("metrics.json", json.dumps(metrics))
            register(
                RegisterRequest(
                    model=MODEL,
                    cwd=reg.root,
                    weights="models/model.bin",
                    metrics_file="metrics.json",
                    allow_dirty=True,
                    push=True,
                )
            )
        root = reg.root
        promote(root, MODEL, "v0.1.0", "production", reason=REASONS[1], push=True)
        promote(root, MODEL, "v0.2.0", "production", reason=REASONS[2], push=True)
        promote(root, MODEL, "v0.3.0", "canary", reason=REASONS[3], push=True, weight=12.5)
        rollback(root, MODEL, to="v0.1.0", reason=REASONS[4], push=True)
        promote(root, MODEL, "v0.3.0", "staging", reason=REASONS[3], push=False)  # pending
    return reg


def _run(reg: Registry, width: int, *args: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    done = mvctl(reg.root, *args)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= width for line in lines), done.stdout
    assert "…" not in done.stdout, done.stdout
    return done.stdout


@pytest.mark.parametrize("width", [80, 200])
def test_history_keeps_every_value_whole(
    reg: Registry, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(reg, width, "history", MODEL, monkeypatch=monkeypatch)
    events = json.loads(mvctl(reg.root, "history", MODEL, "--json").stdout)["events"]
    assert len(events) == 5
    for e in events:
        date, clock = e["time"].replace("T", " ")[:19].rstrip("Z").split(" ")
        assert date in out and clock in out
        assert e["channel"] in out and e["kind"] in out
        assert f"{e['previous'] or '-'} → {e['version']}" in out
        for word in e["reason"].split():
            assert word in out
    flat = " ".join(out.split())
    if width == 80:  # left out whole, and named, rather than cut
        assert "not shown at this width: #, weight, actor (wider terminal, or --json)" in flat
        assert ACTOR.split()[1] not in out and "12.5%" not in out
    else:
        assert "not shown" not in out
        assert f"{date} {clock}" in out  # the time on one line when it fits
        assert ACTOR in out and "12.5%" in out  # the canary's weight


@pytest.mark.parametrize("width", [80, 200])
def test_show_keeps_every_metric_and_version_whole(
    reg: Registry, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(reg, width, "show", f"{MODEL}@v0.3.0", monkeypatch=monkeypatch)
    assert f"{MODEL} v0.3.0" in out and "canary (12.5%)" in out
    for key, value in METRICS[2].items():
        assert f"{key}: {value}" in out
    assert "parent: v0.2.0" in out


@pytest.mark.parametrize("width", [80, 200])
def test_lineage_keeps_every_version_and_metric_whole(
    reg: Registry, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(reg, width, "lineage", MODEL, monkeypatch=monkeypatch)
    for version, metrics in zip(("v0.1.0", "v0.2.0", "v0.3.0"), METRICS, strict=True):
        assert version in out
        assert f"auc={metrics['auc']:.4g}" in out


@pytest.mark.parametrize("width", [80, 200])
def test_status_keeps_every_tag_name_whole(
    reg: Registry, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(reg, width, "status", monkeypatch=monkeypatch)
    pending = json.loads(mvctl(reg.root, "status", "--json").stdout)
    names = [*pending["tags"], *pending["aliases"]]
    assert names
    for name in names:
        assert name in out


@pytest.mark.parametrize("width", [80, 200])
def test_list_keeps_every_value_whole(
    reg: Registry, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _run(reg, width, "list", MODEL, monkeypatch=monkeypatch)
    for version in ("v0.1.0", "v0.2.0", "v0.3.0"):
        assert version in out
    assert "canary (12.5%)" in out
    if width == 200:
        for metrics in METRICS[:1]:
            assert f"{metrics['false_positive_rate']:.4g}" in out
