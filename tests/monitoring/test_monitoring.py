"""monitor and the webhook, end to end: drifted data rolls production back; the webhook
authenticates, limits, validates, and rolls back once per incident."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from mvctl.channels.promotion import validate
from mvctl.channels.state import history
from mvctl.errors import UsageError
from mvctl.monitoring.monitor import monitor
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    mvctl,
)

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    columns: {label: is_fraud, prediction: pred, sensitive: [region]}
    monitors:
      production:
        - {drift: psi, max: 0.25}
        - {bias: demographic_parity_difference, max: 0.10}
        - {metric: false_positive_rate, max: 0.05}
    gates:
      staging:
        - {drift: psi, max: 0.25}
"""


def batch(rows: int, seed: int, shift: float = 0.0, biased: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["eu", "us", "apac"], rows)
    frame = pd.DataFrame(
        {
            "amount": rng.normal(100 + shift, 20, rows),
            "age": rng.normal(40, 10, rows),
            "region": region,
            "is_fraud": rng.integers(0, 2, rows),
        }
    )
    frame["pred"] = (region == "eu").astype(int) if biased else rng.integers(0, 2, rows)
    return frame


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    releases = (
        Release(
            weights=f"weights {seed}".encode(),
            data=("train.csv",),
            metrics=False,
            files=(("train.csv", batch(4000, seed).to_csv(index=False)),),
        )
        for seed in (1, 2)
    )
    production = (("v0.1.0", "production"), ("v0.2.0", "production"))
    return registry_factory(*releases, config=CONFIG, promotions=production)


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    # Its own origin and DVC store: moves publish by default, and must not reach the
    # template's remote (the next test's starting point).
    return copy_registry(template, tmp_path)


def write(tmp_path: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def holder(reg: Registry) -> str:
    return json.loads(mvctl(reg.root, "show", "fraud@production", "--json", check=True).stdout)[
        "version"
    ]


def test_stable_batch_passes_and_changes_nothing(reg: Registry, tmp_path: Path) -> None:
    live = write(tmp_path, "live.parquet", batch(3000, 9))
    report = monitor(reg.root, "fraud", live=live, rollback=True)
    assert not report.breached and report.rollback is None
    levels = {r.rule: r.level for r in report.evaluation.results}
    assert levels == {
        "psi <= 0.25": "ok",
        "demographic_parity_difference <= 0.1": "ok",
        "false_positive_rate <= 0.05": "skipped",  # no --metrics: never a breach by absence
    }
    assert {d.column for d in report.evaluation.drift} == {
        "amount",
        "age",
        "region",
        "is_fraud",
        "pred",
    }
    assert holder(reg) == "v0.2.0"


def test_drifted_batch_rolls_production_back_and_history_says_why(
    reg: Registry, tmp_path: Path
) -> None:
    live = write(tmp_path, "live.csv", batch(3000, 9, shift=30.0))
    proc = mvctl(reg.root, "monitor", "fraud", "--live", str(live), "--rollback")
    assert proc.returncode == 1, proc.stderr
    assert (
        "breach" in proc.stdout and "rolled fraud@production back: v0.2.0 → v0.1.0" in proc.stdout
    )
    assert holder(reg) == "v0.1.0"
    last = history(reg.root, "fraud", "production")[-1]
    assert last.kind == "rollback"
    assert last.reason.startswith("monitor: psi <= 0.25: worst column amount: PSI")


def test_bias_and_live_metric_breaches(reg: Registry, tmp_path: Path) -> None:
    features = batch(3000, 9)
    live = write(tmp_path, "live.csv", features.drop(columns=["pred"]))
    preds = write(tmp_path, "preds.csv", batch(3000, 9, biased=True)[["pred"]])
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"false_positive_rate": 0.2}))
    report = monitor(reg.root, "fraud", live=live, predictions=preds, metrics_file=metrics)
    levels = {r.rule: r.level for r in report.evaluation.results}
    assert levels["demographic_parity_difference <= 0.1"] == "breach"
    assert levels["false_positive_rate <= 0.05"] == "breach"
    assert report.breached and report.rollback is None  # no --rollback: nothing moves
    assert holder(reg) == "v0.2.0"
    as_json = json.loads(
        mvctl(reg.root, "monitor", "fraud", "--metrics", str(metrics), "--json").stdout
    )
    assert as_json["breached"] is True
    assert [r["level"] for r in as_json["results"]] == ["skipped", "skipped", "breach"]


def test_drift_gate_on_evaluation_data(reg: Registry, tmp_path: Path) -> None:
    # Without evaluation data a drift gate fails closed; with shifted data it fails on PSI.
    assert not validate(reg.root, "fraud", "v0.2.0", "staging").passed
    shifted = write(tmp_path, "val.csv", batch(2000, 4, shift=40.0))
    report = validate(reg.root, "fraud", "v0.2.0", "staging", eval_data=shifted)
    assert not report.passed and "amount" in report.results[0].detail
    steady = write(tmp_path, "val2.csv", batch(2000, 4))
    assert validate(reg.root, "fraud", "v0.2.0", "staging", eval_data=steady).passed


# --- the webhook, over a real socket -------------------------------------------------------

TOKEN = "s3cret-token-for-tests-0123456789"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(reg: Registry) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    env = {**os.environ, "MVCTL_WEBHOOK_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvctl", "webhook", "serve", "--port", str(port)],
        cwd=reg.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).text == "ok":
                break
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.05)
    yield url, proc
    proc.terminate()
    proc.communicate(timeout=30)


def alert(status: str = "firing", starts: str | None = None) -> dict[str, object]:
    """A version-4 payload; the alert started now (after the release it is about) unless
    ``starts`` says when."""
    starts = starts or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "version": "4",
        "groupKey": '{}:{alertname="FraudFalsePositives"}',
        "status": status,
        "receiver": "mvctl",
        "groupLabels": {"alertname": "FraudFalsePositives"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "FraudFalsePositives", "mvctl_model": "fraud"},
                "annotations": {"summary": "false positives above 5%"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus",
                "fingerprint": "abc123",
            }
        ],
    }


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.slow
def test_bad_requests_change_nothing(
    reg: Registry, server: tuple[str, subprocess.Popen[str]]
) -> None:
    url, _ = server
    before = reg.tags()
    assert httpx.post(f"{url}/alerts", json=alert()).status_code == 401
    wrong = {"Authorization": "Bearer wrong-token-wrong-token"}
    assert httpx.post(f"{url}/alerts", json=alert(), headers=wrong).status_code == 401
    big = b"{" + b" " * (2 << 20) + b"}"
    assert httpx.post(f"{url}/alerts", content=big, headers=AUTH).status_code == 413
    assert httpx.post(f"{url}/alerts", content=b"{not json", headers=AUTH).status_code == 400
    old = dict(alert(), version="3")
    assert httpx.post(f"{url}/alerts", json=old, headers=AUTH).status_code == 400
    assert httpx.post(f"{url}/alerts", json={"version": "4"}, headers=AUTH).status_code == 400
    assert reg.tags() == before and holder(reg) == "v0.2.0"


@pytest.mark.slow
def test_a_firing_alert_repeated_five_times_rolls_back_once(
    reg: Registry, server: tuple[str, subprocess.Popen[str]]
) -> None:
    url, proc = server
    actions = []
    firing = alert()  # Alertmanager repeats the same alerts, with the same startsAt
    for _ in range(5):
        response = httpx.post(f"{url}/alerts", json=firing, headers=AUTH, timeout=30)
        assert response.status_code == 200
        actions += [d["action"] for d in response.json()["decisions"]]
    assert actions == ["rolled_back"] + ["already"] * 4
    assert holder(reg) == "v0.1.0"
    rollbacks = [e for e in history(reg.root, "fraud") if e.kind == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0].incident and "FraudFalsePositives" in rollbacks[0].reason
    resolved = httpx.post(f"{url}/alerts", json=alert("resolved"), headers=AUTH)
    assert resolved.json() == {"decisions": []}
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert err.count("rolled_back: fraud@production") == 1
    assert err.count("already: fraud@production") == 4


def test_webhook_refuses_to_start_without_a_token(reg: Registry) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MVCTL_WEBHOOK_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "mvctl", "webhook", "serve", "--port", str(_free_port())],
        cwd=reg.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert "needs a bearer token" in proc.stderr
    from mvctl.web.auth import load_token

    with pytest.raises(UsageError):
        load_token(None, {"MVCTL_WEBHOOK_TOKEN": "short"})


def test_apply_feeds_evaluation_data_to_drift_gates(reg: Registry, tmp_path: Path) -> None:
    from mvctl.channels.review import apply, propose

    reg.write("mvctl.yaml", CONFIG.replace("    gates:", "    review: [staging]\n    gates:"))
    reg.git("commit", "-q", "-am", "staging needs review")
    request = propose(reg.root, "fraud", "v0.2.0", "staging")
    reg.git("merge", "-q", "--no-edit", request.branch)
    [refused] = apply(reg.root)
    assert refused.status == "refused" and "--eval-data" in refused.detail
    steady = write(tmp_path, "val.csv", batch(2000, 4))
    [done] = apply(reg.root, eval_data=steady)
    assert done.status == "performed"
