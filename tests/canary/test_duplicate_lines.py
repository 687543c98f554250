"""The same request logged twice (two replicas shipping one line, a log passed twice, an
at-least-once log shipper) is counted once: doubled, n would double and the variance halve,
and an insignificant difference would become a rollback."""

from pathlib import Path
from typing import Any

from mvctl.canary import evidence
from mvctl.canary.analysis import compare
from mvctl.formats.rules import CanaryConfig, CanaryMetric
from tests.canary.test_analysis import decision, write

BASE, CAND = ("production", "v1.0.0"), ("canary", "v1.1.0")
CFG = CanaryConfig(metrics=(CanaryMetric("error_rate", primary=True),), min_samples=1000)


def _lines(duplicate_candidate: bool) -> list[dict[str, Any]]:
    out = [decision(i, CAND if i % 10 == 0 and i < 20000 else BASE, [0]) for i in range(22000)]
    base = [line for line in out if line["channel"] == "production"][:200]  # 1.0%
    cand = [line for line in out if line["channel"] == "canary"][:44]  # 2.2% of 2000
    for line in base + cand:
        line["error"], line["output"] = "RuntimeError: boom", None
    if duplicate_candidate:
        out = [x for line in out for x in ([line, line] if line["channel"] == "canary" else [line])]
    return out


def _report(paths: list[Path]) -> Any:
    return compare(evidence.read(paths), model="fraud", baseline=BASE, candidate=CAND, canary=CFG)


def test_a_duplicated_decision_line_does_not_count_twice(tmp_path: Path) -> None:
    once = _report([write(tmp_path / "once.jsonl", _lines(False))])
    twice = _report([write(tmp_path / "twice.jsonl", _lines(True))])
    assert once.verdict.kind == "continue"
    assert twice.candidate["requests"] == once.candidate["requests"] == 2000
    assert twice.verdict.kind == once.verdict.kind
    assert once.skipped.duplicate == 0 and twice.skipped.duplicate == 2000


def test_the_same_log_given_twice_does_not_change_the_verdict(tmp_path: Path) -> None:
    log = write(tmp_path / "decisions.jsonl", _lines(False))
    assert _report([log]).verdict.kind == "continue"
    again = _report([log, tmp_path / "." / "decisions.jsonl"])
    assert again.verdict.kind == "continue"
    assert again.skipped.duplicate == 0 and again.candidate["requests"] == 2000


def test_distinct_decisions_of_one_key_are_all_counted(tmp_path: Path) -> None:
    """A retried request (same key, another time) is two decisions, not a duplicate."""
    lines = [decision(0, CAND, [0]), decision(1, CAND, [0])]
    lines[1]["key"] = lines[0]["key"]
    report = _report([write(tmp_path / "retry.jsonl", lines)])
    assert report.candidate["requests"] == 2 and report.skipped.duplicate == 0
