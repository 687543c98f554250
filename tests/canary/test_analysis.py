"""The report on evidence alone (no registry): values against scikit-learn's own, joins of
outcomes to rows, scores and regression outcomes, thresholds per window, the shadow's
agreement, and the Bonferroni count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from mvctl.canary import evidence
from mvctl.canary.analysis import CanaryReport, compare
from mvctl.formats.rules import CanaryConfig, CanaryMetric

BASE, CAND = ("production", "v1.0.0"), ("canary", "v1.1.0")


def stamp(i: int) -> str:
    return f"2030-01-01T00:{i // 6000 % 60:02d}:{i // 100 % 60:02d}.{i % 100 * 10:03d}Z"


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def decision(i: int, arm: tuple[str, str], output: Any, **extra: Any) -> dict[str, Any]:
    role = "primary" if arm[0] == "production" else arm[0]
    line = {"time": stamp(i), "key": f"k{i}", "model": "fraud", "channel": arm[0]}
    line["version"] = arm[1]
    return line | {"latency_ms": extra.pop("latency", 2.0), "output": output, "role": role} | extra


def by_metric(report: CanaryReport) -> dict[str, Any]:
    return {m.metric: m for m in report.metrics}


def run(tmp_path: Path, lines: list[dict[str, Any]], canary: CanaryConfig, **kw: Any) -> Any:
    found = evidence.read([write(tmp_path / "log.jsonl", lines)])
    return compare(found, model="fraud", baseline=BASE, candidate=CAND, canary=canary, **kw)


def test_classification_values_are_scikit_learns(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lines, truth, predicted = [], {BASE: [], CAND: []}, {BASE: [], CAND: []}
    for i in range(4000):
        arm = CAND if i % 2 else BASE
        y = int(rng.random() < 0.2)
        p = y if rng.random() < 0.9 else 1 - y
        truth[arm].append(y)
        predicted[arm].append(p)
        lines += [decision(i, arm, [p]), {"key": f"k{i}", "outcome": y, "kind": "outcome"}]
    metrics = ("false_positive_rate", "precision", "recall", "accuracy", "false_negative_rate")
    canary = CanaryConfig(metrics=tuple(CanaryMetric(m) for m in metrics), min_samples=100)
    report = run(tmp_path, lines, canary)
    got = by_metric(report)
    for arm, side in ((BASE, "baseline"), (CAND, "candidate")):
        tn, fp, fn, tp = skm.confusion_matrix(truth[arm], predicted[arm]).ravel()
        assert getattr(got["false_positive_rate"], side) == pytest.approx(fp / (fp + tn))
        assert getattr(got["false_negative_rate"], side) == pytest.approx(fn / (fn + tp))
        assert getattr(got["precision"], side) == pytest.approx(
            skm.precision_score(truth[arm], predicted[arm])
        )
        assert getattr(got["recall"], side) == pytest.approx(
            skm.recall_score(truth[arm], predicted[arm])
        )
    assert report.tests == 5 + 1  # five guarded metrics, and the primary's "better" test
    assert got["false_positive_rate"].primary and got["false_positive_rate"].better is not None
    assert report.verdict.kind == "continue"  # the same model in both arms


def test_scores_give_roc_auc_and_numeric_outcomes_give_mae_and_rmse(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = []
    scores, truth = [], []
    for i in range(600):
        arm = CAND if i % 2 else BASE
        y = int(rng.random() < 0.3)
        score = float(np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2), 0.01, 0.99))
        if arm == CAND:
            scores.append(score)
            truth.append(y)
        lines += [decision(i, arm, [[1 - score, score]]), {"key": f"k{i}", "outcome": y}]
    lines = [{**line, "kind": "outcome"} if "outcome" in line else line for line in lines]
    report = run(tmp_path, lines, CanaryConfig(min_samples=100))
    auc = by_metric(report)["roc_auc"]
    assert auc.candidate == pytest.approx(skm.roc_auc_score(truth, scores))
    assert auc.verdict == "reported" and not auc.guarded

    lines, errors = [], []
    for i in range(400):
        arm = CAND if i % 2 else BASE
        y, yhat = float(i % 7) + 0.5, float(i % 7) + (0.5 if arm == BASE else 1.5)
        lines += [decision(i, arm, [yhat]), {"key": f"k{i}", "outcome": y, "kind": "outcome"}]
        if arm == CAND:
            errors.append(abs(y - yhat))
    canary = CanaryConfig(metrics=(CanaryMetric("mae", primary=True), CanaryMetric("rmse")))
    report = run(tmp_path, lines, canary)
    got = by_metric(report)
    assert got["mae"].candidate == pytest.approx(1.0) and got["mae"].baseline == 0.0
    assert got["rmse"].candidate == pytest.approx(1.0)


def test_a_list_of_outcomes_labels_rows_and_a_mismatch_is_counted(tmp_path: Path) -> None:
    lines = [
        decision(0, BASE, [0, 1]),
        {"key": "k0", "outcome": [0, 1], "kind": "outcome"},
        decision(1, CAND, [1, 1, 0]),
        {"key": "k1", "outcome": [1], "kind": "outcome"},  # three rows, one outcome
    ]
    report = run(tmp_path, lines, CanaryConfig())
    assert report.baseline["labelled"] == 2 and report.candidate["labelled"] == 0
    assert report.skipped.unjoined == 1


def test_a_threshold_fails_per_window_and_max_failed_rolls_back(tmp_path: Path) -> None:
    lines = [decision(i, BASE, [0], latency=2.0) for i in range(0, 800, 2)]
    slow = [decision(i, CAND, [0], latency=2.0 if i < 400 else 90.0) for i in range(1, 800, 2)]
    canary = CanaryConfig(
        min_samples=100, max_failed=2, metrics=(CanaryMetric("latency_p99_ms", max=50),)
    )
    report = run(tmp_path, lines + slow, canary)
    p99 = by_metric(report)["latency_p99_ms"]
    assert (p99.windows, p99.failed_checks) == (4, 2)
    assert report.verdict.kind == "rollback"
    assert report.evidence()["metrics"][0]["failed_checks"] == 2


def test_a_shadow_is_compared_on_the_same_keys(tmp_path: Path) -> None:
    shadow = ("shadow", "v1.1.0")
    lines = []
    for i in range(300):
        lines.append(decision(i, BASE, [i % 2]))
        lines.append(decision(i, shadow, [i % 2 if i % 10 else 1 - i % 2]) | {"key": f"k{i}"})
    found = evidence.read([write(tmp_path / "log.jsonl", lines)])
    report = compare(
        found, model="fraud", baseline=BASE, candidate=shadow, canary=CanaryConfig(), weight=None
    )
    agreement = by_metric(report)["agreement"]
    assert agreement.candidate == pytest.approx(0.9) and agreement.n_candidate == 300
    assert report.verdict.kind == "continue"


def test_the_window_starts_at_the_candidates_arrival(tmp_path: Path) -> None:
    lines = [decision(i, BASE, [0]) for i in range(100)]
    lines += [decision(i, CAND, [0]) for i in range(100, 150)]
    found = evidence.read([write(tmp_path / "log.jsonl", lines)])
    since = found.decisions[50].time
    report = compare(
        found, model="fraud", baseline=BASE, candidate=CAND, canary=CanaryConfig(), since=since
    )
    assert report.baseline["requests"] == 50 and report.skipped.other == 50


def test_psi_of_labels_and_of_scores_against_mvctls_drift_psi(tmp_path: Path) -> None:
    from mvctl.analysis.drift import psi

    labels = [decision(i, BASE, [int(i % 10 == 0)]) for i in range(0, 2000, 2)]
    labels += [decision(i, CAND, [int(i % 4 == 1)]) for i in range(1, 2000, 2)]
    got = by_metric(run(tmp_path, labels, CanaryConfig()))["psi"]
    # Every fifth even key is flagged by production, every second odd one by the canary.
    assert got.candidate == pytest.approx(psi([0.8, 0.2], [0.5, 0.5]))
    assert got.verdict == "reported" and "roc_auc" not in by_metric(
        run(tmp_path, labels, CanaryConfig())
    )

    rng = np.random.default_rng(2)
    scores = [decision(i, BASE, [float(rng.uniform(0.01, 0.99))]) for i in range(0, 2000, 2)]
    scores += [decision(i, CAND, [float(rng.uniform(0.01, 0.99))]) for i in range(1, 2000, 2)]
    same = by_metric(run(tmp_path, scores, CanaryConfig()))["psi"].candidate
    assert same is not None and same < 0.05  # the same distribution: deciles agree
