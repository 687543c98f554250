"""A metric that drifts over the day is no difference between the arms: at 5 -> 25 -> 50%
the baseline's requests are mostly early and the candidate's mostly late, so the arms are
compared within each weight step and the steps combined (hostile review, finding 2)."""

from __future__ import annotations

import numpy as np

from mvctl.canary.sequential import compare_streams
from mvctl.canary.simulate import simulate

BATCHES = 300


def _trend(start: float, end: float) -> np.ndarray:
    return np.linspace(start, end, BATCHES)


def test_an_a_a_canary_under_a_falling_rate_is_not_promoted_more_than_alpha() -> None:
    """Both versions identical at every moment, the FPR falling 4% -> 2% over the canary:
    pooled over the tenure the candidate looked better and was promoted in ~24% of runs."""
    rate = _trend(0.04, 0.02)
    sim = simulate(rate, rate, runs=200, batch=1000, batches=BATCHES, tests=2, seed=0)
    assert all(r.weights == (5, 25, 50) for r in sim.runs)  # the steps were walked
    assert sim.share("promote") <= 0.05
    assert sim.share("rollback") <= 0.05


def test_an_a_a_canary_under_a_rising_rate_is_not_rolled_back_more_than_alpha() -> None:
    rate = _trend(0.02, 0.04)
    sim = simulate(rate, rate, runs=200, batch=1000, batches=BATCHES, tests=2, seed=1)
    assert sim.share("rollback") <= 0.05
    assert sim.share("promote") <= 0.05


def test_a_better_canary_under_a_trend_is_still_promoted() -> None:
    rate = np.linspace(0.04, 0.02, 500)  # 15% fewer false positives at every moment:
    sim = simulate(rate, rate * 0.85, runs=50, batch=2000, batches=500, tests=2, seed=2)
    assert sim.share("promote") >= 0.9
    assert sim.share("rollback") == 0


def test_the_steps_are_compared_within_not_pooled() -> None:
    """One A/A stream whose rate jumps when the weight does: pooled, the candidate (mostly
    in the second step) looks worse; within steps there is no difference."""
    rng = np.random.default_rng(3)
    n = 40_000
    times = np.arange(n, dtype=float)
    late = times >= n / 2
    cand = rng.random(n) < np.where(late, 0.5, 0.05)
    errors = (rng.random(n) < np.where(late, 0.04, 0.02)).astype(float)
    args = ((times[~cand], errors[~cand]), (times[cand], errors[cand]))
    pooled = compare_streams("proportion", "higher", *args, min_samples=500, alpha=0.05)
    within = compare_streams(
        "proportion", "higher", *args, min_samples=500, alpha=0.05, starts=[n / 2]
    )
    assert pooled.p_value <= 0.05 and pooled.estimate > 0.005  # the confound
    assert within.p_value > 0.5
    assert abs(within.estimate) < 0.004
    assert within.half_width > pooled.half_width  # less evidence once confounding is out
