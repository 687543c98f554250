"""Live classification and regression metrics from labelled rows, through sklearn.metrics.

Labels arrive late (a fraud is confirmed weeks after the prediction), so a row without a
label is not labelled yet and is left out, never an error; so is a labelled row without the
prediction (or, for roc_auc, the score) a metric needs, and the rows each metric used are
counted. What cannot mean anything is an error with one line: a classification label or
prediction with more than two values (a multi-class label, or scores in the prediction
column), non-numeric values where mae, rmse or roc_auc need numbers.

A metric that is undefined on the rows given (a false-positive rate with no actual negative,
a precision with no predicted positive) has no value and says why: a 0 there would breach a
``min`` on no evidence.

A rate of counts (false-positive and false-negative rate, precision, recall, accuracy) keeps
its counts, so a rule can judge it by a Wilson confidence bound instead of the point estimate
(:meth:`LiveValue.bound`): a false-positive rate of 0.020 on 1,000 negatives has a sampling
error of 0.0045, more than a 15% margin. roc_auc, f1, mae and rmse carry no counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mvctl.errors import OperationalError
from mvctl.formats.schema import LIVE_METRICS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "CLASSIFICATION",
    "LIVE_METRICS",
    "RATES",
    "REGRESSION",
    "Columns",
    "LiveValue",
    "measure",
    "measure_all",
    "wilson",
]

REGRESSION = ("mae", "rmse")
CLASSIFICATION = tuple(m for m in LIVE_METRICS if m not in REGRESSION)
SCORED = ("roc_auc",)  # from the score column, not the prediction
RATES = ("false_positive_rate", "false_negative_rate", "precision", "recall", "accuracy")
"""Metrics that are a count over a count: they carry ``hits`` and ``trials``."""


@dataclass(frozen=True)
class Columns:
    """The columns of a batch that hold the outcome (label), the prediction and the score,
    and the label value that counts as positive."""

    label: str | None = None
    prediction: str | None = None
    score: str | None = None
    positive: Any = 1

    def needed(self, metric: str) -> tuple[tuple[str, str | None], ...]:
        """(role, column) pairs ``metric`` reads."""
        second = ("score", self.score) if metric in SCORED else ("prediction", self.prediction)
        return (("label", self.label), second)

    def missing(self, metric: str, present: Any) -> str | None:
        """Why ``metric`` cannot be computed from a batch with ``present`` columns, or None."""
        for role, column in self.needed(metric):
            if column is None:
                return f"columns.{role} is not set in mvctl.yaml"
            if column not in present:
                return f"the live data has no {role} column {column!r}"
        return None


@dataclass(frozen=True)
class LiveValue:
    """A metric measured on a batch: its value (None: undefined there, ``reason`` says why)
    over ``rows`` rows; ``left_out`` words the rows a metric could not use. A rate of
    :data:`RATES` is ``hits / trials`` (false positives over actual negatives, ...)."""

    metric: str
    value: float | None
    rows: int
    left_out: str = ""
    reason: str | None = None
    hits: int | None = None
    trials: int | None = None

    def bound(self, z: float, upper: bool) -> float | None:
        """The one-sided Wilson bound of the rate at ``z`` (upper or lower), or None for a
        metric without counts."""
        if self.hits is None or not self.trials:
            return None
        low, high = wilson(self.hits, self.trials, z)
        return high if upper else low


def wilson(hits: int, trials: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of ``hits`` in ``trials`` at ``z``: sound near 0 and 1 and
    on few trials, where the normal interval collapses (0 hits give [0, 0])."""
    p = hits / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * (p * (1 - p) / trials + z2 / (4 * trials * trials)) ** 0.5
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == trials else min(1.0, centre + half)
    return low, high


def _sklearn_metrics() -> Any:
    try:
        from sklearn import metrics
    except ImportError as exc:
        raise OperationalError(
            "live metrics from labelled rows need scikit-learn",
            hint="pip install scikit-learn (or give the metrics with --metrics FILE)",
        ) from exc
    return metrics


def _shown(values: Any, limit: int = 5) -> str:
    words = sorted({repr(v.item() if hasattr(v, "item") else v) for v in values})
    more = f", ... ({len(words)} in all)" if len(words) > limit else ""
    return ", ".join(words[:limit]) + more


def _binary(series: pd.Series, role: str, column: str, positive: Any) -> np.ndarray:
    """``series`` as booleans (True: the positive label), refusing a third value."""
    import pandas as pd

    hit: np.ndarray = series.eq(positive).to_numpy(dtype=bool)
    others = pd.unique(series[~hit])
    if len(others) > 1:
        raise OperationalError(
            f"{role} column {column!r} takes {len(others) + int(hit.any())} values"
            f" ({_shown(pd.unique(series))}): classification metrics need two, one of them"
            f" the positive label {positive!r}",
            hint="set columns.positive in mvctl.yaml; scores or probabilities go in the"
            " column named by columns.score",
        )
    return hit


def _numbers(series: pd.Series, role: str, column: str, metric: str) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        raise OperationalError(
            f"{role} column {column!r} is not numeric: {metric} needs numbers",
            hint=f"check the {role} column of the live data",
        )
    values: np.ndarray = series.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise OperationalError(
            f"{role} column {column!r} holds an infinite value: {metric} needs finite numbers"
        )
    return values


def _left_out(unlabelled: int, without: int, role: str) -> str:
    parts = [f"{unlabelled} without a label"] if unlabelled else []
    if without:
        parts.append(f"{without} labelled without a {role}")
    return f"{' and '.join(parts)} left out" if parts else ""


def _undefined(metric: str, truth: np.ndarray, guess: np.ndarray | None) -> str | None:
    """Why a classification ``metric`` has no value on these rows, or None."""
    positives, negatives = bool(truth.any()), bool((~truth).any())
    if metric == "false_positive_rate" and not negatives:
        return "undefined: no actual negative among the labelled rows"
    if metric in ("false_negative_rate", "recall") and not positives:
        return "undefined: no actual positive among the labelled rows"
    if metric == "roc_auc" and not (positives and negatives):
        return "undefined: roc_auc needs both an actual positive and an actual negative"
    if guess is not None and metric == "precision" and not guess.any():
        return "undefined: no predicted positive"
    if guess is not None and metric == "f1" and not (positives or guess.any()):
        return "undefined: no actual or predicted positive"
    return None


def _counts(metric: str, truth: np.ndarray, guess: np.ndarray) -> tuple[int, int]:
    """(hits, trials) of a rate of :data:`RATES` on boolean ``truth`` and ``guess``."""
    hits, trials = {
        "false_positive_rate": (~truth & guess, ~truth),
        "false_negative_rate": (truth & ~guess, truth),
        "precision": (truth & guess, guess),
        "recall": (truth & guess, truth),
        "accuracy": (truth == guess, None),
    }[metric]
    return int(hits.sum()), len(truth) if trials is None else int(trials.sum())


def _classification(metric: str, truth: np.ndarray, other: np.ndarray) -> float:
    """roc_auc (``other``: scores) or f1 (``other``: predictions): the metrics of
    :data:`CLASSIFICATION` that are not a count over a count."""
    metrics = _sklearn_metrics()
    if metric == "roc_auc":
        return float(metrics.roc_auc_score(truth, other))
    return float(metrics.f1_score(truth, other))


def _regression(metric: str, truth: np.ndarray, guess: np.ndarray) -> float:
    metrics = _sklearn_metrics()
    error = metrics.mean_absolute_error if metric == "mae" else metrics.root_mean_squared_error
    return float(error(truth, guess))


def measure(metric: str, frame: pd.DataFrame, columns: Columns) -> LiveValue:
    """``metric`` (one of :data:`LIVE_METRICS`) on the rows of ``frame`` that carry its
    inputs. ``frame`` must have the columns (see :meth:`Columns.missing`)."""
    if metric not in LIVE_METRICS:
        raise ValueError(f"not a live metric: {metric!r}")
    why = columns.missing(metric, frame.columns)
    (_, label), (role, second) = columns.needed(metric)
    if why is not None or label is None or second is None:
        raise ValueError(f"cannot measure {metric}: {why}")
    labels, others = frame[label], frame[second]
    has_label = labels.notna().to_numpy(dtype=bool)
    used = has_label & others.notna().to_numpy(dtype=bool)
    rows = int(used.sum())
    left_out = _left_out(int((~has_label).sum()), int((has_label & ~used).sum()), role)
    truth_series, other_series = labels[used], others[used]
    if metric in REGRESSION:
        truth = _numbers(truth_series, "label", label, metric)
        guess = _numbers(other_series, role, second, metric)
        value = _regression(metric, truth, guess) if rows else None
        return LiveValue(metric, value, rows, left_out, None if rows else "no labelled row")
    truth_bool = _binary(truth_series, "label", label, columns.positive)
    if metric in SCORED:
        other = _numbers(other_series, role, second, metric)
        guess_bool = None
    else:
        other = guess_bool = _binary(other_series, role, second, columns.positive)
    if not rows:
        return LiveValue(metric, None, 0, left_out, "no labelled row")
    why = _undefined(metric, truth_bool, guess_bool)
    if why is not None:
        return LiveValue(metric, None, rows, left_out, why)
    if metric in RATES and guess_bool is not None:
        hits, trials = _counts(metric, truth_bool, guess_bool)
        return LiveValue(metric, hits / trials, rows, left_out, None, hits, trials)
    return LiveValue(metric, _classification(metric, truth_bool, other), rows, left_out)


def measure_all(
    metrics: Iterable[str], frame: pd.DataFrame, columns: Columns
) -> tuple[dict[str, LiveValue], dict[str, str]]:
    """Each of ``metrics`` that ``frame`` has the columns for, measured; for the others, why
    not."""
    values: dict[str, LiveValue] = {}
    missing: dict[str, str] = {}
    for metric in metrics:
        why = columns.missing(metric, frame.columns)
        if why is None:
            values[metric] = measure(metric, frame, columns)
        else:
            missing[metric] = why
    return values, missing
