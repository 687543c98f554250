"""Simulated canaries: many runs of a proportion metric (say a false-positive rate) under the
real decision rule (mvctl.canary.steps) and the real tests (mvctl.canary.sequential),
checked after every batch of requests, all runs at once with numpy.

Traffic is split by the canary's weight (its requests in a batch: ``batch * weight / 100``),
each request is a trial of the metric (a labelled negative, for a false-positive rate), and
every run starts at the first step. Until a run is decided, every run shares the same weight
schedule (steps advance on counts alone), so the counts are one path and only the outcomes
differ by run. Used by the tests (the A/A check) and by benchmarks/bench_canary.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mvctl.canary.sequential import (
    DEFAULT_EFFECT,
    always_valid_p,
    log_mixture_lr,
    stratified_paths,
)
from mvctl.canary.steps import decide


@dataclass(frozen=True)
class Run:
    verdict: str  # promote, rollback or continue (undecided within the horizon)
    requests: int  # requests served (both arms) when decided
    candidate_requests: int
    weights: tuple[float, ...]  # the weights it walked through


@dataclass(frozen=True)
class Simulation:
    runs: tuple[Run, ...]

    def share(self, verdict: str) -> float:
        return sum(r.verdict == verdict for r in self.runs) / len(self.runs)

    def requests(self, verdict: str) -> list[int]:
        return [r.requests for r in self.runs if r.verdict == verdict]


def simulate(
    p_baseline: float | Sequence[float],
    p_candidate: float | Sequence[float],
    *,
    runs: int = 200,
    batch: int = 2000,
    batches: int = 500,
    steps: Sequence[float] = (5, 25, 50),
    min_samples: int = 1000,
    alpha: float = 0.05,
    higher_is_worse: bool = True,
    tests: int = 2,
    effect: float = DEFAULT_EFFECT,
    seed: int = 0,
) -> Simulation:
    """``runs`` canaries of a metric at ``p_candidate`` against ``p_baseline``, the metric
    the primary one (so ``tests`` is at least its two one-sided tests). A rate may be one
    per batch (a metric that drifts over the day); the arms are compared within each weight
    step, as mvctl.canary.analysis compares them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weight = float(steps[0]) if steps else 50.0
    n_base: list[int] = []
    n_cand: list[int] = []
    weights: list[float] = []
    step_requests = 0
    for _ in range(batches):  # the shared schedule: no harm, no benefit, steps on counts
        weights.append(float(weight))
        cand = round(batch * weight / 100)
        n_base.append(batch - cand)
        n_cand.append(cand)
        step_requests += cand
        plain = decide(
            worse=[],
            failed=[],
            better=None,
            weight=weight,
            steps=steps,
            step_requests=step_requests,
            min_samples=min_samples,
        )
        if plain.kind == "next_step" and plain.next_weight is not None:
            weight, step_requests = plain.next_weight, 0
    nb, nc = np.asarray(n_base), np.asarray(n_cand)
    rate_a = np.broadcast_to(np.asarray(p_baseline, dtype=float), (batches,))
    rate_b = np.broadcast_to(np.asarray(p_candidate, dtype=float), (batches,))
    x_a = rng.binomial(nb, rate_a, size=(runs, batches)).cumsum(axis=1).astype(float)
    x_b = rng.binomial(nc, rate_b, size=(runs, batches)).cumsum(axis=1).astype(float)
    total_a = np.broadcast_to(nb.cumsum(), (runs, batches)).astype(float)
    total_b = np.broadcast_to(nc.cumsum(), (runs, batches)).astype(float)
    strata = np.cumsum(np.append(False, np.diff(np.asarray(weights)) != 0))
    sums = (total_a, x_a, x_a, total_b, x_b, x_b)  # 0/1 outcomes: squares are the sums
    theta, var, tau = stratified_paths("proportion", sums, strata, effect, min_samples)
    eligible = (total_a >= min_samples) & (total_b >= min_samples)
    worse_sign = 1.0 if higher_is_worse else -1.0
    p_worse = always_valid_p(log_mixture_lr(worse_sign * theta, var, tau), eligible) * tests
    p_better = always_valid_p(log_mixture_lr(-worse_sign * theta, var, tau), eligible) * tests
    out: list[Run] = []
    requests = np.arange(1, batches + 1) * batch
    for run in range(runs):
        verdict, at = "continue", batches - 1
        for i in range(batches):
            found = decide(
                worse=["metric"] if p_worse[run, i] <= alpha else [],
                failed=[],
                better="metric" if p_better[run, i] <= alpha else None,
                weight=weights[i],
                steps=steps,
                step_requests=0,  # the schedule above already advanced the steps
                min_samples=min_samples,
            )
            if found.kind in ("promote", "rollback"):
                verdict, at = found.kind, i
                break
        seen = tuple(dict.fromkeys(weights[: at + 1]))
        out.append(Run(verdict, int(requests[at]), int(total_b[run, at]), seen))
    return Simulation(tuple(out))
