"""Requests to a canary decision: mvctl's always-valid sequential tests, checked after every
batch, against a fixed-horizon two-proportion z-test planned for the same power.

The issue's fraud case: production's false-positive rate is 2.0%; a worse canary has 2.3%
(1.15x, to be rolled back), a better one 1.7% (to be promoted). Each simulated canary walks
the steps 5 -> 25 -> 50% (a step after 1,000 canary requests), is checked after every batch
of 2,000 requests, and is decided by the real rule (mvctl.canary.steps) on the real tests
(mvctl.canary.sequential), alpha 0.05 shared by 4 one-sided tests (the README's example
config). A request here is a labelled negative (a trial of the false-positive rate).

The fixed-horizon test gets the same one-sided level (alpha / 4) and, for a power P, the
sample size n per arm = (z_{1-alpha/4} + z_P)^2 (p1 q1 + p2 q2) / (p1 - p2)^2, run 50/50
(2n requests, the cheapest split). The sequential test's power at N requests is the share
of runs decided rightly by N, so its P-quantile of requests-to-decision is what it needs for
power P: the two columns compare like with like.

    python benchmarks/bench_canary.py [--runs 200] [--seeds 5]
"""

from __future__ import annotations

import argparse
import math
import statistics

import numpy as np
from _common import machine, write_section
from scipy import stats

from mvctl.canary.simulate import simulate

ALPHA, TESTS, BATCH, BATCHES = 0.05, 4, 2000, 750  # horizon: 1.5M requests
STEPS, MIN_SAMPLES = (5, 25, 50), 1000
CASES = (("roll back", 0.020, 0.023, "rollback"), ("promote", 0.020, 0.017, "promote"))


def fixed_horizon_requests(p1: float, p2: float, power: float) -> int:
    """Both arms' requests a one-sided z-test at alpha / TESTS needs for ``power``."""
    z = stats.norm.ppf(1 - ALPHA / TESTS) + stats.norm.ppf(power)
    n = z * z * (p1 * (1 - p1) + p2 * (1 - p2)) / (p1 - p2) ** 2
    return 2 * math.ceil(n)


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name, p1, p2, verdict in CASES:
        medians: list[int] = []
        decided: list[int] = []
        wrong = 0
        for seed in range(args.seeds):
            sim = simulate(
                p1,
                p2,
                runs=args.runs,
                batch=BATCH,
                batches=BATCHES,
                steps=STEPS,
                min_samples=MIN_SAMPLES,
                alpha=ALPHA,
                tests=TESTS,
                seed=seed,
            )
            right = sim.requests(verdict)
            # Undecided runs count as never deciding (past the horizon).
            medians.append(int(quantile(right + [10**12] * (args.runs - len(right)), 0.5)))
            decided += right
            wrong += sum(r.verdict not in (verdict, "continue") for r in sim.runs)
        total = args.runs * args.seeds
        power = len(decided) / total
        padded = decided + [10**12] * (total - len(decided))
        cells = []
        for level in (0.5, 0.8, 0.95):
            seq = quantile(padded, level)
            cells.append(
                f"{seq / 1000:,.0f}k / {fixed_horizon_requests(p1, p2, level) / 1000:,.0f}k"
            )
        rows.append(
            f"| {name}: FPR {p1:.1%} → {p2:.1%} | {statistics.median(medians) / 1000:,.0f}k"
            f" ({min(medians) / 1000:,.0f}k-{max(medians) / 1000:,.0f}k) | {power:.1%}"
            f" | {fixed_horizon_requests(p1, p2, min(power, 0.99)) / 1000:,.0f}k"
            f" | {' | '.join(cells)} | {wrong} |"
        )
    aa = [
        simulate(0.02, 0.02, runs=args.runs, batches=BATCHES, tests=TESTS, seed=100 + s)
        for s in range(args.seeds)
    ]
    false_rate = statistics.mean(s.share("rollback") + s.share("promote") for s in aa)
    # The same A/A under a rate that drifts 4% -> 2% over the horizon (both arms alike at
    # every moment): the arms are compared within each weight step, so no false promotion.
    falling = np.linspace(0.04, 0.02, BATCHES)
    drift = [
        simulate(falling, falling, runs=args.runs, batches=BATCHES, tests=TESTS, seed=200 + s)
        for s in range(args.seeds)
    ]
    drift_rate = statistics.mean(s.share("rollback") + s.share("promote") for s in drift)
    body = "\n".join(
        [
            "## Canary analysis: requests to a decision",
            "",
            f"`python benchmarks/bench_canary.py --runs {args.runs} --seeds {args.seeds}` on"
            f" {machine()}: {args.runs} simulated canaries per seed, {args.seeds} seeds; steps"
            f" {' → '.join(f'{s}%' for s in STEPS)} (a step after {MIN_SAMPLES:,} canary"
            f" requests), the always-valid tests checked after every batch of {BATCH:,}"
            f" requests (both arms), alpha {ALPHA} shared by {TESTS} one-sided tests, horizon"
            f" {BATCH * BATCHES / 1e6:g}M requests. A request is a labelled negative. The"
            " fixed-horizon z-test is one-sided at the same level, run 50/50; its requests"
            " are for the power named (for 'same power', the sequential test's own power"
            " within the horizon, capped at 99%). 'P50/P80/P95': requests the sequential"
            " test needs to be right with that probability / the z-test's for that power.",
            "",
            "| canary | sequential: median requests (range of seed medians) | its power"
            " | fixed-horizon z-test, same power | P50 | P80 | P95 | wrong verdicts |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            f"A/A (2.0% both, same settings): wrongly rolled back or promoted in"
            f" {false_rate:.1%} of runs (alpha {ALPHA}), checked after every batch;"
            f" with both arms' FPR drifting 4.0% → 2.0% over the horizon, in"
            f" {drift_rate:.1%} (the arms are compared within each weight step).",
        ]
    )
    write_section("canary", body)
    print(body)


if __name__ == "__main__":
    main()
