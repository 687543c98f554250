"""Monitors: drift, bias and live-metric rules checked against the version a channel serves.

    models:
      fraud:
        columns: {label: is_fraud, prediction: pred, sensitive: [region], positive: 1}
        monitors:
          production:
            - {drift: psi, max: 0.25, warn: 0.1}          # worst column's PSI
            - {drift: ks, alpha: 0.05, correction: bonferroni}
            - {drift: chi2, alpha: 0.05, correction: fdr}
            - {drift: dataset, max_share: 0.3}            # share of drifted columns
            - {bias: demographic_parity_difference, max: 0.10}
            - {bias: demographic_parity_ratio, min: 0.8}
            - {bias: equalized_odds_difference, max: 0.10}
            - {metric: false_positive_rate, max: 0.05}    # from --metrics FILE

A monitor breaches only on evidence: a rule whose input was not supplied (no --live for
drift, no labels for equalized odds, no --metrics) is reported as skipped, so a partial
feed never rolls a channel back by itself. The same drift and bias rules serve as promotion
gates on validation data (``--eval-data``), where a missing input fails closed instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from mvctl.analysis import profile
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
from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.formats import config, tags
from mvctl.formats.values import flatten

if TYPE_CHECKING:
    import pandas as pd

    from mvctl.channels.promotion import ChannelMove

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
class MonitorReport:
    model: str
    channel: str
    version: str
    evaluation: Evaluation
    rollback: ChannelMove | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # A rollback asked for but refused or failed: the report still stands, then the error.
    rollback_error: MvctlError | None = field(default=None, compare=False)

    @property
    def breached(self) -> bool:
        return self.evaluation.breached

    def summary(self) -> str:
        bad = [r for r in self.evaluation.results if r.level == "breach"]
        return "; ".join(f"{r.rule}: {r.detail}" for r in bad) or "no breach"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "breached": self.breached,
            "results": [r.to_dict() for r in self.evaluation.results],
            "drift": [d.to_dict() for d in self.evaluation.drift],
            "bias": [b.to_dict() for b in self.evaluation.bias],
            "rollback": self.rollback.to_dict() if self.rollback else None,
            "rollback_error": (
                {
                    "error": self.rollback_error.message,
                    "hint": self.rollback_error.hint,
                    "exit": self.rollback_error.exit_code,
                }
                if self.rollback_error
                else None
            ),
            "notes": list(self.notes),
        }


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


def _level(breach: bool, warn: bool = False) -> Level:
    return "breach" if breach else ("warn" if warn else "ok")


def _drift_rule(rule: Mapping[str, Any], drifts: Sequence[ColumnDrift]) -> RuleResult:
    kind = str(rule["drift"])
    wanted = rule.get("columns")
    if wanted:
        drifts = [d for d in drifts if d.column in wanted]
    if kind == "psi":
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
    if kind in ("ks", "chi2"):
        alpha = float(rule.get("alpha", ALPHA))
        method = cast(Correction, str(rule.get("correction", "none")))
        if method not in ("none", "bonferroni", "fdr"):
            return RuleResult(f"{kind} test", "breach", None, f"unknown correction {method!r}")
        tested = [d for d in drifts if d.test == kind]
        label = f"{kind} p >= {alpha}" + (f" ({method})" if method != "none" else "")
        if not tested:
            return RuleResult(label, "skipped", None, f"no column for a {kind} test")
        adjusted = corrected([d.p_value for d in tested], method)
        p, worst = min(zip(adjusted, tested, strict=True), key=lambda pair: pair[0])
        detail = f"worst column {worst.column}: statistic {worst.statistic:.4g}, p {p:.3g}"
        return RuleResult(label, _level(p < alpha), p, detail)
    if kind == "dataset":
        share_limit = float(rule.get("max_share", 0.5))
        method = cast(Correction, str(rule.get("correction", "none")))
        label = f"drifted columns <= {share_limit:.0%}"
        if not drifts:
            return RuleResult(label, "skipped", None, "no profiled column in the data")
        share, names = drifted_share(
            drifts, float(rule.get("psi", PSI_BREACH)), float(rule.get("alpha", ALPHA)), method
        )
        detail = f"{len(names)} of {len(drifts)} drifted" + (
            f": {', '.join(names)}" if names else ""
        )
        return RuleResult(label, _level(share > share_limit), share, detail)
    return RuleResult(f"drift: {kind}", "breach", None, "unknown drift rule (failing closed)")


def _bias_rule(rule: Mapping[str, Any], reports: Sequence[BiasReport]) -> RuleResult:
    name = str(rule["bias"])
    bound_key = "min" if "min" in rule else "max"
    bound = float(rule.get(bound_key, 0.8 if name.endswith("ratio") else 0.1))
    label = f"{name} {'>=' if bound_key == 'min' else '<='} {bound}"
    if name not in (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
    ):
        return RuleResult(label, "breach", None, "unknown bias metric (failing closed)")
    values = [(r.metric(name), r) for r in reports]
    values = [(v, r) for v, r in values if v is not None]
    if not values:
        return RuleResult(
            label, "skipped", None, "needs predictions, a sensitive column (and labels)"
        )
    pick = min if bound_key == "min" else max
    value, report = pick(values, key=lambda pair: pair[0])  # type: ignore[arg-type,return-value]
    assert value is not None  # noqa: S101 - filtered above
    breach = value < bound if bound_key == "min" else value > bound
    return RuleResult(label, _level(breach), value, f"by {report.sensitive}: {value:.4f}")


def _metric_rule(rule: Mapping[str, Any], metrics: Mapping[str, Any] | None) -> RuleResult:
    name = str(rule["metric"])
    checks = [(k, rule[k]) for k in ("min", "max") if k in rule]
    label = " and ".join(f"{name} {'>=' if k == 'min' else '<='} {v}" for k, v in checks) or name
    if not checks:
        return RuleResult(label, "breach", None, "rule has no min or max (failing closed)")
    if metrics is None:
        return RuleResult(label, "skipped", None, "no --metrics file")
    value = flatten(metrics).get(name)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return RuleResult(label, "skipped", None, f"{name} is not in the metrics file")
    breach = any((k == "min" and value < v) or (k == "max" and value > v) for k, v in checks)
    return RuleResult(label, _level(breach), float(value), f"{name} = {value:.6g}")


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
    results = []
    for rule in rules:
        if isinstance(rule, Mapping) and "drift" in rule:
            if frame is None:
                results.append(
                    RuleResult(f"drift: {rule['drift']}", "skipped", None, "no --live data")
                )
            elif reference is None:
                results.append(
                    RuleResult(
                        f"drift: {rule['drift']}",
                        "skipped",
                        None,
                        "the version has no reference profile",
                    )
                )
            else:
                results.append(_drift_rule(rule, drifts))
        elif isinstance(rule, Mapping) and "bias" in rule:
            results.append(_bias_rule(rule, reports))
        elif isinstance(rule, Mapping) and "metric" in rule:
            results.append(_metric_rule(rule, metrics))
        else:
            results.append(
                RuleResult(str(rule), "breach", None, "unknown monitor (failing closed)")
            )
    return Evaluation(tuple(results), tuple(drifts), tuple(reports))


def load_live(live: Path | None, predictions: Path | None) -> pd.DataFrame | None:
    """The live batch, with a separate predictions file's columns joined by row."""
    if live is None and predictions is None:
        return None
    frames = [profile.read_table(p) for p in (live, predictions) if p is not None]
    if len(frames) == 1:
        return frames[0]
    base, extra = frames
    if len(base) != len(extra):
        raise OperationalError(
            f"--live has {len(base)} rows but --predictions has {len(extra)}",
            hint="the predictions file must have one row per live row, in the same order",
        )
    import pandas as pd

    # Columns of the predictions file win over same-named ones in the live batch.
    base = base.drop(columns=[c for c in extra.columns if c in base.columns])
    return pd.concat([base.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)


def read_profile(git: Any, model: str, commit: str) -> dict[str, Any] | None:
    text = git.read_blob(commit, profile.profile_path(model))
    return profile.loads(text, f"profile of {model}") if text else None


def monitor(
    root: Path,
    model: str,
    channel: str = "production",
    *,
    live: Path | None = None,
    predictions: Path | None = None,
    metrics_file: Path | None = None,
    rollback: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> MonitorReport:
    """Evaluate ``channel``'s monitors against the version it serves; on a breach with
    ``rollback``, roll the channel back with the breach summary as the reason."""
    from mvctl._adapters.git import GitRepo
    from mvctl.channels import state as channels
    from mvctl.formats.names import check_channel, check_model
    from mvctl.formats.values import read_metrics

    check_model(model)
    check_channel(channel)
    if live is None and predictions is None and metrics_file is None:
        raise UsageError("monitor needs --live, --predictions or --metrics")
    git = GitRepo.open(root)
    registry_cfg = config.load(git.root)
    cfg = registry_cfg.model(model)
    state = channels.load(git, model)
    version = state.holder(channel)
    if version is None:
        raise OperationalError(f"{model}@{channel} holds no version to monitor")
    # A monitors table under a misspelled model must not leave the channel unwatched.
    rules = registry_cfg.rules_for(
        model, "monitors", channel, lambda m: bool(git.tags(tags.version_glob(m)))
    )
    notes = [] if rules else [f"no monitors configured for {channel} in mvctl.yaml"]
    reference = read_profile(git, model, state.tags.versions[version].commit)
    frame = load_live(live, predictions)
    metrics = read_metrics(metrics_file) if metrics_file else None
    evaluation = evaluate(rules, reference, frame, metrics, Roles.from_config(cfg.raw))
    report = MonitorReport(model, channel, version, evaluation, notes=tuple(notes))
    if report.breached and rollback:
        from mvctl.channels.promotion import rollback as roll_back

        try:
            move = roll_back(
                git.root,
                model,
                channel,
                reason=f"monitor: {report.summary()}",
                push=push,
                remote=remote,
                dry_run=dry_run,
            )
        except MvctlError as exc:
            return replace(report, rollback_error=exc)
        report = replace(report, rollback=move)
    return report
