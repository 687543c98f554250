"""Fairness of binary predictions across the groups of a sensitive column.

Definitions follow Fairlearn: per group, the selection rate (share predicted positive), the
true-positive rate and the false-positive rate; demographic parity difference = max - min
selection rate, ratio = min / max; equalized odds difference = the worse of the TPR and FPR
differences (each max - min across groups).

Explicit rule for incomplete groups: a group with no actual positives has no TPR and a group
with no actual negatives has no FPR; such a group is left out of that rate's difference
(and reported in ``undefined``). A difference over fewer than two defined groups is 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GroupRates:
    group: str
    size: int
    selection_rate: float
    tpr: float | None  # None: the group has no actual positives
    fpr: float | None  # None: the group has no actual negatives

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "size": self.size,
            "selection_rate": self.selection_rate,
            "tpr": self.tpr,
            "fpr": self.fpr,
        }


@dataclass(frozen=True)
class BiasReport:
    sensitive: str
    groups: tuple[GroupRates, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float | None  # None without labels
    undefined: tuple[str, ...] = field(default_factory=tuple)

    def metric(self, name: str) -> float | None:
        return {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
        }.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensitive": self.sensitive,
            "groups": [g.to_dict() for g in self.groups],
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "undefined": list(self.undefined),
        }


def _spread(values: Sequence[float | None]) -> float:
    defined = [v for v in values if v is not None]
    return max(defined) - min(defined) if len(defined) >= 2 else 0.0


def assess(
    sensitive_name: str,
    sensitive: Sequence[Any],
    predictions: Sequence[Any],
    labels: Sequence[Any] | None = None,
    positive: Any = 1,
) -> BiasReport:
    """Fairness metrics of ``predictions`` (and ``labels``, when known) by group."""
    import numpy as np

    groups = np.asarray([str(g) for g in sensitive])
    predicted = np.asarray(predictions) == positive
    actual = np.asarray(labels) == positive if labels is not None else None
    rates = []
    undefined = []
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        size = int(mask.sum())
        selection = float(predicted[mask].mean())
        tpr = fpr = None
        if actual is not None:
            positives, negatives = mask & actual, mask & ~actual
            if positives.any():
                tpr = float(predicted[positives].mean())
            else:
                undefined.append(f"{group}: no actual positives, so no TPR")
            if negatives.any():
                fpr = float(predicted[negatives].mean())
            else:
                undefined.append(f"{group}: no actual negatives, so no FPR")
        rates.append(GroupRates(group, size, selection, tpr, fpr))
    selections = [r.selection_rate for r in rates]
    high = max(selections, default=0.0)
    ratio = min(selections) / high if high > 0 else 1.0
    odds = None
    if actual is not None:
        odds = max(_spread([r.tpr for r in rates]), _spread([r.fpr for r in rates]))
    return BiasReport(
        sensitive_name,
        tuple(rates),
        _spread(selections),
        ratio,
        odds,
        tuple(undefined),
    )
