r"""Always-valid sequential tests: a one-sided mixture SPRT (mSPRT) for the difference of two
proportions or two means, valid at any stopping time, however often it is looked at.

A fixed-horizon test (a z-test, Kayenta's Mann-Whitney per interval) is valid once, at the
sample size it was planned for; looked at after every batch, it rejects a true null far more
often than its alpha. The tests here bound that: whatever rule decides when to stop, the
chance of ever rejecting a true null is at most alpha.

**The statistic** (Johari, Koomen, Pekelis, Walsh, "Peeking at A/B tests: why it matters, and
what to do about it", KDD 2017; Johari, Pekelis, Walsh, "Always valid inference: continuous
monitoring of A/B tests", Operations Research 70(3), 2022). After n_a baseline and n_b
candidate observations, let

    theta_hat = mean_b - mean_a          (the candidate's difference)
    V         = s_a^2 / n_a + s_b^2 / n_b  (its variance; for proportions the pooled
                                            p(1-p)(1/n_a + 1/n_b), p shrunk towards 1/2 by
                                            half an observation so that V > 0)

so theta_hat is approximately N(theta, V) and the likelihood ratio of theta against 0 is
L(theta) = exp((theta * theta_hat - theta^2 / 2) / V). Mixing it over theta with a half-normal
prior of scale tau on the alternative's side (theta > 0 for "the candidate is higher") gives
the closed form

    Lambda = 2 * sqrt(V / (V + tau^2)) * exp(tau^2 theta_hat^2 / (2 V (V + tau^2)))
               * Phi(theta_hat * tau / sqrt(V (V + tau^2)))

(the two-sided normal mixture of Robbins, "Statistical methods related to the law of the
iterated logarithm", Ann. Math. Statist. 41, 1970, times 2 Phi(.)). Under theta <= 0, Lambda is
a non-negative supermartingale with Lambda_0 = 1, so by Ville's inequality
P(sup_n Lambda_n >= 1/alpha) <= alpha: the **always-valid p-value**

    p_n = min(1, min_{k <= n} 1 / Lambda_k)

never increases, and rejecting when p_n <= alpha at any time (chosen after looking) has type
I error at most alpha. The direction "lower" is the same test on -theta_hat.

**tau** is the effect the test is tuned to find: the relative ``effect`` (default 10%) of the
baseline's level (its rate, or sqrt(mean^2 + variance) for means), updated as data arrives.
Any tau gives a valid test; a tau near the true difference finds it soonest.

**Confidence sequence** (Robbins' two-sided normal mixture): with probability 1 - alpha, at
every n at once, |theta_hat - theta| <= sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V)
+ 2 log(1 / alpha))). :class:`SequentialTest` reports this half-width at the last check.

**Checks**: the statistic is evaluated after every observation once both arms have
``min_samples`` (fewer checks can only make the p-value larger, so starting late keeps it
valid; it keeps the normal approximation from acting on a handful of rows). Several metrics
are combined by Bonferroni: with k one-sided tests each is judged at alpha / k (reported as
``min(1, k p)``), so the chance of any false verdict stays below alpha.

Everything here is numpy/scipy on arrays: a path of cumulative counts gives a path of
statistics, and a batch of simulated runs (rows) is tested in one call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Array = NDArray[np.float64]

Direction = Literal["higher", "lower"]  # the alternative: the candidate's value is ...
# proportion: of 0/1 values; mean: of values; log_mean: of the logs of positive values (a
# ratio of geometric means, for latencies: valid on heavy tails a plug-in mean is not).
TestKind = Literal["proportion", "mean", "log_mean"]
DEFAULT_EFFECT = 0.1


@dataclass(frozen=True)
class SequentialTest:
    """One one-sided test at its last check: ``p_value`` is the always-valid p-value (before
    any correction); ``estimate`` the candidate's difference from the baseline."""

    kind: TestKind
    direction: Direction
    n_baseline: int
    n_candidate: int
    estimate: float
    half_width: float  # of the (1 - alpha) confidence sequence for the difference
    p_value: float
    checks: int  # how many checks the p-value is the minimum over (0: too few samples)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "direction": self.direction,
            "n_baseline": self.n_baseline,
            "n_candidate": self.n_candidate,
            "estimate": _finite(self.estimate),
            "half_width": _finite(self.half_width),
            "p_value": self.p_value,
            "checks": self.checks,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def log_mixture_lr(theta: Array, var: Array, tau: Array) -> Array:
    """log Lambda for "theta > 0" (half-normal mixture of scale ``tau``), elementwise; 0 (no
    evidence) where the variance or tau is not positive."""
    import numpy as np
    from scipy.special import log_ndtr

    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = tau * tau
        total = var + tau2
        out = (
            math.log(2.0)
            + 0.5 * np.log(var / total)
            + tau2 * theta * theta / (2.0 * var * total)
            + log_ndtr(theta * tau / np.sqrt(var * total))
        )
    good = (var > 0) & (tau > 0) & np.isfinite(out)
    return np.where(good, out, 0.0)


def always_valid_p(log_lr: Array, eligible: Any = None) -> Array:
    """The running always-valid p-value along the last axis: min(1, min_k 1 / Lambda_k) over
    the eligible checks so far (1 before the first)."""
    import numpy as np

    values = np.asarray(log_lr, dtype=float)
    if eligible is not None:
        values = np.where(eligible, values, 0.0)
    best = np.maximum.accumulate(np.maximum(values, 0.0), axis=-1)
    return np.exp(-best)


def half_width(var: Array, tau: Array, alpha: float) -> Array:
    """Robbins' normal-mixture confidence sequence half-width for the difference."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        tau2 = tau * tau
        width = np.sqrt(
            var * (var + tau2) / tau2 * (np.log((var + tau2) / var) - 2 * math.log(alpha))
        )
    return np.where((var > 0) & (tau > 0), width, np.inf)


def proportion_paths(
    n_a: Array, x_a: Array, n_b: Array, x_b: Array, effect: float = DEFAULT_EFFECT
) -> tuple[Array, Array, Array]:
    """(theta_hat, V, tau) of a difference of proportions from cumulative counts (trials n,
    successes x, per arm), elementwise."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        p_a = np.where(n_a > 0, x_a / n_a, 0.0)
        p_b = np.where(n_b > 0, x_b / n_b, 0.0)
        pooled = (x_a + x_b + 0.5) / (n_a + n_b + 1.0)
        var = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    var = np.where((n_a > 0) & (n_b > 0), var, 0.0)
    return p_b - p_a, var, effect * pooled


def mean_paths(
    n_a: Array,
    s_a: Array,
    q_a: Array,
    n_b: Array,
    s_b: Array,
    q_b: Array,
    effect: float = DEFAULT_EFFECT,
) -> tuple[Array, Array, Array]:
    """(theta_hat, V, tau) of a difference of means from cumulative counts, sums and sums of
    squares per arm (Welch's variance), elementwise."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        m_a = s_a / n_a
        m_b = s_b / n_b
        v_a = np.maximum(q_a / n_a - m_a * m_a, 0.0) * n_a / (n_a - 1)
        v_b = np.maximum(q_b / n_b - m_b * m_b, 0.0) * n_b / (n_b - 1)
        var = v_a / n_a + v_b / n_b
        tau = effect * np.sqrt(m_a * m_a + v_a)
    ok = (n_a > 1) & (n_b > 1)
    return np.where(ok, m_b - m_a, 0.0), np.where(ok, var, 0.0), np.where(ok, tau, 0.0)


def restarted(cumulative: Array, strata: Any) -> Array:
    """``cumulative`` (sums along the last axis) restarted at each stratum: at every position
    the sum over its own stratum so far. ``strata``: a non-decreasing label per position."""
    import numpy as np

    labels = np.asarray(strata)
    starts = np.searchsorted(labels, labels, side="left")  # each position's stratum start
    before = np.take(cumulative, np.maximum(starts - 1, 0), axis=-1)
    return cumulative - np.where(starts > 0, before, 0.0)


def stratified(theta: Array, var: Array, strata: Any) -> tuple[Array, Array]:
    """(theta_hat, V) of the strata combined by inverse variance, from each position's
    running (theta_hat, V) within its own stratum: finished strata count with their final
    values, the current one with its running values. A stratum whose V is not positive (an
    arm without observations in it) adds nothing."""
    import numpy as np

    labels = np.asarray(strata)
    ends = np.append(labels[1:] != labels[:-1], True)  # a stratum's last position
    starts = np.searchsorted(labels, labels, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        info = np.where(var > 0, 1.0 / var, 0.0)
    score = np.where(info > 0, theta * info, 0.0)
    done_info = np.cumsum(info * ends, axis=-1)
    done_score = np.cumsum(score * ends, axis=-1)
    prior = np.maximum(starts - 1, 0)
    has_prior = starts > 0
    total_info = info + np.where(has_prior, np.take(done_info, prior, axis=-1), 0.0)
    total_score = score + np.where(has_prior, np.take(done_score, prior, axis=-1), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        combined = np.where(total_info > 0, total_score / total_info, 0.0)
        combined_var = np.where(total_info > 0, 1.0 / total_info, 0.0)
    return combined, combined_var


def _stream_sums(
    times_a: Array, values_a: Array, times_b: Array, values_b: Array, starts: Sequence[float]
) -> tuple[tuple[Array, ...], Any]:
    """Both arms merged in time order: cumulative n, sum and sum of squares per arm after
    each observation (ties: baseline first, a fixed order), and each observation's stratum
    (how many of ``starts`` are at or before its time)."""
    import numpy as np

    times = np.concatenate([times_a, times_b]).astype(float)
    values = np.concatenate([values_a, values_b]).astype(float)
    is_b = np.concatenate([np.zeros(len(times_a), bool), np.ones(len(times_b), bool)])
    order = np.lexsort((is_b, times))
    times, values, is_b = times[order], values[order], is_b[order]
    in_a, in_b = (~is_b).astype(float), is_b.astype(float)
    strata = np.searchsorted(np.sort(np.asarray(starts, dtype=float)), times, side="right")
    sums = (
        np.cumsum(in_a),
        np.cumsum(values * in_a),
        np.cumsum(values * values * in_a),
        np.cumsum(in_b),
        np.cumsum(values * in_b),
        np.cumsum(values * values * in_b),
    )
    return sums, strata


def _paths(kind: TestKind, sums: Sequence[Array], effect: float) -> tuple[Array, Array, Array]:
    import numpy as np

    n_a, s_a, q_a, n_b, s_b, q_b = sums
    if kind == "proportion":
        return proportion_paths(n_a, s_a, n_b, s_b, effect)
    theta, var, tau = mean_paths(n_a, s_a, q_a, n_b, s_b, q_b, effect)
    if kind == "log_mean":  # a difference of logs is a ratio: the effect's own scale
        tau = np.where(tau > 0, math.log1p(effect), 0.0)
    return theta, var, tau


def stratified_paths(
    kind: TestKind, sums: Sequence[Array], strata: Any, effect: float, floor: float = 0
) -> tuple[Array, Array, Array]:
    """(theta_hat, V, tau) from cumulative sums (n, sum, sum of squares per arm, along the
    last axis), the arms compared within each stratum and the strata combined (``stratified``);
    tau from the whole tenure. A stratum of a mean counts once both arms have ``floor``
    observations in it: a variance estimated from a handful of values can be near 0 and
    would weigh the stratum without limit (a proportion's is shrunk, so bounded). One
    stratum, from ``floor`` on: exactly the plain paths."""
    import numpy as np

    _, _, tau = _paths(kind, sums, effect)
    within = [restarted(s, strata) for s in sums]
    theta, var, _ = _paths(kind, within, effect)
    if kind != "proportion":
        var = np.where((within[0] >= floor) & (within[3] >= floor), var, 0.0)
    theta, var = stratified(theta, var, strata)
    return theta, var, tau


def compare_streams(
    kind: TestKind,
    direction: Direction,
    baseline: tuple[Array, Array],
    candidate: tuple[Array, Array],
    *,
    min_samples: int,
    alpha: float,
    effect: float = DEFAULT_EFFECT,
    starts: Sequence[float] = (),
) -> SequentialTest:
    """The one-sided test of ``candidate`` against ``baseline``, each (times, values) of its
    observations (0/1 for a proportion), checked after every observation from the point where
    both arms have ``min_samples``. ``starts``: the times a new weight step began; the arms
    are compared within each step and the steps combined, because at a different weight the
    arms sample different hours (a trend over the day is no difference between them). For a
    mean, a step counts once both arms have ``min_samples`` in it."""
    import numpy as np

    if kind == "log_mean":  # latencies: positive; a zero counts as a microsecond
        baseline, candidate = (
            (times, np.log(np.maximum(np.asarray(values, dtype=float), 1e-3)))
            for times, values in (baseline, candidate)
        )
    sums, strata = _stream_sums(*baseline, *candidate, starts)
    n_a, n_b = sums[0], sums[3]
    theta, var, tau = stratified_paths(kind, sums, strata, effect, min_samples)
    signed = theta if direction == "higher" else -theta
    eligible = (n_a >= min_samples) & (n_b >= min_samples)
    log_lr = log_mixture_lr(signed, var, tau)
    p = always_valid_p(log_lr, eligible)
    last = len(theta) - 1
    if last < 0:
        return SequentialTest(kind, direction, 0, 0, math.nan, math.inf, 1.0, 0)
    width = half_width(var[last : last + 1], tau[last : last + 1], alpha)[0]
    return SequentialTest(
        kind=kind,
        direction=direction,
        n_baseline=int(n_a[last]),
        n_candidate=int(n_b[last]),
        estimate=float(theta[last]),
        half_width=float(width),
        p_value=float(p[last]),
        checks=int(np.count_nonzero(eligible)),
    )


def bonferroni(p_value: float, tests: int) -> float:
    """``p_value`` corrected for ``tests`` one-sided tests."""
    return min(1.0, p_value * max(tests, 1))
