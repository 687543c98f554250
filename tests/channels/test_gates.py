"""Gate rules on small manifests: bounds, comparisons with the holder, fail-closed cases."""

from __future__ import annotations

from typing import Any

import pytest

from mvctl.channels.gates import evaluate


def manifest(metrics: dict[str, Any], python: str = "3.11.7", **packages: str) -> dict[str, Any]:
    return {"metrics": metrics, "environment": {"python": python, "packages": packages}}


def outcome(rules: list[Any], new: dict[str, Any], old: dict[str, Any] | None = None) -> list[bool]:
    return [r.ok for r in evaluate(rules, new, old)]


def test_absolute_bounds_and_nested_metrics() -> None:
    new = manifest({"auc": 0.91, "latency": {"p95_ms": 40}})
    assert outcome([{"metric": "auc", "min": 0.9}], new) == [True]
    assert outcome([{"metric": "auc", "min": 0.95}], new) == [False]
    assert outcome([{"metric": "latency.p95_ms", "max": 50}], new) == [True]
    assert outcome([{"metric": "latency.p95_ms", "max": 30}], new) == [False]
    assert outcome([{"metric": "auc", "min": 0.9, "max": 0.905}], new) == [True, False]


def test_comparison_with_the_holder() -> None:
    old = manifest({"auc": 0.90, "f1": 0.50})
    rule = {"metric": "auc", "max_drop": 0.01}
    assert outcome([rule], manifest({"auc": 0.891}), old) == [True]
    assert outcome([rule], manifest({"auc": 0.889}), old) == [False]
    assert outcome([rule], manifest({"auc": 0.80})) == [True]  # no holder: nothing to compare
    relative = {"metric": "f1", "min_gain": 0.1, "relative": True}
    assert outcome([relative], manifest({"f1": 0.55}), old) == [True]
    assert outcome([relative], manifest({"f1": 0.54}), old) == [False]
    assert outcome([{"metric": "f1", "min_gain": 0.05}], manifest({"f1": 0.56}), old) == [True]
    # The holder never reported the metric: nothing to compare with, so it passes.
    assert outcome([rule], manifest({"auc": 0.5}), manifest({})) == [True]


def test_missing_metrics_and_unknown_rules_fail_closed() -> None:
    new = manifest({"auc": 0.91})
    assert outcome([{"metric": "recall", "min": 0.1}], new) == [False]
    assert outcome([{"metric": "recall", "required": True}], new) == [False]
    assert outcome([{"metric": "auc", "required": True}], new) == [True]
    assert outcome([{"metric": "auc", "min": "high"}], new) == [False]
    assert outcome([{"metric": "auc"}], new) == [False]
    assert outcome([{"drift": "psi"}], new) == [False]
    assert outcome(["auc > 0.9"], new) == [False]
    results = evaluate([{"metric": "recall", "max_drop": 0.1}], new, manifest({"recall": 1}))
    assert results[0].detail == "metric recall is missing"


@pytest.mark.parametrize(
    ("same", "old", "new", "ok"),
    [
        ("minor", "3.11.7", "3.11.9", True),
        ("minor", "3.11.7", "3.12.0", False),
        ("major", "3.11.7", "3.12.0", True),
        ("patch", "3.11.7", "3.11.9", False),
    ],
)
def test_python_rule(same: str, old: str, new: str, ok: bool) -> None:
    rule = {"env": "python", "same": same}
    assert outcome([rule], manifest({}, python=new), manifest({}, python=old)) == [ok]


def test_package_rules() -> None:
    new = manifest({}, numpy="2.1.0", **{"scikit-learn": "1.5.2"})
    old = manifest({}, numpy="2.0.0", **{"scikit-learn": "1.5.2"})
    assert outcome([{"package": "scikit-learn", "version": "1.5.2"}], new) == [True]
    assert outcome([{"package": "Scikit_Learn", "version": "1.5.1"}], new) == [False]
    assert outcome([{"package": "scikit-learn", "same": True}], new, old) == [True]
    assert outcome([{"package": "numpy", "same": True}], new, old) == [False]
    assert outcome([{"package": "torch", "version": "2.0"}], new) == [False]
