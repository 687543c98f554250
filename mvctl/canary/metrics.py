"""What a canary is compared on: one small class per kind of metric, in a table keyed by the
names ``canary.metrics`` uses (mvctl.formats.schema.CANARY_METRICS).

Each metric gives both arms' values (classification and regression values through
sklearn.metrics) and, when it has one, the stream its sequential test runs on: per
observation a time and a value (0/1 for a proportion), with the direction that is *worse*:

| metric | test on | worse |
|---|---|---|
| error_rate | each request: failed or not | higher |
| false_positive_rate, false_negative_rate | labelled negatives, positives: wrong | higher |
| precision | predicted positives: truly positive or not | lower |
| recall | labelled positives: found or not | lower |
| accuracy | labelled rows: right or not | lower |
| mae, rmse | labelled rows: absolute / squared error (a mean) | higher |
| latency_mean_ms | each request's log latency (a geometric mean) | higher |
| latency_pXX_ms | each request: slower than both arms' pooled pXX or not | higher |
| roc_auc, psi, agreement | no test: reported, and thresholds (min/max) checked | - |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mvctl.canary.evidence import Arm
from mvctl.canary.sequential import Direction, TestKind
from mvctl.errors import OperationalError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Rows:
    """An arm's joined rows, read once: classification (truth and predicted 0/1, score or
    NaN) or regression (truth and prediction), with each row's time."""

    times: Floats
    truth: Floats
    predicted: Floats
    scores: Floats  # NaN where the output was a label, not a score

    @property
    def n(self) -> int:
        return len(self.times)


@dataclass(frozen=True)
class Pair:
    """Both arms and what is computed once for them."""

    baseline: Arm
    candidate: Arm
    rows_baseline: Rows
    rows_candidate: Rows
    regression: bool
    paired: bool  # the arms saw the same requests (a shadow), so agreement means something


Stream = tuple["Floats", "Floats"]  # (times, values)


class Metric:
    """One metric: ``value`` of an arm (and the rows it used); ``stream`` for the test."""

    name: str = ""
    test: TestKind | None = None
    worse: Direction = "higher"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        raise NotImplementedError

    def stream(self, pair: Pair, candidate: bool) -> Stream | None:
        return None


def _arm(pair: Pair, candidate: bool) -> Arm:
    return pair.candidate if candidate else pair.baseline


def _rows(pair: Pair, candidate: bool) -> Rows:
    return pair.rows_candidate if candidate else pair.rows_baseline


def sklearn_metrics() -> Any:
    try:
        from sklearn import metrics
    except ImportError as exc:
        raise OperationalError(
            "canary metrics from outcomes need scikit-learn",
            hint="pip install scikit-learn, or analyze without --outcomes",
        ) from exc
    return metrics


class ErrorRate(Metric):
    name, test, worse = "error_rate", "proportion", "higher"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        arm = _arm(pair, candidate)
        return (float(arm.errors.mean()) if arm.requests else None), arm.requests

    def stream(self, pair: Pair, candidate: bool) -> Stream:
        arm = _arm(pair, candidate)
        return arm.times, arm.errors


@dataclass(frozen=True)
class _Subset:
    """A proportion over a subset of labelled rows (``where``), success ``hit``."""

    where: Callable[[Rows], Any]
    hit: Callable[[Rows], Any]


class Classification(Metric):
    test = "proportion"

    def __init__(
        self,
        name: str,
        worse: Direction,
        subset: _Subset,
        score: Callable[[Any, Floats, Floats], float],
    ) -> None:
        self.name, self.worse, self._subset, self._score = name, worse, subset, score

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        rows = _rows(pair, candidate)
        if pair.regression:
            return None, 0
        used = int(self._subset.where(rows).sum())
        if used == 0:
            return None, 0
        return float(self._score(sklearn_metrics(), rows.truth, rows.predicted)), used

    def stream(self, pair: Pair, candidate: bool) -> Stream | None:
        if pair.regression:
            return None
        rows = _rows(pair, candidate)
        where = self._subset.where(rows)
        return rows.times[where], self._subset.hit(rows)[where].astype(float)


def _fpr(metrics: Any, truth: Floats, predicted: Floats) -> float:
    tn, fp, _, _ = metrics.confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    return float(fp / (fp + tn))


def _fnr(metrics: Any, truth: Floats, predicted: Floats) -> float:
    _, _, fn, tp = metrics.confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    return float(fn / (fn + tp))


class RocAuc(Metric):
    name = "roc_auc"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        import numpy as np

        rows = _rows(pair, candidate)
        scored = ~np.isnan(rows.scores)
        truth = rows.truth[scored]
        if pair.regression or len(set(truth.tolist())) < 2:
            return None, int(scored.sum())
        auc = sklearn_metrics().roc_auc_score(truth, rows.scores[scored])
        return float(auc), int(scored.sum())


class RegressionError(Metric):
    test, worse = "mean", "higher"

    def __init__(self, name: str, power: int) -> None:
        self.name, self._power = name, power

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        rows = _rows(pair, candidate)
        if not pair.regression or rows.n == 0:
            return None, 0
        metrics = sklearn_metrics()
        if self._power == 1:
            return float(metrics.mean_absolute_error(rows.truth, rows.predicted)), rows.n
        return math.sqrt(metrics.mean_squared_error(rows.truth, rows.predicted)), rows.n

    def stream(self, pair: Pair, candidate: bool) -> Stream | None:
        import numpy as np

        if not pair.regression:
            return None
        rows = _rows(pair, candidate)
        return rows.times, np.abs(rows.truth - rows.predicted) ** self._power


class LatencyMean(Metric):
    """The geometric mean latency, tested on log latencies: latencies are heavy-tailed, and
    a plug-in test of their arithmetic mean calls an identical candidate faster far more
    often than alpha (a rare slow request moves the mean more than thousands of others)."""

    name, test, worse = "latency_mean_ms", "log_mean", "higher"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        import numpy as np

        arm = _arm(pair, candidate)
        if not arm.requests:
            return None, 0
        logs = np.log(np.maximum(arm.latency_ms, 1e-3))  # as the test sees them
        return float(np.exp(logs.mean())), arm.requests

    def stream(self, pair: Pair, candidate: bool) -> Stream:
        arm = _arm(pair, candidate)
        return arm.times, arm.latency_ms


class LatencyQuantile(Metric):
    """A latency percentile; its test compares the arms' shares of requests slower than the
    percentile of both arms pooled (equal shares when the arms are alike)."""

    test, worse = "proportion", "higher"

    def __init__(self, name: str, q: float) -> None:
        self.name, self._q = name, q

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        import numpy as np

        arm = _arm(pair, candidate)
        if not arm.requests:
            return None, 0
        return float(np.percentile(arm.latency_ms, self._q)), arm.requests

    def stream(self, pair: Pair, candidate: bool) -> Stream | None:
        import numpy as np

        both = np.concatenate([pair.baseline.latency_ms, pair.candidate.latency_ms])
        if not len(both):
            return None
        limit = np.percentile(both, self._q)
        arm = _arm(pair, candidate)
        return arm.times, (arm.latency_ms > limit).astype(float)


def _numbers(outputs: Sequence[Any]) -> list[float]:
    """Every row's output as a number (a score list's last entry), where it is one."""
    out: list[float] = []
    for rows in outputs:
        for row in rows:
            value = row[-1] if isinstance(row, list) and row else row
            if isinstance(value, int | float) and math.isfinite(value):
                out.append(float(value))
    return out


class Psi(Metric):
    """The population stability index of the candidate's predictions against the
    baseline's (baseline deciles; mvctl.analysis.drift's PSI). Reported for the candidate."""

    name = "psi"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        import numpy as np

        from mvctl.analysis.drift import psi

        base = np.asarray(_numbers(pair.baseline.outputs))
        cand = np.asarray(_numbers(pair.candidate.outputs))
        if not candidate:
            return (0.0 if len(base) else None), len(base)
        if not len(base) or not len(cand):
            return None, len(cand)
        values = np.unique(np.concatenate([base, cand]))
        if len(values) <= 10:  # labels: the share of each, as for a categorical column
            bins, size = [np.searchsorted(values, x) for x in (base, cand)], len(values)
        else:  # scores: the baseline's deciles
            edges = np.unique(np.percentile(base, np.linspace(0, 100, 11)[1:-1]))
            bins = [np.searchsorted(edges, x, side="right") for x in (base, cand)]
            size = len(edges) + 1
        shares = [np.bincount(b, minlength=size) / len(b) for b in bins]
        return float(psi(shares[0].tolist(), shares[1].tolist())), len(cand)


class Agreement(Metric):
    """The share of requests both arms answered on which they gave the same output (a shadow
    against production); never a reason to promote."""

    name = "agreement"

    def value(self, pair: Pair, candidate: bool) -> tuple[float | None, int]:
        if not pair.paired:
            return None, 0
        mine = dict(zip(pair.baseline.keys, pair.baseline.outputs, strict=True))
        same = total = 0
        for key, output in zip(pair.candidate.keys, pair.candidate.outputs, strict=True):
            if key in mine:
                total += 1
                same += mine[key] == output
        return (same / total if total else None), total


def _negatives(r: Rows) -> Any:
    return r.truth == 0


def _positives(r: Rows) -> Any:
    return r.truth == 1


def _flagged(r: Rows) -> Any:
    return r.predicted == 1


def _everything(r: Rows) -> Any:
    return r.times == r.times


def _wrong(r: Rows) -> Any:
    return r.predicted != r.truth


def _right(r: Rows) -> Any:
    return r.predicted == r.truth


def _truly(r: Rows) -> Any:
    return r.truth == 1


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        ErrorRate(),
        Classification("false_positive_rate", "higher", _Subset(_negatives, _wrong), _fpr),
        Classification("false_negative_rate", "higher", _Subset(_positives, _wrong), _fnr),
        Classification(
            "precision",
            "lower",
            _Subset(_flagged, _truly),
            lambda m, t, p: m.precision_score(t, p, zero_division=0),
        ),
        Classification(
            "recall",
            "lower",
            _Subset(_positives, _flagged),
            lambda m, t, p: m.recall_score(t, p, zero_division=0),
        ),
        Classification(
            "accuracy",
            "lower",
            _Subset(_everything, _right),
            lambda m, t, p: m.accuracy_score(t, p),
        ),
        RocAuc(),
        RegressionError("mae", 1),
        RegressionError("rmse", 2),
        LatencyMean(),
        LatencyQuantile("latency_p50_ms", 50),
        LatencyQuantile("latency_p95_ms", 95),
        LatencyQuantile("latency_p99_ms", 99),
        Psi(),
        Agreement(),
    )
}
"""Metrics by name; the keys are exactly mvctl.formats.schema.CANARY_METRICS."""


# --- reading joined rows ---------------------------------------------------------------------


def _label(value: Any, positive: Any) -> float | None:
    """A classification outcome as 1.0 (the positive class) or 0.0, or None when it is no
    label of two classes."""
    if isinstance(value, str):
        return float(value == positive)
    if not isinstance(value, int | float) or isinstance(positive, str):
        return None
    if value == positive:
        return 1.0
    return 0.0 if value in (0, 1) else None


def _prediction(value: Any, positive: Any) -> tuple[float, float] | None:
    """(predicted 0/1, score or NaN) of one output row, or None."""
    if isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value):
        return float(value[1] >= 0.5), float(value[1])
    if isinstance(value, bool):
        return float(value), math.nan
    if _number(value):
        if value in (0, 1):
            return float(value), math.nan
        if 0 <= value <= 1:
            return float(value >= 0.5), float(value)
        return None
    if isinstance(value, str):
        return float(value == positive), math.nan
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_regression(arms: Sequence[Arm], positive: Any) -> bool:
    """Whether the joined outcomes are numbers other than two classes."""
    labels = [label for arm in arms for label in arm.labels]
    if not labels:
        return False
    return all(_number(v) for v in labels) and any(v not in (0, 1, positive) for v in labels)


def rows_of(arm: Arm, regression: bool, positive: Any) -> Rows:
    import numpy as np

    times: list[float] = []
    truth: list[float] = []
    predicted: list[float] = []
    scores: list[float] = []
    for when, prediction, label in zip(arm.joined_times, arm.predictions, arm.labels, strict=True):
        if regression:
            value = (
                prediction[0]
                if isinstance(prediction, list) and len(prediction) == 1
                else prediction
            )
            if not (_number(value) and _number(label)):
                continue
            times.append(float(when))
            truth.append(float(label))
            predicted.append(float(value))
            scores.append(math.nan)
            continue
        y = _label(label, positive)
        p = _prediction(prediction, positive)
        if y is None or p is None:
            continue
        times.append(float(when))
        truth.append(y)
        predicted.append(p[0])
        scores.append(p[1])
    return Rows(
        np.asarray(times, dtype=float),
        np.asarray(truth, dtype=float),
        np.asarray(predicted, dtype=float),
        np.asarray(scores, dtype=float),
    )
