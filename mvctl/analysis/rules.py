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

Each rule kind is a small class in :data:`KINDS`, keyed by the same names as the monitors'
schema in mvctl.formats.schema; adding a kind is one class and one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from mvctl.analysis.bias import BiasReport, assess
from mvctl.analysis.drift import (
    ALPHA,
    PSI_BREACH,
    PSI_WARN,
    ColumnDrift,
    Correction,
    column_drift,
    corrected,
    drifted_share,
)
from mvctl.errors import OperationalError
from mvctl.formats.schema import BIAS_METRICS, CORRECTIONS, kinds_of
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


class RuleKind(Protocol):
    """One kind of rule (the key that names it in a rule mapping)."""

    def check(self, rule: Mapping[str, Any], evidence: Evidence) -> RuleResult: ...


def _level(breach: bool, warn: bool = False) -> Level:
    return "breach" if breach else ("warn" if warn else "ok")


def _correction(rule: Mapping[str, Any]) -> Correction:
    return cast(Correction, str(rule.get("correction", "none")))


def _psi(rule: Mapping[str, Any], drifts: Sequence[ColumnDrift]) -> RuleResult:
    limit = float(rule.get("max", PSI_BREACH))
    warn = float(rule.get("warn", PSI_WARN))
    if not drifts:
        return RuleResult(f"psi <= {limit}", "skipped", None, "no profiled column in the data")
    worst = max(drifts, key=lambda d: d.psi)
    return RuleResult(
        f"psi <= {limit}",
        _level(worst.psi > limit, worst.psi > warn),
        worst.psi,
        f"worst column {worst.column}: PSI {worst.psi:.4f}",
    )


def _test(rule: Mapping[str, Any], drifts: Sequence[ColumnDrift]) -> RuleResult:
    """A KS or chi-squared test per column, the worst corrected p-value against alpha."""
    kind = str(rule["drift"])
    alpha = float(rule.get("alpha", ALPHA))
    method = _correction(rule)
    if method not in CORRECTIONS:
        return RuleResult(f"{kind} test", "breach", None, f"unknown correction {method!r}")
    tested = [d for d in drifts if d.test == kind]
    label = f"{kind} p >= {alpha}" + (f" ({method})" if method != "none" else "")
    if not tested:
        return RuleResult(label, "skipped", None, f"no column for a {kind} test")
    adjusted = corrected([d.p_value for d in tested], method)
    p, worst = min(zip(adjusted, tested, strict=True), key=lambda pair: pair[0])
    detail = f"worst column {worst.column}: statistic {worst.statistic:.4g}, p {p:.3g}"
    return RuleResult(label, _level(p < alpha), p, detail)


def _dataset(rule: Mapping[str, Any], drifts: Sequence[ColumnDrift]) -> RuleResult:
    share_limit = float(rule.get("max_share", 0.5))
    label = f"drifted columns <= {share_limit:.0%}"
    if not drifts:
        return RuleResult(label, "skipped", None, "no profiled column in the data")
    share, names = drifted_share(
        drifts,
        float(rule.get("psi", PSI_BREACH)),
        float(rule.get("alpha", ALPHA)),
        _correction(rule),
    )
    detail = f"{len(names)} of {len(drifts)} drifted" + (f": {', '.join(names)}" if names else "")
    return RuleResult(label, _level(share > share_limit), share, detail)


DriftTest = Callable[[Mapping[str, Any], Sequence[ColumnDrift]], RuleResult]
DRIFT_TESTS: dict[str, DriftTest] = {"psi": _psi, "ks": _test, "chi2": _test, "dataset": _dataset}


class Drift:
    """``{drift: psi|ks|chi2|dataset, ...}``: live data against the reference profile."""

    def check(self, rule: Mapping[str, Any], evidence: Evidence) -> RuleResult:
        kind = str(rule["drift"])
        if not evidence.has_data:
            return RuleResult(f"drift: {kind}", "skipped", None, "no --live data")
        if not evidence.has_reference:
            detail = "the version has no reference profile"
            return RuleResult(f"drift: {kind}", "skipped", None, detail)
        test = DRIFT_TESTS.get(kind)
        if test is None:
            detail = "unknown drift rule (failing closed)"
            return RuleResult(f"drift: {kind}", "breach", None, detail)
        wanted = rule.get("columns")
        drifts = [d for d in evidence.drifts if not wanted or d.column in wanted]
        return test(rule, drifts)


class Bias:
    """``{bias: METRIC, min|max: BOUND}``: the worst sensitive column's fairness metric."""

    def check(self, rule: Mapping[str, Any], evidence: Evidence) -> RuleResult:
        name = str(rule["bias"])
        bound_key = "min" if "min" in rule else "max"
        bound = float(rule.get(bound_key, 0.8 if name.endswith("ratio") else 0.1))
        label = f"{name} {'>=' if bound_key == 'min' else '<='} {bound}"
        if name not in BIAS_METRICS:
            return RuleResult(label, "breach", None, "unknown bias metric (failing closed)")
        values = [(v, r) for r in evidence.bias if (v := r.metric(name)) is not None]
        if not values:
            detail = "needs predictions, a sensitive column (and labels)"
            return RuleResult(label, "skipped", None, detail)
        pick = min if bound_key == "min" else max
        value, report = pick(values, key=lambda pair: pair[0])
        breach = value < bound if bound_key == "min" else value > bound
        return RuleResult(label, _level(breach), value, f"by {report.sensitive}: {value:.4f}")


class Metric:
    """``{metric: NAME, min|max: BOUND}``: a live metric from a metrics file."""

    def check(self, rule: Mapping[str, Any], evidence: Evidence) -> RuleResult:
        name = str(rule["metric"])
        checks = [(k, rule[k]) for k in ("min", "max") if k in rule]
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


KINDS: dict[str, RuleKind] = {"drift": Drift(), "bias": Bias(), "metric": Metric()}
"""Monitor rule kinds by the key that names them (schema: formats.schema.MONITOR_RULES)."""


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
    rules: Sequence[Any],
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
        kinds = kinds_of(rule, KINDS) if isinstance(rule, Mapping) else []
        if kinds:
            results.append(KINDS[kinds[0]].check(rule, evidence))
        else:
            results.append(
                RuleResult(str(rule), "breach", None, "unknown monitor (failing closed)")
            )
    return Evaluation(tuple(results), tuple(drifts), tuple(reports))
