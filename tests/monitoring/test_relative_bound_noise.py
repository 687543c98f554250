"""Live rates under sampling noise (hostile review, finding 7): the README's fraud monitor,
v1.4.0 registered false_positive_rate 0.020, ``{metric: false_positive_rate, max_increase:
0.15}`` (limit 0.023). On batches of 1,000 labelled rows the point estimate's sampling error
(~0.005) is twice the margin, so an unchanged model breached -- and with --rollback rolled
production back -- in 28% of batches. The rule now breaches only when the one-sided 95%
Wilson lower bound is past the limit; a registered 0 leaves a relative bound unchecked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mvctl.analysis.classification import Columns, LiveValue, measure, wilson
from mvctl.analysis.rules import Evidence, Metric, Registered, RuleResult
from mvctl.formats.rules import MetricRule

RULE = MetricRule(metric="false_positive_rate", max_increase=0.15)
REGISTERED = Registered("v1.4.0", {"false_positive_rate": 0.020})
COLUMNS = Columns(label="fraud", prediction="flagged", positive=1)


def judged(frame: pd.DataFrame, rule: MetricRule, registered: Registered) -> RuleResult:
    live = {rule.metric: measure(rule.metric, frame, COLUMNS)}
    evidence = Evidence(
        has_data=True, has_reference=True, metrics=None, live=live, registered=registered
    )
    return Metric().check(rule, evidence)


def breach_share(true_fpr: float, runs: int = 200, rows: int = 1000, seed: int = 0) -> float:
    """The share of ``runs`` batches of ``rows`` labelled rows (10% fraud, all caught) of a
    model whose false-positive rate is truly ``true_fpr`` that breach :data:`RULE`."""
    rng = np.random.default_rng(seed)
    fraud = (rng.random((runs, rows)) < 0.1).astype(int)
    flagged = np.where(fraud == 1, 1, (rng.random((runs, rows)) < true_fpr).astype(int))
    breaches = sum(
        judged(pd.DataFrame({"fraud": f, "flagged": g}), RULE, REGISTERED).level == "breach"
        for f, g in zip(fraud, flagged, strict=True)
    )
    return breaches / runs


def test_an_unchanged_model_is_not_rolled_back_more_than_a_few_percent_of_runs() -> None:
    share = breach_share(0.020)
    assert share <= 0.05, f"unchanged model breached in {share:.0%} of runs"


def test_a_real_rise_still_breaches() -> None:
    # A false-positive rate that truly doubled (0.040 against a limit of 0.023) breaches in
    # nearly every batch of 1,000 rows: the confidence bound costs little power.
    assert breach_share(0.040, seed=1) >= 0.9


def test_a_registered_zero_does_not_make_one_false_positive_a_breach() -> None:
    """A version whose validation set had no false positive registered 0.0; the relative
    bound's limit was then 0 + 0 * 1.0 = 0, so ONE false positive among 900 negatives
    breached (and rolled production back). It is skipped now, saying why."""
    fraud = np.r_[np.ones(100, int), np.zeros(900, int)]
    flagged = fraud.copy()
    flagged[100] = 1  # one false positive: live FPR 0.0011
    frame = pd.DataFrame({"fraud": fraud, "flagged": flagged})
    rule = MetricRule(metric="false_positive_rate", max_increase=1.0)
    result = judged(frame, rule, Registered("v1.4.0", {"false_positive_rate": 0.0}))
    assert result.level == "skipped", result.detail
    assert "v1.4.0 registered false_positive_rate 0, so max_increase" in result.detail
    assert result.bounds[0].ok is None and result.bounds[0].limit is None
    # An absolute bound next to it is still judged: the 95% lower bound of 1/900 is 0.00025.
    zero = Registered("v1.4.0", {"false_positive_rate": 0.0})
    strict = MetricRule(metric="false_positive_rate", max=0.0001, max_increase=1.0)
    assert judged(frame, strict, zero).level == "breach"
    loose = MetricRule(metric="false_positive_rate", max=0.0005, max_increase=1.0)
    assert judged(frame, loose, zero).level == "skipped"


def test_a_minimum_is_judged_by_the_upper_bound() -> None:
    # recall 0.70 on 100 frauds against a floor of 0.75: below it as measured, but the 95%
    # upper bound (0.77) is not, so no breach; 0.60 (upper bound 0.68) breaches.
    for caught, level in ((70, "ok"), (60, "breach")):
        fraud = np.r_[np.ones(100, int), np.zeros(900, int)]
        flagged = np.r_[np.ones(caught, int), np.zeros(1000 - caught, int)]
        frame = pd.DataFrame({"fraud": fraud, "flagged": flagged})
        rule = MetricRule(metric="recall", min=0.75, min_rows=100)
        result = judged(frame, rule, REGISTERED)
        assert result.level == level, result.detail
        assert result.bounds[0].compared == pytest.approx(wilson(caught, 100, 1.6448536)[1])
        assert "95% upper bound" in result.detail


def test_wilson_is_the_score_interval() -> None:
    low, high = wilson(20, 1000, 1.959964)  # the textbook two-sided 95% interval
    assert (low, high) == (pytest.approx(0.01298, abs=1e-5), pytest.approx(0.03069, abs=1e-5))
    assert wilson(0, 50, 1.645)[0] == 0.0 and wilson(50, 50, 1.645)[1] == 1.0
    assert 0 < wilson(0, 50, 1.645)[1] < 0.06  # no hit in 50 still allows a few percent


def test_metrics_without_counts_are_compared_as_measured() -> None:
    rule = MetricRule(metric="roc_auc", min=0.9, min_rows=1)
    live = {"roc_auc": LiveValue("roc_auc", 0.899, rows=10_000)}
    evidence = Evidence(True, True, None, live=live, registered=REGISTERED)
    result = Metric().check(rule, evidence)
    assert result.level == "breach" and result.bounds[0].compared == 0.899
    assert "95%" not in result.detail
