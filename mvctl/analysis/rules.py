"""Drift, bias and live-metric rules, evaluated on data: pure, no git, no config files.

    - {drift: psi, max: 0.25, warn: 0.1}          # worst column's PSI
    - {drift: ks, alpha: 0.05, correction: bonferroni}
    - {drift: chi2, alpha: 0.05, correction: fdr}
    - {drift: dataset, max_share: 0.3}            # share of drifted columns
    - {bias: demographic_parity_difference, max: 0.10}
    - {bias: demographic_parity_ratio, min: 0.8}
    - {bias: equalized_odds_difference, max: 0.10}
    - {metric: false_positive_rate, max: 0.05}    # from --metrics FILE

A rule breaches only on evidence: a rule whose input was not supplied (no live data for
drift, no labels for equalized odds, no metrics) is reported as skipped. Monitors use these
rules on live data (mvctl.monitoring), promotion gates on validation data (mvctl.channels.gates),
where a missing input fails closed instead.

Rules arrive typed (mvctl.formats.rules); each kind is a small class in :data:`KINDS`, keyed by
the rules' ``kind`` names; adding a kind is one rule class, one kind class and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from mvctl.analysis.bias import BiasReport, assess
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


@dataclass(frozen=True)
class RuleResult:
    rule: str
    level: Level
    value: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "level": self.level, "value": self.value, "detail": self.detail}


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
        )


@dataclass(frozen=True)
class Evidence:
    """What one evaluation's rules look at; ``drifts`` and ``bias`` are computed once."""

    has_data: bool
    has_reference: bool
    metrics: Mapping[str, Any] | None
    drifts: tuple[ColumnDrift, ...] = ()
    bias: tuple[BiasReport, ...] = ()


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


class Metric:
    """``{metric: NAME, min|max: BOUND}``: a live metric from a metrics file."""

    def check(self, rule: MetricRule, evidence: Evidence) -> RuleResult:
        name = rule.metric
        checks = [(k, v) for k, v in rule.bounds() if k in ("min", "max")]
        label = " and ".join(f"{name} {'>=' if k == 'min' else '<='} {v}" for k, v in checks)
        label = label or name
        if not checks:
            return RuleResult(label, "breach", None, "rule has no min or max (failing closed)")
        if evidence.metrics is None:
            return RuleResult(label, "skipped", None, "no --metrics file")
        value = flatten(evidence.metrics).get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return RuleResult(label, "skipped", None, f"{name} is not in the metrics file")
        breach = any((k == "min" and value < v) or (k == "max" and value > v) for k, v in checks)
        return RuleResult(label, _level(breach), float(value), f"{name} = {value:.6g}")


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


def evaluate(
    rules: Sequence[Rule],
    reference: Mapping[str, Any] | None,
    frame: pd.DataFrame | None,
    metrics: Mapping[str, Any] | None,
    roles: Roles,
) -> Evaluation:
    """Check ``rules`` against live ``frame`` (vs the ``reference`` profile) and ``metrics``."""
    drifts: list[ColumnDrift] = []
    if frame is not None and reference is not None:
        drifts = column_drift(dict(reference), frame)
    reports = bias_reports(frame, roles) if frame is not None else []
    evidence = Evidence(
        frame is not None, reference is not None, metrics, tuple(drifts), tuple(reports)
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
