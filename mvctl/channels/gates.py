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

Drift and bias rules (the same as monitors, see mvctl.monitor) check validation data given
with ``--eval-data`` against the candidate's reference profile:

        - {drift: psi, max: 0.25}
        - {bias: demographic_parity_difference, max: 0.10}

A gate on a metric the candidate lacks fails closed; so does a drift or bias gate without
evaluation data, and a rule mvctl does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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


def _metric_rule(
    rule: Mapping[str, Any], candidate: Mapping[str, Any], holder: Mapping[str, Any] | None
) -> list[GateResult]:
    path = str(rule["metric"])
    value = _metric(candidate.get("metrics") or {}, path)
    results: list[GateResult] = []
    checks = [k for k in ("min", "max", "max_drop", "min_gain", "required") if k in rule]
    if not checks:
        return [GateResult(f"{path}: ?", False, "rule has no min, max, max_drop, min_gain")]
    relative = bool(rule.get("relative", False))
    for key in checks:
        bound = rule[key]
        label = {
            "min": f"{path} >= {bound}",
            "max": f"{path} <= {bound}",
            "max_drop": f"{path} drops at most {bound}{' (relative)' if relative else ''}",
            "min_gain": f"{path} gains at least {bound}{' (relative)' if relative else ''}",
            "required": f"{path} is reported",
        }[key]
        if value is None:
            results.append(GateResult(label, False, f"metric {path} is missing"))
            continue
        if key == "required":
            results.append(GateResult(label, True, _fmt(value)))
        elif not isinstance(bound, int | float) or isinstance(bound, bool):
            results.append(GateResult(label, False, f"{key} must be a number"))
        elif key == "min":
            results.append(GateResult(label, value >= bound, f"{_fmt(value)} vs min {bound}"))
        elif key == "max":
            results.append(GateResult(label, value <= bound, f"{_fmt(value)} vs max {bound}"))
        else:
            results.append(_comparison(label, key, float(bound), relative, path, value, holder))
    return results


def _comparison(
    label: str,
    key: str,
    bound: float,
    relative: bool,
    path: str,
    value: float,
    holder: Mapping[str, Any] | None,
) -> GateResult:
    if holder is None:
        return GateResult(label, True, "the channel holds no version yet: nothing to compare")
    old = _metric(holder.get("metrics") or {}, path)
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


def _python(manifest: Mapping[str, Any]) -> list[str]:
    return str((manifest.get("environment") or {}).get("python", "")).split(".")


def _env_rule(
    rule: Mapping[str, Any], candidate: Mapping[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    what, same = str(rule["env"]), str(rule.get("same", "minor"))
    label = f"{what} {same} version unchanged"
    if what != "python" or same not in ("major", "minor", "patch"):
        return GateResult(label, False, "only {env: python, same: major|minor|patch} is known")
    if holder is None:
        return GateResult(label, True, "the channel holds no version yet: nothing to compare")
    parts = {"major": 1, "minor": 2, "patch": 3}[same]
    new, old = _python(candidate)[:parts], _python(holder)[:parts]
    return GateResult(label, new == old, f"{'.'.join(old)} -> {'.'.join(new)}")


def _package_rule(
    rule: Mapping[str, Any], candidate: Mapping[str, Any], holder: Mapping[str, Any] | None
) -> GateResult:
    from mvctl.registry.environment import normalise

    name = normalise(str(rule["package"]))
    packages = (candidate.get("environment") or {}).get("packages") or {}
    have = packages.get(name)
    if "version" in rule:
        want = str(rule["version"])
        return GateResult(f"{name} == {want}", have == want, f"{name} {have or 'missing'}")
    if rule.get("same"):
        label = f"{name} unchanged"
        # A misspelled package is missing on both sides, and None == None must not pass.
        if holder is None:
            if have is None:
                return GateResult(
                    label, False, f"package {name} is not in the candidate's environment (a typo?)"
                )
            return GateResult(label, True, "the channel holds no version yet: nothing to compare")
        old = ((holder.get("environment") or {}).get("packages") or {}).get(name)
        if have is None and old is None:
            detail = f"package {name} is in neither the candidate's nor the holder's environment"
            return GateResult(label, False, f"{detail} (a typo?)")
        return GateResult(label, have == old, f"{old or 'missing'} -> {have or 'missing'}")
    return GateResult(f"{name}: ?", False, "package rules take version: X or same: true")


DataCheck = Callable[[Mapping[str, Any]], GateResult]
"""Evaluates one drift or bias rule on evaluation data."""


def evaluate(
    rules: list[Any],
    candidate: Mapping[str, Any],
    holder: Mapping[str, Any] | None,
    data_check: DataCheck | None = None,
) -> tuple[GateResult, ...]:
    """Check ``candidate`` (a manifest) against ``rules``; ``holder`` is the manifest of the
    version the channel holds now, or None."""
    results: list[GateResult] = []
    for rule in rules:
        if isinstance(rule, Mapping) and ("drift" in rule or "bias" in rule):
            kind = "drift" if "drift" in rule else "bias"
            if data_check is None:
                label = f"{kind}: {rule[kind]}"
                results.append(GateResult(label, False, "needs evaluation data (--eval-data)"))
            else:
                results.append(data_check(rule))
            continue
        if isinstance(rule, Mapping) and "metric" in rule:
            results.extend(_metric_rule(rule, candidate, holder))
        elif isinstance(rule, Mapping) and "env" in rule:
            results.append(_env_rule(rule, candidate, holder))
        elif isinstance(rule, Mapping) and "package" in rule:
            results.append(_package_rule(rule, candidate, holder))
        else:
            results.append(GateResult(str(rule), False, "unknown gate (failing closed)"))
    return tuple(results)
