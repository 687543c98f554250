"""Typed gate and monitor rules: what a rule mapping the schema accepts parses to, and refusal."""

from __future__ import annotations

from typing import Any

import pytest

from mvctl.channels.gates import evaluate
from mvctl.formats import config, schema
from mvctl.formats.rules import (
    KINDS,
    BiasRule,
    DriftRule,
    EnvRule,
    MetricRule,
    PackageRule,
    parse_rule,
)


@pytest.mark.parametrize(
    ("written", "parsed"),
    [
        ({"metric": "auc", "min": 0.9}, MetricRule("auc", min=0.9)),
        (
            {"metric": "f1", "min_gain": 0.02, "relative": True, "required": False},
            MetricRule("f1", min_gain=0.02, relative=True, required=False),
        ),
        ({"env": "python"}, EnvRule("python", "minor")),
        ({"package": "numpy", "same": True}, PackageRule("numpy", same=True)),
        ({"package": "torch", "version": "2.1"}, PackageRule("torch", version="2.1")),
        (
            {"drift": "ks", "alpha": 0.01, "correction": "fdr", "columns": ["a", "b"]},
            DriftRule("ks", alpha=0.01, correction="fdr", columns=("a", "b")),
        ),
        (
            {"bias": "demographic_parity_ratio", "min": 0.8},
            BiasRule("demographic_parity_ratio", 0.8),
        ),
    ],
)
def test_a_rule_parses_to_its_kind(written: dict[str, Any], parsed: object) -> None:
    rule = parse_rule(written)
    assert rule == parsed and hash(rule) == hash(parsed)
    assert rule != written  # a parsed rule is a value of its own, not its mapping
    assert rule.kind in written


def test_bounds_keep_their_order_and_their_written_type() -> None:
    rule = parse_rule({"metric": "auc", "max_drop": 1, "min": 0.9, "required": True})
    assert isinstance(rule, MetricRule)
    assert rule.bounds() == (("min", 0.9), ("max_drop", 1))
    assert isinstance(rule.bounds()[1][1], int)  # labels print "1", not "1.0"


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ({"metric": "auc", "min": "high"}, "min: must be a number"),
        ({"metric": "auc"}, "a metric rule needs one of"),
        ({"drift": "psi", "metric": "auc"}, "a rule has one kind"),
        ({"metrc": "auc"}, "did you mean 'metric'"),
        ({"env": "ruby"}, "env: must be 'python'"),
    ],
)
def test_what_the_schema_refuses_does_not_parse(mapping: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_rule(mapping)
    assert parse_rule({"metric": "auc", "min": 0.9}) != mapping


def test_the_kinds_are_the_schemas() -> None:
    assert set(KINDS) == set(schema.GATE_RULES)
    assert set(schema.MONITOR_RULES) <= set(KINDS)


def test_the_config_carries_typed_rules() -> None:
    cfg = config.loads(
        "version: 1\nmodels:\n  fraud:\n    gates:\n      production: [{metric: auc, min: 0.9}]\n"
        "    monitors:\n      production: [{drift: psi, max: 0.2}]\n"
    )
    fraud = cfg.model("fraud")
    assert fraud.gates("production") == [MetricRule("auc", min=0.9)]
    assert fraud.monitors("production") == [DriftRule("psi", max=0.2)]
    assert fraud.has_rules() == ("gates", "monitors")


def test_a_hand_made_mapping_that_is_no_rule_fails_closed_with_its_reason() -> None:
    [result] = evaluate([{"metric": "auc", "min": "high"}], {"metrics": {"auc": 1}}, None)
    assert not result.ok
    assert result.detail == "not a rule: min: must be a number (failing closed)"
    [result] = evaluate(["auc > 0.9"], {}, None)
    assert (result.gate, result.ok, result.detail) == (
        "auc > 0.9",
        False,
        "unknown gate (failing closed)",
    )
