"""A metric that drifts over the day is no difference between the arms: at 5 -> 25 -> 50%
the baseline's requests are mostly early and the candidate's mostly late, so the arms are
compared within each weight step and the steps combined (hostile review, finding 2)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mvctl._adapters.git import GitRepo
from mvctl.canary import evidence
from mvctl.canary.analysis import compare, subject
from mvctl.canary.sequential import compare_streams
from mvctl.canary.simulate import simulate
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.channels.weights import set_weight
from mvctl.formats.rules import CanaryConfig, CanaryMetric
from tests.conftest import Registry, RegistryFactory, Release, copy_registry

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


def _line(i: int, arm: tuple[str, str], error: bool) -> str:
    role = "primary" if arm[0] == "production" else arm[0]
    line = {"time": f"2030-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"}
    line |= {"key": f"k{i}", "model": "fraud", "channel": arm[0], "version": arm[1]}
    line |= {"role": role, "latency_ms": 2.0}
    line |= {"error": "boom"} if error else {"output": [0]}
    return json.dumps(line) + "\n"


def test_the_report_compares_the_arms_within_the_steps_it_is_given(tmp_path: Path) -> None:
    """error_rate 2% then 4% for both versions, the canary at 5% then 50%: pooled, the
    canary is "worse" and would be rolled back; within its steps it is no different."""
    rng = np.random.default_rng(4)
    base, cand = ("production", "v1.0.0"), ("canary", "v1.1.0")
    n = 40_000
    late = np.arange(n) >= n // 2
    to_cand = rng.random(n) < np.where(late, 0.5, 0.05)
    failed = rng.random(n) < np.where(late, 0.04, 0.02)
    log = tmp_path / "log.jsonl"
    log.write_text("".join(_line(i, cand if to_cand[i] else base, failed[i]) for i in range(n)))
    found = evidence.read([log])
    step = found.decisions[n // 2].time
    canary = CanaryConfig(steps=(5, 50), min_samples=500, metrics=(CanaryMetric("error_rate"),))
    kw: dict[str, Any] = {"model": "fraud", "baseline": base, "candidate": cand, "canary": canary}
    pooled = compare(found, weight=50, **kw)
    within = compare(found, weight=50, starts=[step], **kw)
    assert pooled.verdict.kind == "rollback"
    assert within.verdict.kind == "continue"
    assert {m.metric: m.verdict for m in within.metrics}["error_rate"] == "no difference yet"


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        Release(weights=b"one", auc=0.91, push=True, promote=("production",)),
        Release(weights=b"two", auc=0.93, push=True),
        config="version: 1\nchannels: [production, canary]\nmodels:\n  fraud: {}\n",
    )


def test_the_steps_are_the_weight_events_after_the_arrival(template: Path, tmp_path: Path) -> None:
    reg: Registry = copy_registry(template, tmp_path)
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    set_weight(reg.root, "fraud", 25)
    set_weight(reg.root, "fraud", 50)
    git = GitRepo.open(reg.root)
    state = channels.load(git, "fraud")
    about = subject(git, state, "canary")
    weights = [e for e in state.channel_events("canary") if e.kind == "weight"]
    assert len(about.starts) == 2 == len(weights)
    assert about.starts == tuple(datetime.fromisoformat(e.time).timestamp() for e in weights)


def test_a_step_counts_only_once_both_arms_have_min_samples_in_it() -> None:
    """A new step of two requests per arm, alike within each arm: a variance from two values
    is near 0, and weighed by its inverse it would decide the test alone."""
    rng = np.random.default_rng(5)
    times = np.arange(4000, dtype=float)
    values = rng.normal(10.0, 1.0, 4000)
    base = (np.append(times[::2], [5000.0, 5001.0]), np.append(values[::2], [10.0, 10.0001]))
    cand = (np.append(times[1::2], [5000.5, 5001.5]), np.append(values[1::2], [14.0, 14.0001]))
    test = compare_streams(
        "mean", "higher", base, cand, min_samples=100, alpha=0.05, starts=[4999.0]
    )
    assert test.p_value > 0.05
    assert abs(test.estimate) < 0.2  # the first step's difference alone
