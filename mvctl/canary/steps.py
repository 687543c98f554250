"""The decision rule: from the tests' verdicts to promote / next step / continue / roll back.

Flagger walks a canary through weights (``steps: [5, 25, 50]``) and rolls back after
``max_failed`` failed checks; here every step is also guarded by always-valid tests:

1. **roll back** when any guarded metric is significantly worse than the baseline's, or a
   threshold metric has failed ``max_failed`` checks;
2. else, a canary below its last step **advances** to the next once it has served
   ``min_samples`` requests at the current one (no harm found: a step never waits for proof
   of benefit, only for enough exposure to have seen harm);
3. else, at the last step (a canary without steps, a shadow), **promote** only when the
   primary metric is significantly better: an A/A canary, a canary that is merely no worse,
   and a shadow that only agrees with production are never promoted;
4. else **continue**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

VerdictKind = Literal["promote", "next_step", "continue", "rollback"]


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    weight: float | None  # the weight now
    next_weight: float | None  # for next_step
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.kind,
            "weight": self.weight,
            "next_weight": self.next_weight,
            "reasons": list(self.reasons),
        }


def next_step(weight: float | None, steps: Sequence[float]) -> float | None:
    """The first step above ``weight`` (None at or past the last step, or without steps)."""
    if weight is None:
        return None
    return next((s for s in steps if s > weight), None)


def decide(
    *,
    worse: Sequence[str],
    failed: Sequence[str],
    better: str | None,
    weight: float | None,
    steps: Sequence[float],
    step_requests: int,
    min_samples: int,
) -> Verdict:
    """The verdict. ``worse``: guarded metrics significantly worse; ``failed``: threshold
    metrics that failed ``max_failed`` checks; ``better``: the primary metric when it is
    significantly better, else None; ``weight``: the canary's weight (None for a shadow);
    ``step_requests``: requests the candidate served since its weight was last set."""
    harm = [f"{m} is significantly worse" for m in worse]
    harm += [f"{m} failed its threshold too often" for m in failed]
    if harm:
        return Verdict("rollback", weight, None, tuple(harm))
    following = next_step(weight, steps)
    if following is not None:
        if step_requests >= min_samples:
            why = f"{step_requests} requests at {weight:g}% with no harm found"
            return Verdict("next_step", weight, following, (why,))
        return Verdict(
            "continue",
            weight,
            None,
            (f"{step_requests} of {min_samples} requests at {weight:g}% before the next step",),
        )
    if better is not None:
        return Verdict("promote", weight, None, (f"{better} is significantly better",))
    return Verdict("continue", weight, None, ("no significant difference yet",))
