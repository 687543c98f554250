"""Drift of live data against a reference profile.

Numeric columns: PSI over the reference's decile bins (outer bins open, so out-of-range
values count; empty bins floored at 1e-4; PSI = sum (q - p) * ln(q / p)) and the two-sample
Kolmogorov-Smirnov statistic, computed against the reference's quantile sketch (so its
resolution is the sketch's half percent), with the p-value of the asymptotic Kolmogorov
distribution at sqrt(n*m/(n+m)) * D (scipy's ``kstwobign``; computed here, so the numeric
path never pays scipy.stats' one-second import). Categorical columns: chi-squared on the
2 x K table of reference and live counts (scipy's ``chi2_contingency``) and PSI over the
categories. A dataset-level verdict is the share of drifted columns, or per-column tests
with a Bonferroni or Benjamini-Hochberg correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mvctl.analysis.profile import (
    OTHER,
    category_counts,
    cumulative_at,
    decile_shares,
    numeric_values,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

PSI_FLOOR = 1e-4
PSI_WARN = 0.1
PSI_BREACH = 0.25
ALPHA = 0.05

Correction = Literal["none", "bonferroni", "fdr"]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: Literal["numeric", "categorical"]
    psi: float
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    rows: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "kind": self.kind,
            "psi": self.psi,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "rows": self.rows,
            "note": self.note,
        }


def psi(reference: Sequence[float], live: Sequence[float], floor: float = PSI_FLOOR) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    total = 0.0
    for p, q in zip(reference, live, strict=True):
        p, q = max(p, floor), max(q, floor)
        total += (q - p) * math.log(q / p)
    return total


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (``scipy.special.kolmogorov``)."""
    if x <= 0:
        return 1.0
    if x < 1.0:
        # Jacobi's form converges fast for small x: 1 - sqrt(2 pi)/x sum exp(-(2k-1)^2 pi^2/8x^2)
        total = sum(math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x)) for k in range(1, 12))
        return min(1.0, max(0.0, 1.0 - math.sqrt(2 * math.pi) / x * total))
    total = 0.0
    for k in range(1, 101):
        total += (-1) ** (k - 1) * math.exp(-2 * k * k * x * x)
    return min(1.0, max(0.0, 2.0 * total))


def ks_pvalue(statistic: float, n_reference: int, n_live: int) -> float:
    """Two-sided p-value of a two-sample KS statistic, asymptotic distribution."""
    if n_reference == 0 or n_live == 0:
        return 1.0
    effective = n_reference * n_live / (n_reference + n_live)
    return kolmogorov_sf(statistic * math.sqrt(effective))


def numeric_drift(name: str, entry: dict[str, Any], values: np.ndarray) -> ColumnDrift:
    """``values``: the live column as floats (NaN already removed)."""
    import numpy as np

    m = len(values)
    if m == 0 or not entry.get("quantiles"):
        return ColumnDrift(name, "numeric", 0.0, "ks", 0.0, 1.0, m, "no values to compare")
    points = np.asarray(entry["quantiles"], dtype="float64")
    cumulative = cumulative_at(points, values)
    live_cdf = cumulative / m
    statistic = float(np.max(np.abs(np.asarray(entry["cdf"]) - live_cdf)))
    index = psi(entry["psi_ref"], decile_shares(cumulative, m))
    return ColumnDrift(
        name, "numeric", index, "ks", statistic, ks_pvalue(statistic, int(entry["count"]), m), m
    )


def categorical_drift(name: str, entry: dict[str, Any], series: pd.Series) -> ColumnDrift:
    from scipy.stats import chi2_contingency

    reference: dict[str, int] = entry["counts"]
    categories = list(reference)
    if OTHER not in categories:
        categories.append(OTHER)
    live = category_counts(series, keep=categories)
    ref_counts = [reference.get(c, 0) for c in categories]
    live_counts = [live.get(c, 0) for c in categories]
    n_ref, n_live = sum(ref_counts), sum(live_counts)
    if n_live == 0 or n_ref == 0:
        return ColumnDrift(name, "categorical", 0.0, "chi2", 0.0, 1.0, n_live, "no values")
    index = psi([c / n_ref for c in ref_counts], [c / n_live for c in live_counts])
    kept = [(r, q) for r, q in zip(ref_counts, live_counts, strict=True) if r or q]
    if len(kept) < 2:
        return ColumnDrift(name, "categorical", index, "chi2", 0.0, 1.0, n_live, "one category")
    result = chi2_contingency([[r for r, _ in kept], [q for _, q in kept]])
    return ColumnDrift(
        name, "categorical", index, "chi2", float(result[0]), float(result[1]), n_live
    )


def column_drift(profile: dict[str, Any], frame: pd.DataFrame) -> list[ColumnDrift]:
    """Drift of every profiled column present in ``frame`` (columns it lacks are skipped).
    Numeric columns run in parallel threads: numpy releases the GIL while binning."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    def one(item: tuple[str, dict[str, Any]]) -> ColumnDrift:
        name, entry = item
        if entry["kind"] == "numeric":
            return numeric_drift(name, entry, numeric_values(frame[name]))
        return categorical_drift(name, entry, frame[name])

    present = [(n, e) for n, e in profile["columns"].items() if n in frame.columns]
    with ThreadPoolExecutor(max_workers=max(1, min(len(present), os.cpu_count() or 1))) as pool:
        return list(pool.map(one, present))


def corrected(p_values: Sequence[float], method: Correction) -> list[float]:
    """p-values adjusted for testing many columns at once."""
    n = len(p_values)
    if method == "none" or n == 0:
        return list(p_values)
    if method == "bonferroni":
        return [min(1.0, p * n) for p in p_values]
    # Benjamini-Hochberg step-up adjusted p-values.
    order = sorted(range(n), key=lambda i: p_values[i])
    adjusted = [0.0] * n
    running = 1.0
    for rank in range(n, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * n / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


def drifted_share(
    drifts: Sequence[ColumnDrift],
    psi_limit: float = PSI_BREACH,
    alpha: float = ALPHA,
    correction: Correction = "none",
) -> tuple[float, list[str]]:
    """Share of columns whose PSI exceeds ``psi_limit`` or whose test rejects at ``alpha``."""
    if not drifts:
        return 0.0, []
    adjusted = corrected([d.p_value for d in drifts], correction)
    names = [
        d.column for d, p in zip(drifts, adjusted, strict=True) if d.psi > psi_limit or p < alpha
    ]
    return len(names) / len(drifts), names
