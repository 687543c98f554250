"""Live metrics from labelled rows (against sklearn's own functions), and the metric rule
that judges them: its source, its bounds relative to the registered value, min_rows, and
what hostile data gives."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from mvctl.analysis.classification import LIVE_METRICS, Columns, measure, wilson
from mvctl.analysis.rules import MIN_ROWS, Registered, Roles, RuleResult, evaluate
from mvctl.errors import OperationalError
from mvctl.formats.rules import MetricRule, parse_rule

COLUMNS = Columns(label="is_fraud", prediction="pred", score="score")
ROLES = Roles(label="is_fraud", prediction="pred", score="score")


def outcomes(rows: int = 5000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.random(rows) < 0.1
    score = np.clip(rng.normal(np.where(truth, 0.7, 0.3), 0.2), 0, 1)
    return pd.DataFrame(
        {"is_fraud": truth.astype(int), "pred": (score > 0.5).astype(int), "score": score}
    )


def fpr_batch(negatives: int, false_positives: int, seed: int = 5) -> pd.DataFrame:
    """Exactly ``false_positives / negatives`` false-positive rate, plus 300 positives."""
    truth = np.r_[np.zeros(negatives, int), np.ones(300, int)]
    pred = np.r_[np.ones(false_positives, int), np.zeros(negatives - false_positives, int)]
    pred = np.r_[pred, np.ones(240, int), np.zeros(60, int)]
    order = np.random.default_rng(seed).permutation(len(truth))
    return pd.DataFrame({"is_fraud": truth[order], "pred": pred[order]})


def sklearn_value(name: str, frame: pd.DataFrame) -> float:
    """Each metric as sklearn defines it, computed another way than mvctl does."""
    y, p, s = frame["is_fraud"], frame["pred"], frame["score"]
    ways: dict[str, Any] = {
        "false_positive_rate": lambda: 1 - skm.recall_score(y, p, pos_label=0),
        "false_negative_rate": lambda: 1 - skm.recall_score(y, p),
        "precision": lambda: skm.precision_score(y, p),
        "recall": lambda: skm.recall_score(y, p),
        "accuracy": lambda: skm.accuracy_score(y, p),
        "f1": lambda: skm.f1_score(y, p),
        "roc_auc": lambda: skm.roc_auc_score(y, s),
        "mae": lambda: skm.mean_absolute_error(y, s),
        "rmse": lambda: math.sqrt(skm.mean_squared_error(y, s)),
    }
    return float(ways[name]())


@pytest.mark.parametrize("name", LIVE_METRICS)
def test_each_live_metric_is_sklearns(name: str) -> None:
    frame = outcomes()
    # Regression metrics read the prediction column: give them the score as the prediction.
    columns = Columns("is_fraud", "score") if name in ("mae", "rmse") else COLUMNS
    got = measure(name, frame, columns)
    assert got.rows == len(frame) and got.reason is None and got.left_out == ""
    assert got.value == pytest.approx(sklearn_value(name, frame), rel=1e-12)
    assert got.value is not None and 0 < got.value < 1  # not a degenerate 0 or 1


def test_the_positive_label_can_be_a_word() -> None:
    frame = outcomes()
    words = frame.assign(
        is_fraud=np.where(frame["is_fraud"] == 1, "fraud", "ok"),
        pred=np.where(frame["pred"] == 1, "fraud", "ok"),
    )
    columns = Columns("is_fraud", "pred", positive="fraud")
    for name in ("false_positive_rate", "precision", "recall"):
        assert measure(name, words, columns).value == pytest.approx(sklearn_value(name, frame))
    # A positive that is neither word: the label has two values and neither is positive.
    with pytest.raises(OperationalError, match="takes 2 values \\('fraud', 'ok'\\)"):
        measure("precision", words, Columns("is_fraud", "pred", positive=1))


def test_unlabelled_rows_are_left_out_and_counted() -> None:
    frame = outcomes(1000).astype({"is_fraud": float, "pred": float})
    frame.loc[:99, "is_fraud"] = np.nan  # labels not in yet
    frame.loc[100:109, "pred"] = np.nan
    got = measure("false_positive_rate", frame, COLUMNS)
    assert got.rows == 890
    assert got.left_out == "100 without a label and 10 labelled without a prediction left out"
    kept = frame.dropna(subset=["is_fraud", "pred"])
    assert got.value == pytest.approx(sklearn_value("false_positive_rate", kept))


@pytest.mark.parametrize(
    ("name", "frame", "reason"),
    [
        ("false_positive_rate", {"is_fraud": [1, 1], "pred": [1, 0]}, "no actual negative"),
        ("recall", {"is_fraud": [0, 0], "pred": [1, 0]}, "no actual positive"),
        ("false_negative_rate", {"is_fraud": [0, 0], "pred": [1, 0]}, "no actual positive"),
        ("precision", {"is_fraud": [1, 0], "pred": [0, 0]}, "no predicted positive"),
        ("f1", {"is_fraud": [0, 0], "pred": [0, 0]}, "no actual or predicted positive"),
        ("roc_auc", {"is_fraud": [0, 0], "score": [0.1, 0.2]}, "both an actual positive"),
        ("accuracy", {"is_fraud": [np.nan], "pred": [1.0]}, "no labelled row"),
    ],
)
def test_an_undefined_metric_has_no_value_and_says_why(
    name: str, frame: dict[str, list[Any]], reason: str
) -> None:
    got = measure(name, pd.DataFrame(frame), COLUMNS)
    assert got.value is None and got.reason is not None and reason in got.reason


@pytest.mark.parametrize(
    ("name", "frame", "message"),
    [
        ("recall", {"is_fraud": [0, 1, 2], "pred": [0, 1, 1]}, "label column 'is_fraud' takes 3"),
        ("recall", {"is_fraud": [0, 1], "pred": [0.2, 0.9]}, "prediction column 'pred' takes"),
        ("mae", {"is_fraud": ["a", "b"], "pred": [0.2, 0.9]}, "'is_fraud' is not numeric"),
        ("rmse", {"is_fraud": [1.0, 0.0], "pred": [np.inf, 0.9]}, "holds an infinite value"),
        ("roc_auc", {"is_fraud": [0, 1], "score": ["hi", "lo"]}, "'score' is not numeric"),
    ],
)
def test_data_that_cannot_mean_anything_is_a_one_line_error(
    name: str, frame: dict[str, list[Any]], message: str
) -> None:
    with pytest.raises(OperationalError, match=message) as caught:
        measure(name, pd.DataFrame(frame), COLUMNS)
    assert "\n" not in caught.value.message and caught.value.exit_code == 3


# --- the metric rule -------------------------------------------------------------------


def one(
    rule: dict[str, Any],
    frame: pd.DataFrame | None,
    registered: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    roles: Roles = ROLES,
) -> RuleResult:
    known = Registered("v0.2.0", registered) if registered is not None else None
    [result] = evaluate([parse_rule(rule)], None, frame, metrics, roles, known, frame).results
    return result


FPR_RULE = {"metric": "false_positive_rate", "max_increase": 0.15}


@pytest.mark.parametrize(
    ("false_positives", "level"),
    [(229, "ok"), (240, "ok"), (254, "ok"), (255, "breach"), (300, "breach")],
)
def test_max_increase_breaches_only_above_registered_times_1_15(
    false_positives: int, level: str
) -> None:
    # Registered 0.020: the limit is 0.023, and the live rate is held to it by its one-sided
    # 95% Wilson lower bound: 254 in 10,000 (0.0254) has a lower bound of 0.02294, within the
    # limit, 255 one of 0.02303, past it.
    result = one(FPR_RULE, fpr_batch(10_000, false_positives), {"false_positive_rate": 0.020})
    assert result.level == level
    assert result.value == pytest.approx(false_positives / 10_000, abs=1e-15)
    assert (result.source, result.registered, result.rows) == ("predictions", 0.02, 10_300)
    [bound] = result.bounds
    assert (bound.key, bound.given, bound.ok) == ("max_increase", 0.15, level == "ok")
    assert bound.limit == pytest.approx(0.023)
    assert bound.compared == pytest.approx(wilson(false_positives, 10_000, 1.6448536)[0])
    assert result.rule == "false_positive_rate <= registered +15%"


def test_max_decrease_bounds_a_metric_where_lower_is_worse() -> None:
    frame = fpr_batch(10_000, 100)  # recall 240/300 = 0.8, 95% upper bound 0.835
    rule = {"metric": "recall", "max_decrease": 0.1}
    assert one(rule, frame, {"recall": 0.88}).level == "ok"  # limit 0.792
    assert one(rule, frame, {"recall": 0.9}).level == "ok"  # limit 0.81: within the noise
    low = one(rule, frame, {"recall": 0.95})  # limit 0.855
    assert low.level == "breach" and low.bounds[0].limit == pytest.approx(0.855)
    assert low.bounds[0].compared == pytest.approx(wilson(240, 300, 1.6448536)[1])
    assert low.rule == "recall >= registered -10%"


def test_a_negative_registered_value_still_bounds_the_increase() -> None:
    # limit = registered + |registered| * 0.5, not registered * 1.5 (which would be lower).
    result = one(
        {"metric": "gain", "max_increase": 0.5}, None, {"gain": -2.0}, metrics={"gain": -1.5}
    )
    assert result.level == "ok" and result.bounds[0].limit == pytest.approx(-1.0)
    assert (
        one({"metric": "gain", "max_increase": 0.5}, None, {"gain": -2.0}, {"gain": -0.9}).level
        == "breach"
    )


def test_absolute_and_relative_bounds_in_one_rule_each_count() -> None:
    frame = fpr_batch(10_000, 300)  # 0.030, 95% lower bound 0.0273
    both = {"metric": "false_positive_rate", "max": 0.03, "max_increase": 0.15}
    result = one(both, frame, {"false_positive_rate": 0.02})
    assert result.level == "breach"
    assert [(b.key, b.ok) for b in result.bounds] == [("max", True), ("max_increase", False)]
    assert one(both, frame, {"false_positive_rate": 0.024}).level == "ok"  # limit 0.0276


def test_a_version_that_registered_no_such_metric_skips_the_relative_bound() -> None:
    result = one(FPR_RULE, fpr_batch(10_000, 400), {"auc": 0.9})
    assert result.level == "skipped"
    assert "v0.2.0 registered no false_positive_rate" in result.detail
    assert result.bounds[0].limit is None and result.bounds[0].ok is None
    # An absolute bound in the same rule still breaches on its own.
    both = one({**FPR_RULE, "max": 0.03}, fpr_batch(10_000, 400), {"auc": 0.9})
    assert both.level == "breach"


def test_too_few_labelled_rows_skip_never_breach() -> None:
    frame = fpr_batch(150, 100).astype(float)  # FPR 0.67 on 450 rows
    frame.loc[: len(frame) - 100, "is_fraud"] = np.nan  # only 99 labelled
    result = one(FPR_RULE, frame, {"false_positive_rate": 0.02})
    assert result.level == "skipped" and result.value is None
    assert result.detail.startswith(
        f"99 labelled rows, 351 without a label left out: fewer than min_rows {MIN_ROWS}"
    )
    lowered = one({**FPR_RULE, "min_rows": 50}, frame, {"false_positive_rate": 0.02})
    assert lowered.level in ("ok", "breach") and lowered.rows == 99


def test_live_data_wins_over_the_metrics_file_and_the_file_is_the_fallback() -> None:
    frame = fpr_batch(10_000, 300)
    file = {"false_positive_rate": 0.001}
    live = one(FPR_RULE, frame, {"false_positive_rate": 0.02}, file)
    assert live.source == "predictions" and live.level == "breach"
    without_labels = frame.drop(columns=["is_fraud"])
    fallback = one(FPR_RULE, without_labels, {"false_positive_rate": 0.02}, file)
    assert (fallback.source, fallback.level, fallback.rows) == ("metrics_file", "ok", None)
    assert fallback.value == 0.001
    missing = one(FPR_RULE, without_labels, {"false_positive_rate": 0.02})
    assert missing.level == "skipped"
    assert missing.detail == (
        "no live false_positive_rate (the live data has no label column 'is_fraud')"
        " and no --metrics file"
    )
    unset = one(FPR_RULE, frame, {}, roles=Roles(prediction="pred"))
    assert "columns.label is not set in mvctl.yaml" in unset.detail


def test_roc_auc_needs_the_score_column() -> None:
    frame = outcomes()
    rule = {"metric": "roc_auc", "max_decrease": 0.05}
    result = one(rule, frame, {"roc_auc": 0.9})
    assert result.source == "predictions"
    assert result.value == pytest.approx(sklearn_value("roc_auc", frame))
    no_score = one(rule, frame.drop(columns=["score"]), {"roc_auc": 0.9})
    assert no_score.level == "skipped" and "no score column 'score'" in no_score.detail


def test_hostile_labels_fail_the_evaluation_with_one_line() -> None:
    frame = fpr_batch(1000, 10).assign(is_fraud=lambda f: f["is_fraud"] * 2 + (f.index % 2))
    with pytest.raises(OperationalError, match="takes 4 values"):
        one(FPR_RULE, frame, {"false_positive_rate": 0.02})


def test_a_gate_refuses_a_monitors_bound() -> None:
    from mvctl.channels.gates import evaluate as gates

    [result] = gates(
        [{"metric": "fpr", "min": 0, "max_increase": 0.1}], {"metrics": {"fpr": 0}}, None
    )
    assert not result.ok and "max_increase bound monitors" in result.detail
    written = {"metric": "recall", "max_decrease": 0.1, "min_rows": 5}
    assert parse_rule(written) == MetricRule("recall", max_decrease=0.1, min_rows=5)
    with pytest.raises(ValueError, match="min_rows: counts labelled rows"):
        parse_rule({"metric": "fpr", "max_increase": 0.1, "min_rows": 5})
    with pytest.raises(ValueError, match="max_increase: must be a number >= 0"):
        parse_rule({"metric": "recall", "max_increase": -0.1})
