"""The always-valid tests on their own: the closed form, p-values that only fall, and the
decision rule on simulated canaries checked after every batch (A/A, worse, better)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from mvctl.canary import sequential
from mvctl.canary.simulate import simulate
from mvctl.canary.steps import decide, next_step


@pytest.mark.parametrize(("theta", "var", "tau"), [(0.01, 1e-4, 0.005), (-0.02, 4e-4, 0.01)])
def test_the_closed_form_is_the_half_normal_mixture_of_likelihood_ratios(
    theta: float, var: float, tau: float
) -> None:
    def integrand(t: float) -> float:
        ratio = math.exp((t * theta - t * t / 2) / var)
        return ratio * 2 * stats.norm.pdf(t, scale=tau)

    numeric, _ = integrate.quad(integrand, 0, 20 * tau)
    closed = sequential.log_mixture_lr(np.array([theta]), np.array([var]), np.array([tau]))[0]
    assert closed == pytest.approx(math.log(numeric), rel=1e-6)


def test_p_values_only_fall_and_start_at_min_samples() -> None:
    rng = np.random.default_rng(3)
    n = 5000
    times_a, times_b = np.arange(n, dtype=float), np.arange(n, dtype=float) + 0.5
    base = (times_a, (rng.random(n) < 0.02).astype(float))
    cand = (times_b, (rng.random(n) < 0.03).astype(float))
    path = []
    for end in range(200, n + 1, 200):
        found = sequential.compare_streams(
            "proportion",
            "higher",
            (base[0][:end], base[1][:end]),
            (cand[0][:end], cand[1][:end]),
            min_samples=1000,
            alpha=0.05,
        )
        path.append(found.p_value)
        if end < 1000:
            assert found.p_value == 1.0 and found.checks == 0
    assert all(b <= a for a, b in itertools.pairwise(path))
    assert path[-1] < 0.05  # a 50% higher rate over 5,000 each is found


def test_a_mean_test_finds_a_slower_candidate_not_a_faster_one() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    times = np.arange(n, dtype=float)
    base = (times, rng.gamma(4, 2.0, n))
    slow = (times + 0.5, rng.gamma(4, 2.0, n) * 1.1)
    higher = sequential.compare_streams("mean", "higher", base, slow, min_samples=100, alpha=0.05)
    lower = sequential.compare_streams("mean", "lower", base, slow, min_samples=100, alpha=0.05)
    assert higher.p_value < 0.01 < 0.5 < lower.p_value
    assert higher.estimate > 0 and higher.half_width > 0


def test_bonferroni() -> None:
    assert sequential.bonferroni(0.01, 4) == pytest.approx(0.04)
    assert sequential.bonferroni(0.5, 4) == 1.0


def test_steps_walk_then_promote_only_at_the_last() -> None:
    kw = {"worse": [], "failed": [], "steps": (5, 25, 50), "min_samples": 1000}
    assert next_step(5, (5, 25, 50)) == 25 and next_step(50, (5, 25, 50)) is None
    assert decide(better="fpr", weight=5, step_requests=999, **kw).kind == "continue"
    assert decide(better="fpr", weight=5, step_requests=1000, **kw).next_weight == 25
    assert decide(better=None, weight=50, step_requests=10**6, **kw).kind == "continue"
    assert decide(better="fpr", weight=50, step_requests=0, **kw).kind == "promote"
    harm = decide(**{**kw, "worse": ["error_rate"]}, better="fpr", weight=50, step_requests=0)
    assert harm.kind == "rollback" and "error_rate" in harm.reasons[0]


def test_a_a_canaries_are_wrongly_rolled_back_or_promoted_in_at_most_alpha() -> None:
    """200 canaries where both arms are the same model (2% FPR), the tests checked after
    every batch of 2,000 requests up to 1M: wrong verdicts in at most 5% (alpha)."""
    sim = simulate(0.02, 0.02, runs=200, batches=500, tests=3, alpha=0.05, seed=13)
    wrong = sim.share("rollback") + sim.share("promote")
    assert wrong <= 0.05
    assert sim.share("continue") >= 0.95
    assert all(r.weights == (5, 25, 50) for r in sim.runs)  # the steps were walked


def test_an_fpr_of_2_3_percent_against_2_0_is_rolled_back() -> None:
    sim = simulate(0.02, 0.023, runs=50, batches=500, tests=3, seed=14)
    assert sim.share("rollback") >= 0.95
    assert sim.share("promote") == 0


def test_a_better_canary_walks_5_25_50_and_is_promoted() -> None:
    sim = simulate(0.02, 0.017, runs=50, batches=500, tests=3, seed=15)
    assert sim.share("promote") >= 0.95
    assert sim.share("rollback") == 0
    promoted = [r for r in sim.runs if r.verdict == "promote"]
    assert all(r.weights == (5, 25, 50) for r in promoted)
