"""A log written by another model's server (a shared /var/log path, a wrong --log, a
replica of a different deployment) whose versions share the same SemVer numbers (every
model starts at v0.1.0) is not this model's evidence: each decision line names its model,
and lines of another model, or of none, are counted in ``skipped.other``."""

import json
from pathlib import Path

import pytest

from mvctl.canary import evidence
from mvctl.canary.analysis import compare
from mvctl.formats.rules import CanaryConfig, CanaryMetric
from mvctl.serving.decisions import DecisionLog


@pytest.mark.parametrize("writer", ["churn", None])
def test_a_log_of_another_model_is_not_this_models_evidence(
    tmp_path: Path, writer: str | None
) -> None:
    path = tmp_path / "churn-decisions.jsonl"
    log = DecisionLog(path, model=writer)  # as `mvctl serve churn` writes it (or an old one)
    for i in range(3000):
        canary = i % 4 == 0
        log.decision(
            key=f"churn-{i}",
            channel="canary" if canary else "production",
            version="v0.2.0" if canary else "v0.1.0",
            latency_s=0.002,
            role="canary" if canary else "primary",
            outputs=None if canary and i % 8 == 0 else [0],
            error="RuntimeError: boom" if canary and i % 8 == 0 else None,
        )
    log.close()
    cfg = CanaryConfig(metrics=(CanaryMetric("error_rate", primary=True),), min_samples=200)
    report = compare(
        evidence.read([path]),
        model="fraud",
        baseline=("production", "v0.1.0"),
        candidate=("canary", "v0.2.0"),
        canary=cfg,
    )
    assert report.candidate["requests"] == 0, (
        f"fraud's canary judged on churn's {report.candidate['requests']} requests:"
        f" {report.verdict.kind}"
    )
    assert report.baseline["requests"] == 0 and report.skipped.other == 3000
    assert report.verdict.kind == "continue"
    if writer is not None:
        assert json.loads(path.read_text().splitlines()[0])["model"] == "churn"


def test_this_models_lines_are_its_evidence(tmp_path: Path) -> None:
    path = tmp_path / "fraud-decisions.jsonl"
    log = DecisionLog(path, model="fraud")
    for i in range(10):
        channel, version = ("canary", "v0.2.0") if i % 2 else ("production", "v0.1.0")
        role = "canary" if i % 2 else "primary"
        log.decision(
            key=f"k{i}", channel=channel, version=version, latency_s=0.001, role=role, outputs=[0]
        )
    log.close()
    cfg = CanaryConfig(metrics=(CanaryMetric("error_rate", primary=True),), min_samples=200)
    report = compare(
        evidence.read([path]),
        model="fraud",
        baseline=("production", "v0.1.0"),
        candidate=("canary", "v0.2.0"),
        canary=cfg,
    )
    assert report.candidate["requests"] == 5 and report.baseline["requests"] == 5
    assert report.skipped.other == 0
