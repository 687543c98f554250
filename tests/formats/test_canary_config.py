"""The canary: entry of mvctl.yaml: typed with defaults, and refused fail-closed (unknown
keys and metric names, bad steps, two primaries) with the key and the line."""

from __future__ import annotations

import pytest

from mvctl.errors import OperationalError
from mvctl.formats import config
from mvctl.formats.rules import CanaryConfig, CanaryMetric

GOOD = """version: 1
models:
  fraud:
    canary:
      steps: [5, 25, 50]
      max_failed: 2
      alpha: 0.05
      min_samples: 1000
      metrics:
        - {metric: false_positive_rate, primary: true}
        - {metric: error_rate}
        - {metric: latency_p99_ms, max: 50}
"""


def test_the_entry_is_typed() -> None:
    canary = config.loads(GOOD).model("fraud").canary
    assert canary.steps == (5, 25, 50) and canary.max_failed == 2
    assert canary.alpha == 0.05 and canary.min_samples == 1000
    assert canary.primary == CanaryMetric("false_positive_rate", primary=True)
    assert canary.metrics[2] == CanaryMetric("latency_p99_ms", max=50)
    assert canary.metrics[2].threshold and not canary.metrics[1].threshold


def test_defaults_without_an_entry_and_the_first_tested_metric_as_primary() -> None:
    assert config.loads("version: 1\nmodels: {fraud: {}}\n").model("fraud").canary == (
        CanaryConfig()
    )
    text = GOOD.replace(", primary: true", "").replace("false_positive_rate", "psi")
    assert config.loads(text).model("fraud").canary.primary == CanaryMetric("error_rate")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("false_positive_rate", "false_positiv_rate", "line 10: .* unknown canary metric"),
        ("max_failed", "max_fails", "line 6: .*canary.max_fails: unknown key"),
        ("[5, 25, 50]", "[5, 50, 25]", "steps\\[2\\]: steps must increase"),
        ("[5, 25, 50]", "[0, 50]", "steps\\[0\\]: a step is a percentage"),
        ("[5, 25, 50]", "5", "steps: must be a list"),
        ("alpha: 0.05", "alpha: 1.5", "alpha: must be a number between 0 and 1"),
        ("min_samples: 1000", "min_samples: 0", "min_samples: must be a whole number >= 1"),
        ("{metric: error_rate}", "{metric: error_rate, primary: true}", "only one metric"),
        ("{metric: error_rate}", "{metric: error_rate, mx: 1}", "metrics\\[1\\].mx: unknown"),
        ("false_positive_rate, primary", "agreement, primary", "agreement has no sequential"),
        ("{metric: error_rate}", "{primary: true}", "metrics\\[1\\]: a canary metric needs"),
    ],
)
def test_mistakes_are_refused_with_key_and_line(old: str, new: str, message: str) -> None:
    with pytest.raises(OperationalError, match=message.replace("line ", "mvctl.yaml:")):
        config.loads(GOOD.replace(old, new))
