"""Drift and fairness statistics against scipy, fairlearn and values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, false_discovery_control, ks_2samp

from mvctl.analysis import bias, drift, profile
from mvctl.errors import OperationalError


def test_psi_matches_the_formula_by_hand() -> None:
    reference = [0.1] * 10
    live = [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.15, 0.15]
    by_hand = 2 * (0.05 - 0.1) * math.log(0.05 / 0.1) + 2 * (0.15 - 0.1) * math.log(0.15 / 0.1)
    assert drift.psi(reference, live) == pytest.approx(by_hand)
    # An empty bin is floored at 1e-4 rather than dividing by zero.
    floored = (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.2 - 0.1) * math.log(0.2 / 0.1)
    assert drift.psi(reference, [0.0, 0.2, *[0.1] * 8]) == pytest.approx(floored)


def test_numeric_psi_uses_reference_deciles_with_open_outer_bins() -> None:
    ref = pd.DataFrame({"x": np.arange(1000, dtype=float)})  # deciles at 99.9, 199.8, ...
    prof = profile.build(ref, "ref")
    entry = prof["columns"]["x"]
    assert entry["psi_ref"] == pytest.approx([0.1] * 10)
    # Half the live batch far beyond the reference's range: it lands in the top bin.
    live = np.concatenate([np.arange(0, 1000, 2, dtype=float), np.full(500, 10_000.0)])
    result = drift.numeric_drift("x", entry, live)
    shares = [0.05] * 9 + [0.55]
    assert result.psi == pytest.approx(drift.psi([0.1] * 10, shares), rel=1e-6)


@pytest.mark.parametrize(
    ("shift", "scale", "n"), [(0.0, 1.0, 3000), (0.2, 1.0, 3000), (0.0, 1.5, 800)]
)
def test_ks_agrees_with_scipy_within_the_sketch_resolution(
    shift: float, scale: float, n: int
) -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 20_000)
    live = rng.normal(shift, scale, n)
    entry = profile.build(pd.DataFrame({"x": ref}), "ref")["columns"]["x"]
    ours = drift.numeric_drift("x", entry, live)
    theirs = ks_2samp(ref, live, method="asymp")
    assert ours.statistic == pytest.approx(theirs.statistic, abs=0.006)
    # The same verdict as scipy's at the usual level.
    assert (ours.p_value < 0.05) == (theirs.pvalue < 0.05)


@pytest.mark.parametrize("x", [0.05, 0.3, 0.6, 0.9, 0.99, 1.0, 1.2, 1.36, 2.0, 3.5])
def test_kolmogorov_distribution_matches_scipy(x: float) -> None:
    from scipy.special import kolmogorov

    assert drift.kolmogorov_sf(x) == pytest.approx(kolmogorov(x), rel=1e-9, abs=1e-15)


def test_ks_p_value_is_the_asymptotic_distribution_at_sqrt_en_times_d() -> None:
    from scipy.stats import distributions

    en = 1000 * 500 / 1500
    assert drift.ks_pvalue(0.05, 1000, 500) == pytest.approx(
        distributions.kstwobign.sf(0.05 * math.sqrt(en))
    )
    # ...which for samples this size is within a few percent of scipy's finite-n kstwo.
    assert drift.ks_pvalue(0.05, 1000, 500) == pytest.approx(
        distributions.kstwo.sf(0.05, round(en)), rel=0.05
    )


def test_chi2_is_scipys_on_the_reference_vs_live_table() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"c": rng.choice(list("abc"), 5000, p=[0.5, 0.3, 0.2])})
    live = pd.Series(rng.choice(list("abcd"), 1000, p=[0.4, 0.3, 0.2, 0.1]))
    entry = profile.build(ref, "ref")["columns"]["c"]
    ours = drift.categorical_drift("c", entry, live)
    counts = ref["c"].value_counts()
    table = [
        [counts["a"], counts["b"], counts["c"], 0],
        [int((live == k).sum()) for k in "abcd"],
    ]
    expected = chi2_contingency(table)
    assert ours.statistic == pytest.approx(expected[0])
    assert ours.p_value == pytest.approx(expected[1])
    shares_ref = [counts[k] / 5000 for k in "abc"] + [0.0]
    shares_live = [int((live == k).sum()) / 1000 for k in "abcd"]
    assert ours.psi == pytest.approx(drift.psi(shares_ref, shares_live))


def test_corrections_match_bonferroni_and_scipys_benjamini_hochberg() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.5]
    assert drift.corrected(p, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 1.0, 1.0])
    assert drift.corrected(p, "fdr") == pytest.approx(list(false_discovery_control(p)))
    assert drift.corrected(p, "none") == p


def test_fairness_by_hand() -> None:
    groups = ["a"] * 4 + ["b"] * 4
    labels = [1, 1, 0, 0, 1, 1, 0, 0]
    preds = [1, 1, 1, 0, 1, 0, 0, 0]
    report = bias.assess("g", groups, preds, labels)
    a, b = report.groups
    assert (a.selection_rate, a.tpr, a.fpr) == (0.75, 1.0, 0.5)
    assert (b.selection_rate, b.tpr, b.fpr) == (0.25, 0.5, 0.0)
    assert report.demographic_parity_difference == pytest.approx(0.5)
    assert report.demographic_parity_ratio == pytest.approx(1 / 3)
    assert report.equalized_odds_difference == pytest.approx(0.5)


def test_fairness_agrees_with_fairlearn() -> None:
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    rng = np.random.default_rng(11)
    groups = rng.choice(["eu", "us", "apac"], 2000)
    labels = rng.integers(0, 2, 2000)
    preds = (rng.random(2000) < np.where(groups == "eu", 0.6, 0.4)).astype(int)
    report = bias.assess("region", groups, preds, labels)
    assert report.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(labels, preds, sensitive_features=groups)
    )
    assert report.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(labels, preds, sensitive_features=groups)
    )
    assert report.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(labels, preds, sensitive_features=groups)
    )


def test_a_group_without_positives_is_left_out_of_the_tpr_difference() -> None:
    groups = ["a", "a", "b", "b", "c", "c"]
    labels = [1, 0, 1, 0, 0, 0]  # group c has no actual positives
    preds = [1, 0, 0, 0, 1, 1]
    report = bias.assess("g", groups, preds, labels)
    c = report.groups[2]
    assert c.tpr is None and c.fpr == 1.0
    assert report.undefined == ("c: no actual positives, so no TPR",)
    # TPR difference over a and b only (1.0 vs 0.0); FPR difference 1.0 (c) vs 0.0.
    assert report.equalized_odds_difference == pytest.approx(1.0)
    without_labels = bias.assess("g", groups, preds)
    assert without_labels.equalized_odds_difference is None


def test_profile_is_compact() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=100_000) for i in range(20)})
    text = profile.dumps(profile.build(frame, "big"))
    assert len(text) < 200_000  # kilobytes for 100k rows x 20 columns


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_profiles_read_a_bounded_number_of_rows(tmp_path: Path, suffix: str) -> None:
    frame = pd.DataFrame({"x": np.arange(200_000, dtype=float), "c": ["a", "b"] * 100_000})
    path = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    head = profile.read_table(path, max_rows=70_000)
    assert len(head) == 70_000
    assert head["x"].tolist() == frame["x"].head(70_000).tolist()
    assert len(profile.read_table(path)) == 200_000
    with pytest.raises(OperationalError, match="neither CSV nor Parquet"):
        profile.read_table(tmp_path / "data.txt")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(OperationalError, match="cannot read"):
        profile.read_table(tmp_path / "bad.parquet", max_rows=10)
