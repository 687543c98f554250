"""Gate and monitor rules as typed values: what a rule mapping in ``mvctl.yaml`` means once
the schema (mvctl.formats.schema) has accepted it. One frozen dataclass per kind; ``kind`` is
the key that names it in a rule mapping, and keys the tables of the code that evaluates it
(mvctl.channels.gates, mvctl.analysis.rules).

A field the mapping leaves out is None (or the kind's default) here; the defaults that need
statistics (a PSI limit, an alpha) belong to mvctl.analysis.rules, not to the format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from mvctl.formats import schema
from mvctl.formats.schema import (
    CANARY_UNTESTED,
    BiasMetric,
    CanaryMetricName,
    Correction,
    DriftTest,
    VersionPart,
)

__all__ = [
    "KINDS",
    "BiasRule",
    "CanaryConfig",
    "CanaryMetric",
    "DataRule",
    "DriftRule",
    "EnvRule",
    "MetricRule",
    "PackageRule",
    "Rule",
    "parse_canary",
    "parse_rule",
]


class _Written:
    """The common face of a parsed rule: its kind name, as mvctl.yaml writes it."""

    kind: ClassVar[str]


@dataclass(frozen=True)
class MetricRule(_Written):
    """A gate's ``{metric: PATH, min|max|max_drop|min_gain: BOUND, relative: BOOL,
    required: BOOL}``, or a monitor's ``{metric: NAME, min|max|max_increase|max_decrease:
    BOUND, min_rows: N}`` (max_increase and max_decrease are fractions of the value the
    served version registered; min_rows, the labelled rows a live metric needs)."""

    kind: ClassVar[str] = "metric"
    metric: str
    min: float | None = None
    max: float | None = None
    max_drop: float | None = None
    min_gain: float | None = None
    relative: bool = False
    required: bool | None = None  # given at all, even false: the metric must be reported
    max_increase: float | None = None
    max_decrease: float | None = None
    min_rows: int | None = None  # None: mvctl.analysis.rules' default

    def bounds(self) -> tuple[tuple[str, float], ...]:
        """A gate's bounds given, by key, in the schema's order (min, max, max_drop,
        min_gain)."""
        given = (
            ("min", self.min),
            ("max", self.max),
            ("max_drop", self.max_drop),
            ("min_gain", self.min_gain),
        )
        return tuple((key, bound) for key, bound in given if bound is not None)

    def monitor_bounds(self) -> tuple[tuple[str, float], ...]:
        """A monitor's bounds given, by key (min, max, max_increase, max_decrease)."""
        given = (
            ("min", self.min),
            ("max", self.max),
            ("max_increase", self.max_increase),
            ("max_decrease", self.max_decrease),
        )
        return tuple((key, bound) for key, bound in given if bound is not None)

    def monitor_only(self) -> tuple[str, ...]:
        """The keys given that only a monitor takes (a gate given one fails closed)."""
        given = (
            ("max_increase", self.max_increase),
            ("max_decrease", self.max_decrease),
            ("min_rows", self.min_rows),
        )
        return tuple(key for key, value in given if value is not None)


@dataclass(frozen=True)
class EnvRule(_Written):
    """``{env: python, same: major|minor|patch}``."""

    kind: ClassVar[str] = "env"
    env: Literal["python"]
    same: VersionPart = "minor"


@dataclass(frozen=True)
class PackageRule(_Written):
    """``{package: NAME, version: V}`` or ``{package: NAME, same: true}``."""

    kind: ClassVar[str] = "package"
    package: str
    version: str | None = None
    same: bool = False


@dataclass(frozen=True)
class DriftRule(_Written):
    """``{drift: psi|ks|chi2|dataset, max, warn, alpha, correction, columns, max_share, psi}``."""

    kind: ClassVar[str] = "drift"
    drift: DriftTest
    max: float | None = None
    warn: float | None = None
    alpha: float | None = None
    correction: Correction = "none"
    columns: tuple[str, ...] = ()  # none: every profiled column
    max_share: float | None = None
    psi: float | None = None

    @property
    def measure(self) -> str:
        return self.drift


@dataclass(frozen=True)
class BiasRule(_Written):
    """``{bias: METRIC, min|max: BOUND}``."""

    kind: ClassVar[str] = "bias"
    bias: BiasMetric
    min: float | None = None
    max: float | None = None

    @property
    def measure(self) -> str:
        return self.bias


Rule = MetricRule | EnvRule | PackageRule | DriftRule | BiasRule
DataRule = DriftRule | BiasRule
"""The rules evaluated on data (monitors' live data, gates' evaluation data)."""

_CLASSES: tuple[type[Rule], ...] = (MetricRule, EnvRule, PackageRule, DriftRule, BiasRule)
KINDS: dict[str, type[Rule]] = {cls.kind: cls for cls in _CLASSES}
"""Rule classes by the key that names their kind (schema: formats.schema.GATE_RULES)."""


def parse_rule(rule: Mapping[str, Any]) -> Rule:
    """The typed rule ``rule`` (a mapping from mvctl.yaml) is. A mapping the schema accepted
    always parses; any other raises ValueError naming its first problem."""
    problem = schema.rule_problem(dict(rule))
    if problem is not None:
        raise ValueError(f"not a rule: {problem}")
    [kind] = schema.kinds_of(rule, KINDS)
    # The schema allows exactly the fields' names as keys; its only lists are columns.
    values: dict[str, Any] = {
        key: tuple(v) if isinstance(v, list) else v for key, v in rule.items()
    }
    return KINDS[kind](**values)


# --- canary analysis (mvctl.canary) ----------------------------------------------------------


@dataclass(frozen=True)
class CanaryMetric:
    """``{metric: NAME, primary: BOOL, min|max: BOUND, effect: SIZE}`` under ``canary.metrics``.
    ``min``/``max`` make it a threshold metric too; ``effect`` is the relative difference the
    sequential test is tuned to find (its mixture's scale; None: the analysis's default)."""

    metric: CanaryMetricName
    primary: bool = False
    min: float | None = None
    max: float | None = None
    effect: float | None = None

    @property
    def threshold(self) -> bool:
        return self.min is not None or self.max is not None


@dataclass(frozen=True)
class CanaryConfig:
    """A model's ``canary:`` entry: the weights to walk through, how many failed threshold
    checks roll back, the error level of the tests, the samples each arm needs before any
    verdict (and each step before the next), and the metrics."""

    steps: tuple[float, ...] = ()
    max_failed: int = 2
    alpha: float = 0.05
    min_samples: int = 1000
    metrics: tuple[CanaryMetric, ...] = (CanaryMetric("error_rate", primary=True),)

    @property
    def primary(self) -> CanaryMetric | None:
        """The metric a promotion needs to be better: the one marked, else the first listed
        that has a sequential test."""
        marked = [m for m in self.metrics if m.primary]
        if marked:
            return marked[0]
        return next((m for m in self.metrics if m.metric not in CANARY_UNTESTED), None)


def parse_canary(entry: Mapping[str, Any] | None) -> CanaryConfig:
    """The typed ``canary:`` entry the schema accepted (None: the defaults)."""
    if not entry:
        return CanaryConfig()
    default = CanaryConfig()
    metrics = entry.get("metrics")
    return CanaryConfig(
        steps=tuple(entry.get("steps", ())),
        max_failed=entry.get("max_failed", default.max_failed),
        alpha=entry.get("alpha", default.alpha),
        min_samples=entry.get("min_samples", default.min_samples),
        metrics=tuple(CanaryMetric(**m) for m in metrics) if metrics else default.metrics,
    )
