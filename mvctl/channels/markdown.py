"""Markdown for reviewers of a promotion: the gate report a pull request shows."""

from __future__ import annotations

from mvctl.channels.gates import GateReport
from mvctl.lineage.markdown import cell


def gates_markdown(report: GateReport) -> str:
    verdict = "all gates pass" if report.passed else f"{len(report.failures())} gate(s) FAIL"
    holder = report.holder or "nothing yet"
    lines = [
        f"### Gates: {report.model} `{report.version}` → {report.channel} ({verdict})",
        "",
        f"The channel holds {holder}.",
        "",
    ]
    if not report.results:
        return "\n".join([*lines, f"No gates are configured for {report.channel}.", ""])
    lines += ["| gate | result | detail |", "|---|---|---|"]
    for r in report.results:
        result = "✅ pass" if r.ok else "❌ **fail**"
        lines.append(f"| {cell(r.gate)} | {result} | {cell(r.detail)} |")
    return "\n".join([*lines, ""])
