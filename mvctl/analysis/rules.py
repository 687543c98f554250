"""Drift, bias and live-metric rules, evaluated on data: pure, no git, no config files.

    - {drift: psi, max: 0.25, warn: 0.1}          # worst column's PSI
    - {drift: ks, alpha: 0.05, correction: bonferroni}
    - {drift: chi2, alpha: 0.05, correction: fdr}
    - {drift: dataset, max_share: 0.3}            # share of drifted columns
    - {bias: demographic_parity_difference, max: 0.10}
    - {bias: demographic_parity_ratio, min: 0.8}
    - {bias: equalized_odds_difference, max: 0.10}
    - {metric: false_positive_rate, max: 0.05}
    - {metric: false_positive_rate, max_increase: 0.15, min_rows: 500}
    - {metric: recall, max_decrease: 0.10}

A metric rule's value comes from the predictions when they have the label and prediction
(or, for roc_auc, score) columns (mvctl.analysis.classification), else from the metrics file.
``max_increase``/``max_decrease`` bound it relative to the value the served version
registered: the limit is registered +/- |registered| * the fraction given; a registered 0
leaves a relative bound unchecked (0 * any fraction is 0, so one false positive would
breach). A live metric on fewer than ``min_rows`` labelled rows (default :data:`MIN_ROWS`)
is skipped.

A live rate of counts (classification.RATES) is held to its limits by its one-sided
:data:`CONFIDENCE` Wilson bound, not the point estimate: a ``max`` breaches only when the
lower bound is above it, a ``min`` when the upper bound is below it, so an unchanged model
breaches in at most ~5% of batches whatever their size. roc_auc, f1, mae, rmse and values
from a metrics file are compared as measured.

A rule breaches only on evidence: a rule whose input was not supplied (no live data for
drift, no labels for equalized odds, no metrics, too few labelled rows, a relative bound
on a metric the version never registered) is reported as skipped, with the reason.
Monitors use these rules on live data (mvctl.monitoring), promotion gates on validation data
(mvctl.channels.gates), where a missing input fails closed instead.

Rules arrive typed (mvctl.formats.rules); each kind is a small class in :data:`KINDS`, keyed by
the rules' ``kind`` names; adding a kind is one rule class, one kind class and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeGuard, TypeVar

from mvctl.analysis.bias import BiasReport, assess
from mvctl.analysis.classification import LIVE_METRICS, Columns, LiveValue, measure_all
from mvctl.analysis.drift import (
    ALPHA,
    PSI_BREACH,
    PSI_WARN,
    ColumnDrift,
    column_drift,
    corrected,
    drifted_share,
)
from mvctl.errors import OperationalError
from mvctl.formats.rules import BiasRule, DriftRule, MetricRule, Rule
from mvctl.formats.values import flatten

if TYPE_CHECKING:
    import pandas as pd

Level = Literal["ok", "warn", "breach", "skipped"]
Source = Literal["predictions", "metrics_file"]

CONFIDENCE = 0.95
"""One-sided confidence of the bound a live rate is judged by."""
_Z = 1.6448536269514722  # the standard normal quantile at CONFIDENCE

MIN_ROWS = 200
"""Labelled rows a live metric needs by default: a false-positive rate on 20 rows moves by
5 points with one row, and a monitor that rolls back must not act on that."""


@dataclass(frozen=True)
class Bound:
    """One bound of a metric rule: ``key`` and the value ``given`` as written, the ``limit``
    (for max_increase/max_decrease, from the registered value; None without one), the value
    ``compared`` with it (a live rate's one-sided confidence bound, else the value itself;
    None: not checked) and whether it kept to the limit (None: not checked)."""

    key: str
    given: float
    limit: float | None
    ok: bool | None
    compared: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "given": self.given,
            "limit": self.limit,
            "ok": self.ok,
            "compared": self.compared,
        }


@dataclass(frozen=True)
class RuleResult:
    rule: str
    level: Level
    value: float | None
    detail: str
    # Metric rules: where the value came from, what the served version registered, the
    # bounds checked and the labelled rows a live value was measured on.
    source: Source | None = None
    registered: float | None = None
    rows: int | None = None
    bounds: tuple[Bound, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "level": self.level,
            "value": self.value,
            "detail": self.detail,
            "source": self.source,
            "registered": self.registered,
            "rows": self.rows,
            "bounds": [b.to_dict() for b in self.bounds],
        }


@dataclass(frozen=True)
class Evaluation:
    results: tuple[RuleResult, ...]
    drift: tuple[ColumnDrift, ...] = ()
    bias: tuple[BiasReport, ...] = ()

    @property
    def breached(self) -> bool:
        return any(r.level == "breach" for r in self.results)


@dataclass(frozen=True)
class Roles:
    label: str | None = None
    prediction: str | None = None
    sensitive: tuple[str, ...] = ()
    positive: Any = 1
    score: str | None = None

    @property
    def outcome(self) -> Columns:
        """The columns live metrics read."""
        return Columns(self.label, self.prediction, self.score, self.positive)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> Roles:
        columns = raw.get("columns") or {}
        if not isinstance(columns, Mapping):
            raise OperationalError("mvctl.yaml: columns must be a mapping")
        sensitive = columns.get("sensitive") or []
        if isinstance(sensitive, str):
            sensitive = [sensitive]
        return cls(
            label=columns.get("label"),
            prediction=columns.get("prediction"),
            sensitive=tuple(str(s) for s in sensitive),
            positive=columns.get("positive", 1),
            score=columns.get("score"),
        )


@dataclass(frozen=True)
class Registered:
    """The metrics the served version registered (its manifest's ``metrics:``)."""

    version: str
    metrics: Mapping[str, Any]

    def value(self, name: str) -> float | None:
        value = flatten(self.metrics).get(name)
        return None if not _is_number(value) else float(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Evidence:
    """What one evaluation's rules look at; ``drifts`` and ``bias`` are computed once."""

    has_data: bool
    has_reference: bool
    metrics: Mapping[str, Any] | None
    drifts: tuple[ColumnDrift, ...] = ()
    bias: tuple[BiasReport, ...] = ()
    # Live metrics measured on the data's labelled rows, and why the others were not.
    live: Mapping[str, LiveValue] = field(default_factory=dict)
    not_live: Mapping[str, str] = field(default_factory=dict)
    registered: Registered | None = None


RuleT = TypeVar("RuleT", contravariant=True)


class RuleKind(Protocol[RuleT]):
    """One kind of rule, judging the rules of one class (its ``kind`` names it)."""

    def check(self, rule: RuleT, evidence: Evidence) -> RuleResult: ...


def _level(breach: bool, warn: bool = False) -> Level:
    return "breach" if breach else ("warn" if warn else "ok")


def _or(value: float | None, default: float) -> float:
    """A bound the rule gives, else the kind's default."""
    return float(default if value is None else value)


def _psi(rule: DriftRule, drifts: Sequence[ColumnDrift]) -> RuleResult:
    limit = _or(rule.max, PSI_BREACH)
    warn = _or(rule.warn, PSI_WARN)
    if not drifts:
        return RuleResult(f"psi <= {limit}", "skipped", None, "no profiled column in the data")
    worst = max(drifts, key=lambda d: d.psi)
    return RuleResult(
        f"psi <= {limit}",
        _level(worst.psi > limit, worst.psi > warn),
        worst.psi,
        f"worst column {worst.column}: PSI {worst.psi:.4f}",
    )


def _test(rule: DriftRule, drifts: Sequence[ColumnDrift]) -> RuleResult:
    """A KS or chi-squared test per column, the worst corrected p-value against alpha."""
    kind = rule.drift
    alpha = _or(rule.alpha, ALPHA)
    method = rule.correction
    tested = [d for d in drifts if d.test == kind]
    label = f"{kind} p >= {alpha}" + (f" ({method})" if method != "none" else "")
    if not tested:
        return RuleResult(label, "skipped", None, f"no column for a {kind} test")
    adjusted = corrected([d.p_value for d in tested], method)
    p, worst = min(zip(adjusted, tested, strict=True), key=lambda pair: pair[0])
    detail = f"worst column {worst.column}: statistic {worst.statistic:.4g}, p {p:.3g}"
    return RuleResult(label, _level(p < alpha), p, detail)


def _dataset(rule: DriftRule, drifts: Sequence[ColumnDrift]) -> RuleResult:
    share_limit = _or(rule.max_share, 0.5)
    label = f"drifted columns <= {share_limit:.0%}"
    if not drifts:
        return RuleResult(label, "skipped", None, "no profiled column in the data")
    share, names = drifted_share(
        drifts, _or(rule.psi, PSI_BREACH), _or(rule.alpha, ALPHA), rule.correction
    )
    detail = f"{len(names)} of {len(drifts)} drifted" + (f": {', '.join(names)}" if names else "")
    return RuleResult(label, _level(share > share_limit), share, detail)


DriftTest = Callable[[DriftRule, Sequence[ColumnDrift]], RuleResult]
DRIFT_TESTS: dict[str, DriftTest] = {"psi": _psi, "ks": _test, "chi2": _test, "dataset": _dataset}


class Drift:
    """``{drift: psi|ks|chi2|dataset, ...}``: live data against the reference profile."""

    def check(self, rule: DriftRule, evidence: Evidence) -> RuleResult:
        label = f"drift: {rule.drift}"
        if not evidence.has_data:
            return RuleResult(label, "skipped", None, "no --live data")
        if not evidence.has_reference:
            return RuleResult(label, "skipped", None, "the version has no reference profile")
        wanted = rule.columns
        drifts = [d for d in evidence.drifts if not wanted or d.column in wanted]
        return DRIFT_TESTS[rule.drift](rule, drifts)


class Bias:
    """``{bias: METRIC, min|max: BOUND}``: the worst sensitive column's fairness metric."""

    def check(self, rule: BiasRule, evidence: Evidence) -> RuleResult:
        name = rule.bias
        at_least = rule.min is not None
        given = rule.min if at_least else rule.max
        bound = _or(given, 0.8 if name.endswith("ratio") else 0.1)
        label = f"{name} {'>=' if at_least else '<='} {bound}"
        values = [(v, r) for r in evidence.bias if (v := r.metric(name)) is not None]
        if not values:
            detail = "needs predictions, a sensitive column (and labels)"
            return RuleResult(label, "skipped", None, detail)
        pick = min if at_least else max
        value, report = pick(values, key=lambda pair: pair[0])
        breach = value < bound if at_least else value > bound
        return RuleResult(label, _level(breach), value, f"by {report.sensitive}: {value:.4f}")


def _fraction(given: float) -> str:
    return f"{given * 100:g}%"


def _metric_label(name: str, checks: Sequence[tuple[str, float]]) -> str:
    words = {
        "min": lambda v: f"{name} >= {v}",
        "max": lambda v: f"{name} <= {v}",
        "max_increase": lambda v: f"{name} <= registered +{_fraction(v)}",
        "max_decrease": lambda v: f"{name} >= registered -{_fraction(v)}",
    }
    return " and ".join(words[k](v) for k, v in checks) or name


def _beyond(value: float, limit: float, above: bool) -> bool:
    """``value`` past ``limit`` (above it, or below): by more than rounding, so a live rate
    exactly at registered * 1.15 keeps to it whatever the floats make of the product."""
    excess = value - limit if above else limit - value
    return excess > 1e-12 * max(1.0, abs(limit))


def _above(key: str) -> bool:
    return key in ("max", "max_increase")


def _compared(key: str, value: float, live: LiveValue | None) -> float:
    """What ``value`` is held to a ``key`` bound by: a live rate's one-sided confidence
    bound on the side that must be past the limit for a breach, else the value."""
    bound = live.bound(_Z, upper=not _above(key)) if live is not None else None
    return value if bound is None else bound


def _bound(
    key: str, given: float, value: float, registered: float | None, live: LiveValue | None
) -> Bound:
    if key in ("min", "max"):
        limit = float(given)
    elif registered is None or registered == 0:
        return Bound(key, given, None, None)
    else:
        sign = 1 if key == "max_increase" else -1
        limit = registered + sign * abs(registered) * given
    compared = _compared(key, value, live)
    return Bound(key, given, limit, not _beyond(compared, limit, _above(key)), compared)


def _sides(bounds: Sequence[Bound]) -> list[Bound]:
    """The checked bounds, one per side (lower bound for maxima, upper for minima)."""
    sides: dict[bool, Bound] = {}
    for b in bounds:
        if b.compared is not None:
            sides.setdefault(_above(b.key), b)
    return list(sides.values())


def _shown(bound: Bound) -> str:
    limit = "?" if bound.limit is None else f"{bound.limit:.6g}"
    return f"{bound.key} {limit}" if bound.key in ("min", "max") else f"limit {limit}"


def _rows(count: int) -> str:
    return f"{count} labelled row{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class _Found:
    """A metric rule's value and where it came from in words; ``skip``: why it cannot be
    judged (value None then, but the source and rows still reported)."""

    value: float | None
    where: str
    source: Source | None = None
    rows: int | None = None
    skip: str | None = None
    live: LiveValue | None = None


class Metric:
    """``{metric: NAME, min|max|max_increase|max_decrease: BOUND, min_rows: N}``: a live
    metric, from the data's labelled rows or else from a metrics file."""

    def check(self, rule: MetricRule, evidence: Evidence) -> RuleResult:
        name = rule.metric
        checks = rule.monitor_bounds()
        label = _metric_label(name, checks)
        if not checks:
            return RuleResult(label, "breach", None, "rule has no min or max (failing closed)")
        known = evidence.registered
        registered = known.value(name) if known else None
        found = self._value(rule, evidence)
        if found.value is None:
            bounds = tuple(Bound(k, given, None, None) for k, given in checks)
            skip = found.skip or "no value"
            return RuleResult(
                label, "skipped", None, skip, found.source, registered, found.rows, bounds
            )
        value = found.value
        live = found.live
        bounds = tuple(_bound(k, given, value, registered, live) for k, given in checks)
        detail = f"{name} = {value:.6g} {found.where}"
        if live is not None and live.hits is not None:
            for b in _sides(bounds):
                side = "lower" if _above(b.key) else "upper"
                detail += f"; {CONFIDENCE:.0%} {side} bound {b.compared:.4g}"
        if registered is not None and known is not None:
            detail += f"; {known.version} registered {registered:.6g}"
        detail += "".join(f"; {_shown(b)}" for b in bounds if b.key not in ("min", "max"))
        unchecked = [b.key for b in bounds if b.ok is None]
        version = known.version if known else "the version"
        if any(b.ok is False for b in bounds):
            level: Level = "breach"
        elif unchecked and registered == 0:
            level = "skipped"
            detail += (
                f"; {version} registered {name} 0, so {' and '.join(unchecked)} (a fraction"
                " of it) has nothing to compare with: bound it with max or min"
            )
        elif unchecked:
            level = "skipped"
            detail += (
                f"; {version} registered no {name}, so {' and '.join(unchecked)}"
                " has nothing to compare with"
            )
        else:
            level = "ok"
        return RuleResult(label, level, value, detail, found.source, registered, found.rows, bounds)

    def _value(self, rule: MetricRule, evidence: Evidence) -> _Found:
        name = rule.metric
        live = evidence.live.get(name)
        if live is not None:
            left_out = f", {live.left_out}" if live.left_out else ""
            where = f"on {_rows(live.rows)}{left_out}"
            minimum = MIN_ROWS if rule.min_rows is None else rule.min_rows
            skip = None
            if live.rows < minimum:
                skip = f"{_rows(live.rows)}{left_out}: fewer than min_rows {minimum}"
            elif live.value is None:
                skip = f"{live.reason} ({where})"
            value = None if skip else live.value
            return _Found(value, f"({where})", "predictions", live.rows, skip, live)
        why_not_live = evidence.not_live.get(name)
        prefix = f"no live {name} ({why_not_live}) and " if why_not_live else ""
        if evidence.metrics is None:
            return _Found(None, "", skip=f"{prefix}no --metrics file")
        value = flatten(evidence.metrics).get(name)
        if not _is_number(value):
            return _Found(None, "", skip=f"{prefix}{name} is not in the metrics file")
        return _Found(float(value), "(metrics file)", "metrics_file")


KINDS: dict[str, RuleKind[Any]] = {"drift": Drift(), "bias": Bias(), "metric": Metric()}
"""Monitor rule kinds by the ``kind`` of the rules they judge (schema:
formats.schema.MONITOR_RULES)."""


def bias_reports(frame: pd.DataFrame, roles: Roles) -> list[BiasReport]:
    if roles.prediction is None or roles.prediction not in frame.columns:
        return []
    labels = None
    if roles.label is not None and roles.label in frame.columns:
        labels = frame[roles.label].to_numpy()
    return [
        assess(
            column,
            frame[column].to_numpy(),
            frame[roles.prediction].to_numpy(),
            labels,
            roles.positive,
        )
        for column in roles.sensitive
        if column in frame.columns
    ]


def live_metrics(
    rules: Sequence[Rule], outcomes: pd.DataFrame | None, roles: Roles
) -> tuple[dict[str, LiveValue], dict[str, str]]:
    """The live metrics ``rules`` name, measured on the labelled rows of ``outcomes`` (each
    once), and why the others cannot be."""
    names = dict.fromkeys(
        r.metric for r in rules if isinstance(r, MetricRule) and r.metric in LIVE_METRICS
    )
    if outcomes is None:
        return {}, dict.fromkeys(names, "no --predictions")
    return measure_all(names, outcomes, roles.outcome)


def evaluate(
    rules: Sequence[Rule],
    reference: Mapping[str, Any] | None,
    frame: pd.DataFrame | None,
    metrics: Mapping[str, Any] | None,
    roles: Roles,
    registered: Registered | None = None,
    outcomes: pd.DataFrame | None = None,
) -> Evaluation:
    """Check ``rules`` against live ``frame`` (vs the ``reference`` profile) and ``metrics``.
    Metric rules are measured on ``outcomes`` (the predictions with their labels, usually
    ``frame`` itself) when it has the columns, and their relative bounds compare with what
    the served version ``registered``."""
    drifts: list[ColumnDrift] = []
    if frame is not None and reference is not None:
        drifts = column_drift(dict(reference), frame)
    reports = bias_reports(frame, roles) if frame is not None else []
    live, not_live = live_metrics(rules, outcomes, roles)
    evidence = Evidence(
        frame is not None,
        reference is not None,
        metrics,
        tuple(drifts),
        tuple(reports),
        live,
        not_live,
        registered,
    )
    results = []
    for rule in rules:
        kind = KINDS.get(rule.kind)
        if kind is None:  # a gate's kind (env, package) has no meaning on live data
            results.append(
                RuleResult(str(rule), "breach", None, "unknown monitor (failing closed)")
            )
        else:
            results.append(kind.check(rule, evidence))
    return Evaluation(tuple(results), tuple(drifts), tuple(reports))
