"""Promotion gates from ``mvctl.yaml``: rules a version must pass before it takes a channel.

    gates:
      production:
        - {metric: auc, min: 0.90}                 # absolute bounds: min / max
        - {metric: auc, max_drop: 0.01}            # vs the version the channel holds now
        - {metric: f1, min_gain: 0.02, relative: true}
        - {metric: latency_p95_ms, required: true}
        - {env: python, same: minor}               # Python major.minor unchanged
        - {package: scikit-learn, version: 1.5.2}  # a package pinned
        - {package: numpy, same: true}             # a package unchanged vs the holder

Drift and bias rules (the same as monitors, see mvctl.analysis.rules) check validation data
given with ``--eval-data`` against the candidate's reference profile:

        - {drift: psi, max: 0.25}
        - {bias: demographic_parity_difference, max: 0.10}

A gate on a metric the candidate lacks fails closed; so does a drift or bias gate without
evaluation data, and a rule mvctl does not know. Rules arrive typed (mvctl.formats.rules);
each kind is a small class in :data:`KINDS`, keyed by the rules' ``kind`` names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from mvctl.formats.manifest import Manifest
from mvctl.formats.rules import DataRule, EnvRule, MetricRule, PackageRule, Rule, parse_rule
from mvctl.formats.values import flatten


@dataclass(frozen=True)
class GateResult:
    gate: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"gate": self.gate, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class GateReport:
    model: str
    version: str
    channel: str
    holder: str | None
    results: tuple[GateResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.results)

    def failures(self) -> list[GateResult]:
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "channel": self.channel,
            "holder": self.holder,
            "passed": self.passed,
            "gates": [r.to_dict() for r in self.results],
        }


def _metric(metrics: Mapping[str, Any], path: str) -> float | None:
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            node = flatten(metrics).get(path)
            break
        node = node[part]
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)
    return None


def _fmt(value: float) -> str:
    return f"{value:.6g}"


NOTHING_HELD = "the channel holds no version yet: nothing to compare"

DataCheck = Callable[[DataRule], GateResult]
"""Evaluates one drift or bias rule on evaluation data."""


@dataclass(frozen=True)
class Subject:
    """What a gate judges: the candidate's manifest, the holder's (None when the channel
    holds nothing) and, with evaluation data, the check drift and bias rules run."""

    candidate: Manifest
    holder: Manifest | None
    data_check: DataCheck | None = None


RuleT = TypeVar("RuleT", contravariant=True)


class GateKind(Protocol[RuleT]):
    """One kind of gate, judging the rules of one class (its ``kind`` names it)."""

    def check(self, rule: RuleT, subject: Subject) -> list[GateResult]: ...


def _metric_label(key: str, path: str, bound: float, relative: bool) -> str:
    rel = " (relative)" if relative else ""
    return {
        "min": f"{path} >= {bound}",
        "max": f"{path} <= {bound}",
        "max_drop": f"{path} drops at most {bound}{rel}",
        "min_gain": f"{path} gains at least {bound}{rel}",
    }[key]


class MetricGate:
    """``{metric: PATH, min|max|max_drop|min_gain|required: ...}``: the manifest's metrics."""

    def check(self, rule: MetricRule, subject: Subject) -> list[GateResult]:
        path = rule.metric
        if rule.monitor_only():  # only a hand-made rule: mvctl.yaml's schema refuses them
            keys = " and ".join(rule.monitor_only())
            return [GateResult(f"{path}: {keys}", False, f"{keys} bound monitors, not gates")]
        value = _metric(subject.candidate.metrics, path)
        results = [self._one(key, bound, rule, value, subject) for key, bound in rule.bounds()]
        if rule.required is not None:
            label = f"{path} is reported"
            if value is None:
                results.append(GateResult(label, False, f"metric {path} is missing"))
            else:
                results.append(GateResult(label, True, _fmt(value)))
        if not results:
            return [GateResult(f"{path}: ?", False, "rule has no min, max, max_drop, min_gain")]
        return results

    def _one(
        self, key: str, bound: float, rule: MetricRule, value: float | None, s: Subject
    ) -> GateResult:
        path = rule.metric
        label = _metric_label(key, path, bound, rule.relative)
        if value is None:
            return GateResult(label, False, f"metric {path} is missing")
        if key == "min":
            return GateResult(label, value >= bound, f"{_fmt(value)} vs min {bound}")
        if key == "max":
            return GateResult(label, value <= bound, f"{_fmt(value)} vs max {bound}")
        return _comparison(label, key, float(bound), rule.relative, path, value, s.holder)


def _comparison(
    label: str,
    key: str,
    bound: float,
    relative: bool,
    path: str,
    value: float,
    holder: Manifest | None,
) -> GateResult:
    if holder is None:
        return GateResult(label, True, NOTHING_HELD)
    old = _metric(holder.metrics, path)
    if old is None:
        return GateResult(label, True, f"the current holder has no {path}: nothing to compare")
    change = value - old
    scale = abs(old) if relative else 1.0
    if relative and scale == 0:
        return GateResult(label, False, f"relative change from {_fmt(old)} is undefined")
    measured = change / scale
    shown = f"{_fmt(old)} -> {_fmt(value)} ({measured:+.4g}{'' if not relative else ' rel'})"
    if key == "max_drop":
        return GateResult(label, -measured <= bound + 1e-12, shown)
    return GateResult(label, measured >= bound - 1e-12, shown)


class EnvGate:
    """``{env: python, same: major|minor|patch}``: Python unchanged vs the holder."""

    def check(self, rule: EnvRule, subject: Subject) -> list[GateResult]:
        label = f"{rule.env} {rule.same} version unchanged"
        if subject.holder is None:
            return [GateResult(label, True, NOTHING_HELD)]
        parts = {"major": 1, "minor": 2, "patch": 3}[rule.same]
        new = subject.candidate.python.split(".")[:parts]
        old = subject.holder.python.split(".")[:parts]
        return [GateResult(label, new == old, f"{'.'.join(old)} -> {'.'.join(new)}")]


class PackageGate:
    """``{package: NAME, version: V}`` or ``{package: NAME, same: true}``."""

    def check(self, rule: PackageRule, subject: Subject) -> list[GateResult]:
        # Deferred: environment pulls in tomllib and platform, ~10 ms on every rollback.
        from mvctl.registry.environment import normalise

        name = normalise(rule.package)
        have = subject.candidate.packages.get(name)
        if rule.version is not None:
            want = rule.version
            return [GateResult(f"{name} == {want}", have == want, f"{name} {have or 'missing'}")]
        if rule.same:
            return [self._same(name, have, subject.holder)]
        return [GateResult(f"{name}: ?", False, "package rules take version: X or same: true")]

    def _same(self, name: str, have: str | None, holder: Manifest | None) -> GateResult:
        label = f"{name} unchanged"
        # A misspelled package is missing on both sides, and None == None must not pass.
        if holder is None:
            if have is None:
                detail = f"package {name} is not in the candidate's environment (a typo?)"
                return GateResult(label, False, detail)
            return GateResult(label, True, NOTHING_HELD)
        old = holder.packages.get(name)
        if have is None and old is None:
            detail = f"package {name} is in neither the candidate's nor the holder's environment"
            return GateResult(label, False, f"{detail} (a typo?)")
        return GateResult(label, have == old, f"{old or 'missing'} -> {have or 'missing'}")


class DataGate:
    """``{drift: ...}`` and ``{bias: ...}``: a monitor rule run on evaluation data."""

    def check(self, rule: DataRule, subject: Subject) -> list[GateResult]:
        if subject.data_check is None:
            label = f"{rule.kind}: {rule.measure}"
            return [GateResult(label, False, "needs evaluation data (--eval-data)")]
        return [subject.data_check(rule)]


KINDS: dict[str, GateKind[Any]] = {
    "drift": DataGate(),
    "bias": DataGate(),
    "metric": MetricGate(),
    "env": EnvGate(),
    "package": PackageGate(),
}
"""Gate kinds by the ``kind`` of the rules they judge (schema: formats.schema.GATE_RULES)."""


def _typed(manifest: Manifest | Mapping[str, Any]) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else Manifest.from_dict(manifest)


def _rule(rule: Rule | Mapping[str, Any]) -> Rule | str:
    """``rule`` typed; a hand-made mapping (the Python API, tests) is parsed, and what is no
    rule becomes the reason it fails closed."""
    if isinstance(rule, Mapping):
        try:
            return parse_rule(rule)
        except ValueError as exc:
            return str(exc)
    return rule if isinstance(rule, Rule) else "unknown gate"


def evaluate(
    rules: Sequence[Rule | Mapping[str, Any]],
    candidate: Manifest | Mapping[str, Any],
    holder: Manifest | Mapping[str, Any] | None,
    data_check: DataCheck | None = None,
) -> tuple[GateResult, ...]:
    """Check ``candidate`` (a manifest) against ``rules``; ``holder`` is the manifest of the
    version the channel holds now, or None."""
    subject = Subject(_typed(candidate), None if holder is None else _typed(holder), data_check)
    results: list[GateResult] = []
    for given in rules:
        rule = _rule(given)
        kind = KINDS.get(rule.kind) if not isinstance(rule, str) else None
        if kind is None:
            why = rule if isinstance(rule, str) else "unknown gate"
            results.append(GateResult(str(given), False, f"{why} (failing closed)"))
        else:
            results.extend(kind.check(rule, subject))
    return tuple(results)
