"""``mvctl canary analyze``: a canary (or a shadow) against production over the same window,
as one frozen report: per metric both arms' values, the always-valid test and its verdict;
overall promote / next step / continue / roll back (mvctl.canary.steps) with the evidence.

The arms: production's decisions of the version production holds now, and the candidate
channel's decisions of the version it holds now, both from the candidate's arrival on (its
promotion event; weight changes keep the tenure). The current step's requests are the
candidate's since its newest event (a weight change starts a step).

Which metrics decide is ``canary.metrics`` in mvctl.yaml: each configured metric with a test
is *guarded* (a significantly worse value rolls back), the primary one is also tested for
being better (what a promotion needs), and a ``min``/``max`` makes a threshold checked on
consecutive windows of ``min_samples`` candidate requests (``max_failed`` failed windows roll
back, as Flagger's failed checks do). The tests share alpha by Bonferroni. Other metrics the
evidence allows (error rate, latency percentiles, PSI, classification or regression metrics
from outcomes, agreement for a shadow) are reported without a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo
from mvctl.canary import evidence as reading
from mvctl.canary.evidence import Arm, Evidence, Skipped
from mvctl.canary.metrics import METRICS, Metric, Pair, is_regression, rows_of
from mvctl.canary.sequential import SequentialTest, bonferroni, compare_streams
from mvctl.canary.steps import Verdict, decide
from mvctl.channels import state as channels
from mvctl.errors import PolicyError, UsageError, holds_no_version, unknown_model
from mvctl.formats import config
from mvctl.formats.names import check_channel, check_model
from mvctl.formats.rules import CanaryConfig, CanaryMetric

MetricVerdict = Literal[
    "worse", "better", "failed", "too few samples", "no difference yet", "reported"
]
CANDIDATES = ("canary", "shadow")
ALWAYS = ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "psi")
LABELLED = ("false_positive_rate", "precision", "recall", "roc_auc")
REGRESSION = ("mae", "rmse")


@dataclass(frozen=True)
class MetricResult:
    metric: str
    guarded: bool  # configured in canary.metrics: it can decide
    primary: bool
    baseline: float | None
    candidate: float | None
    n_baseline: int
    n_candidate: int
    worse: SequentialTest | None  # "the candidate is worse"
    better: SequentialTest | None  # "the candidate is better" (the primary metric only)
    p_worse: float | None  # Bonferroni-corrected always-valid p-values
    p_better: float | None
    bound: dict[str, float]  # min / max of a threshold metric
    failed_checks: int
    windows: int  # threshold windows evaluated
    verdict: MetricVerdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "guarded": self.guarded,
            "primary": self.primary,
            "baseline": _num(self.baseline),
            "candidate": _num(self.candidate),
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "worse": self.worse.to_dict() if self.worse else None,
            "better": self.better.to_dict() if self.better else None,
            "p_worse": self.p_worse,
            "p_better": self.p_better,
            "bound": self.bound,
            "failed_checks": self.failed_checks,
            "windows": self.windows,
            "verdict": self.verdict,
        }

    def summary(self) -> dict[str, Any]:
        """The few fields an event body keeps."""
        out: dict[str, Any] = {
            "metric": self.metric,
            "baseline": _round(self.baseline),
            "candidate": _round(self.candidate),
            "verdict": self.verdict,
        }
        if self.p_worse is not None:
            out["p_worse"] = _round(self.p_worse)
        if self.p_better is not None:
            out["p_better"] = _round(self.p_better)
        if self.bound:
            out["failed_checks"] = self.failed_checks
        return out


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _round(value: float | None) -> float | None:
    return None if _num(value) is None else float(f"{value:.4g}")


@dataclass(frozen=True)
class CanaryReport:
    model: str
    channel: str  # the candidate's channel: canary or shadow
    baseline: dict[str, Any]  # the arms' summaries: channel, version, requests, errors...
    candidate: dict[str, Any]
    weight: float | None
    steps: tuple[float, ...]
    alpha: float
    min_samples: int
    max_failed: int
    tests: int  # one-sided tests alpha is shared by
    step_requests: int
    metrics: tuple[MetricResult, ...]
    verdict: Verdict
    skipped: Skipped
    files: tuple[str, ...]
    # The newest event of production and of the candidate's channel when analysed (set by
    # report_for): what --apply re-checks on the fetched state before acting.
    events: dict[str, str | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel": self.channel,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "weight": self.weight,
            "steps": list(self.steps),
            "alpha": self.alpha,
            "min_samples": self.min_samples,
            "max_failed": self.max_failed,
            "tests": self.tests,
            "step_requests": self.step_requests,
            "metrics": [m.to_dict() for m in self.metrics],
            "skipped": self.skipped.to_dict(),
            "files": list(self.files),
            **self.verdict.to_dict(),
        }

    def evidence(self) -> dict[str, Any]:
        """The summary an event body records (``evidence``): what was compared, on how much
        data, each deciding metric, and why."""
        return {
            "verdict": self.verdict.kind,
            "baseline": {k: self.baseline[k] for k in ("version", "requests")},
            "candidate": {k: self.candidate[k] for k in ("version", "requests")},
            "weight": self.weight,
            "alpha": self.alpha,
            "tests": self.tests,
            "metrics": [m.summary() for m in self.metrics if m.guarded],
            "reasons": list(self.verdict.reasons),
        }

    def reason(self) -> str:
        """One line for the event's reason (what `history` shows)."""
        words = {"next_step": "next step", "rollback": "roll back"}
        shown = words.get(self.verdict.kind, self.verdict.kind)
        facts = []
        for m in self.metrics:
            if m.guarded and m.verdict in ("worse", "better", "failed"):
                p = m.p_worse if m.verdict == "worse" else m.p_better
                pv = f", p={p:.2g}" if p is not None and m.verdict != "failed" else ""
                facts.append(
                    f"{m.metric} {_shown(m.candidate)} vs {_shown(m.baseline)}{pv} ({m.verdict})"
                )
        why = "; ".join(facts) or "; ".join(self.verdict.reasons)
        n_c, n_b = self.candidate["requests"], self.baseline["requests"]
        line = f"canary analysis: {shown}: {why} [{n_c} vs {n_b} requests]"
        return line if len(line) <= 1000 else line[:997] + "..."  # a reason is a sentence


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


# --- the comparison, on evidence already read ----------------------------------------------


def compare(
    found: Evidence,
    *,
    model: str,
    baseline: tuple[str, str],
    candidate: tuple[str, str],
    canary: CanaryConfig,
    weight: float | None = None,
    since: float | None = None,
    step_since: float | None = None,
    step_base: int | None = None,
    positive: Any = 1,
    starts: Sequence[float] = (),
) -> CanaryReport:
    """The report for ``candidate`` (channel, version) against ``baseline``. The current
    step's requests: those beyond ``step_base`` (the candidate's requests when the step's
    event was decided, as its evidence recorded them), else those since ``step_since``.
    ``starts``: when each later weight step of the tenure began; the tests compare the arms
    within each step (mvctl.canary.sequential.compare_streams)."""
    base_arm, cand_arm, skipped = reading.split(
        found, baseline, candidate, since=since, model=model
    )
    regression = _regression_mode(canary, (base_arm, cand_arm), positive)
    pair = Pair(
        base_arm,
        cand_arm,
        rows_of(base_arm, regression, positive),
        rows_of(cand_arm, regression, positive),
        regression=regression,
        paired=candidate[0] == "shadow",
    )
    configured: dict[str, CanaryMetric] = {m.metric: m for m in canary.metrics}
    primary = canary.primary
    tests = sum(1 for m in canary.metrics if METRICS[m.metric].test is not None)
    tests += 1 if primary is not None and METRICS[primary.metric].test is not None else 0
    names = list(configured) + [n for n in _reported(pair) if n not in configured]
    results = tuple(
        _result(pair, name, configured.get(name), primary, canary, tests, starts) for name in names
    )
    if step_base is not None and step_base <= cand_arm.requests:
        step_requests = cand_arm.requests - step_base
    else:
        step_requests = int((cand_arm.times >= (step_since or -math.inf)).sum())
    verdict = decide(
        worse=[r.metric for r in results if r.verdict == "worse"],
        failed=[r.metric for r in results if r.verdict == "failed"],
        better=next((r.metric for r in results if r.verdict == "better"), None),
        weight=weight,
        steps=canary.steps if candidate[0] != "shadow" else (),
        step_requests=step_requests,
        min_samples=canary.min_samples,
    )
    return CanaryReport(
        model=model,
        channel=candidate[0],
        baseline=base_arm.summary(),
        candidate=cand_arm.summary(),
        weight=weight,
        steps=canary.steps,
        alpha=canary.alpha,
        min_samples=canary.min_samples,
        max_failed=canary.max_failed,
        tests=tests,
        step_requests=step_requests,
        metrics=results,
        verdict=verdict,
        skipped=skipped,
        files=found.files,
    )


def _regression_mode(canary: CanaryConfig, arms: Sequence[Arm], positive: Any) -> bool:
    names = {m.metric for m in canary.metrics}
    if names & set(REGRESSION):
        return True
    if names & {"false_positive_rate", "false_negative_rate", "precision", "recall"}:
        return False
    return is_regression(arms, positive)


def _reported(pair: Pair) -> list[str]:
    names = list(ALWAYS)
    if pair.rows_baseline.n or pair.rows_candidate.n:
        names += REGRESSION if pair.regression else LABELLED
    scored = any(
        (rows.scores == rows.scores).any() for rows in (pair.rows_baseline, pair.rows_candidate)
    )
    if not scored and "roc_auc" in names:
        names.remove("roc_auc")  # outputs that are labels have no ROC curve
    if pair.paired:
        names.append("agreement")
    return names


def _result(
    pair: Pair,
    name: str,
    entry: CanaryMetric | None,
    primary: CanaryMetric | None,
    canary: CanaryConfig,
    tests: int,
    starts: Sequence[float] = (),
) -> MetricResult:
    metric = METRICS[name]
    base_value, n_base = metric.value(pair, candidate=False)
    cand_value, n_cand = metric.value(pair, candidate=True)
    is_primary = entry is not None and primary is not None and primary.metric == name
    worse = better = None
    p_worse = p_better = None
    if entry is not None and metric.test is not None:
        worse = _test(pair, metric, metric.worse, canary, entry, starts)
        p_worse = bonferroni(worse.p_value, tests) if worse else None
        if is_primary:
            other = "lower" if metric.worse == "higher" else "higher"
            better = _test(pair, metric, other, canary, entry, starts)
            p_better = bonferroni(better.p_value, tests) if better else None
    bound: dict[str, float] = {}
    failed = windows = 0
    if entry is not None and entry.threshold:
        bound = {k: v for k, v in (("min", entry.min), ("max", entry.max)) if v is not None}
        failed, windows = _threshold_checks(pair, metric, entry, canary.min_samples)
    verdict: MetricVerdict = "reported"
    if entry is not None:
        verdict = _verdict(metric, n_base, n_cand, p_worse, p_better, failed, canary)
    return MetricResult(
        metric=name,
        guarded=entry is not None,
        primary=is_primary,
        baseline=base_value,
        candidate=cand_value,
        n_baseline=n_base,
        n_candidate=n_cand,
        worse=worse,
        better=better,
        p_worse=p_worse,
        p_better=p_better,
        bound=bound,
        failed_checks=failed,
        windows=windows,
        verdict=verdict,
    )


def _verdict(
    metric: Metric,
    n_base: int,
    n_cand: int,
    p_worse: float | None,
    p_better: float | None,
    failed: int,
    canary: CanaryConfig,
) -> MetricVerdict:
    if p_worse is not None and p_worse <= canary.alpha:
        return "worse"
    if failed >= canary.max_failed:
        return "failed"
    if p_better is not None and p_better <= canary.alpha:
        return "better"
    if metric.test is None:
        return "reported"
    if min(n_base, n_cand) < canary.min_samples:
        return "too few samples"
    return "no difference yet"


def _test(
    pair: Pair,
    metric: Metric,
    direction: Any,
    canary: CanaryConfig,
    entry: CanaryMetric,
    starts: Sequence[float] = (),
) -> SequentialTest | None:
    base = metric.stream(pair, candidate=False)
    cand = metric.stream(pair, candidate=True)
    if base is None or cand is None or metric.test is None:
        return None
    kwargs: dict[str, Any] = {"effect": entry.effect} if entry.effect is not None else {}
    return compare_streams(
        metric.test,
        direction,
        base,
        cand,
        min_samples=canary.min_samples,
        alpha=canary.alpha,
        starts=starts,
        **kwargs,
    )


def _threshold_checks(
    pair: Pair, metric: Metric, entry: CanaryMetric, size: int
) -> tuple[int, int]:
    """(failed, evaluated) windows: the candidate's requests in consecutive windows of
    ``size``, the metric's value on each against the bound."""
    times = pair.candidate.times
    failed = windows = 0
    for start in range(0, len(times) - size + 1, size):
        lo, hi = times[start], times[start + size - 1]
        value, _ = metric.value(_window(pair, lo, hi), candidate=True)
        if value is None:
            continue
        windows += 1
        if (entry.max is not None and value > entry.max) or (
            entry.min is not None and value < entry.min
        ):
            failed += 1
    return failed, windows


def _window(pair: Pair, lo: float, hi: float) -> Pair:
    """``pair`` with the candidate cut to the decisions and rows of [lo, hi]."""
    arm = pair.candidate
    keep = (arm.times >= lo) & (arm.times <= hi)
    rows = pair.rows_candidate
    in_rows = (rows.times >= lo) & (rows.times <= hi)
    cut = replace(
        arm,
        times=arm.times[keep],
        latency_ms=arm.latency_ms[keep],
        errors=arm.errors[keep],
    )
    cut_rows = replace(
        rows,
        times=rows.times[in_rows],
        truth=rows.truth[in_rows],
        predicted=rows.predicted[in_rows],
        scores=rows.scores[in_rows],
    )
    return replace(pair, candidate=cut, rows_candidate=cut_rows)


# --- the use case: versions and steps from the registry --------------------------------------


@dataclass(frozen=True)
class Subject:
    """What the registry says is compared: versions, weight, when the tenure and the step
    began, and the model's canary config."""

    model: str
    channel: str
    baseline: str
    candidate: str
    weight: float | None
    since: float | None
    step_since: float | None
    step_base: int | None  # the candidate's requests its newest event's evidence counted
    canary: CanaryConfig
    positive: Any
    starts: tuple[float, ...] = ()  # when each weight step after the arrival began
    events: dict[str, str | None] = field(default_factory=dict)  # newest event per channel


def _epoch(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _counted(event: channels.Event | None, version: str) -> int | None:
    """The candidate requests an event's evidence counted (None: no evidence of ours)."""
    evidence = event.evidence if event is not None else None
    seen = evidence.get("candidate") if evidence else None
    if not isinstance(seen, dict) or seen.get("version") != version:
        return None
    requests = seen.get("requests")
    return requests if type(requests) is int and requests >= 0 else None


def subject(git: GitRepo, state: channels.ModelState, channel: str) -> Subject:
    model = state.model
    cfg = config.load(git.root)
    if channel not in cfg.channels:
        raise UsageError(
            f"unknown channel {channel!r}",
            hint=f"channels in mvctl.yaml: {', '.join(cfg.channels)}",
        )
    base = state.holder("production")
    if base is None:
        raise holds_no_version(model, "production", "there is nothing to compare against")
    cand = state.holder(channel)
    if cand is None:
        raise PolicyError(
            f"{model}@{channel} holds no version: there is nothing to analyze",
            hint=f"promote one: 'mvctl promote {model} VERSION --to {channel}'",
        )
    events = state.channel_events(channel)
    newest = events[-1] if events else None
    arrival = state.arrival(channel, newest) if newest else None
    tenure = events[events.index(arrival) + 1 :] if arrival in events else ()
    starts = tuple(t for t in (_epoch(e.time) for e in tenure) if t is not None)
    entry = cfg.model(model)
    columns = entry.raw.get("columns") or {}
    return Subject(
        model=model,
        channel=channel,
        baseline=base,
        candidate=cand,
        weight=state.weight(channel),
        since=_epoch(arrival.time) if arrival else None,
        step_since=_epoch(newest.time) if newest else None,
        step_base=_counted(newest, cand),
        canary=entry.canary,
        positive=columns.get("positive", 1),
        starts=starts,
        events={
            "production": _newest(state, "production"),
            channel: newest.name if newest else None,
        },
    )


def _newest(state: channels.ModelState, channel: str) -> str | None:
    events = state.channel_events(channel)
    return events[-1].name if events else None


def analyze(
    root: Path,
    model: str,
    logs: Sequence[Path],
    outcomes: Sequence[Path] = (),
    channel: str = "canary",
) -> CanaryReport:
    """Analyze ``channel`` (canary or shadow) of ``model`` against production on the decision
    logs ``logs`` (and outcome files ``outcomes``), on the registry's state here."""
    check_model(model)
    check_channel(channel)
    if channel not in CANDIDATES:
        raise UsageError(f"--channel must be canary or shadow, not {channel!r}")
    if not logs:
        raise UsageError("give at least one decision log: --log FILE")
    git = GitRepo.open(root)
    state = channels.load(git, model)
    if not state.tags.versions:
        raise unknown_model(model)
    return report_for(subject(git, state, channel), reading.read(logs, outcomes))


def report_for(about: Subject, found: Evidence) -> CanaryReport:
    report = compare(
        found,
        model=about.model,
        baseline=("production", about.baseline),
        candidate=(about.channel, about.candidate),
        canary=about.canary,
        weight=about.weight if about.channel != "shadow" else None,
        since=about.since,
        step_since=about.step_since,
        step_base=about.step_base,
        positive=about.positive,
        starts=about.starts,
    )
    return replace(report, events=dict(about.events))
