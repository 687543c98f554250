"""Rich rendering of monitor reports (mvctl.monitoring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, stdout

if TYPE_CHECKING:
    from mvctl.monitoring.monitor import MonitorReport


def report(report: MonitorReport) -> None:
    from rich.table import Table

    styles = {"ok": "green", "warn": "yellow", "breach": "bold red", "skipped": "dim"}
    out = stdout()
    table = Table(
        "monitor",
        "level",
        "detail",
        title=esc(f"{report.model}@{report.channel} serving {report.version}"),
        title_justify="left",
    )
    for r in report.evaluation.results:
        level = f"[{styles[r.level]}]{esc(r.level)}[/]" if r.level in styles else esc(r.level)
        table.add_row(esc(r.rule), level, esc(r.detail))
    out.print(table)
    if report.evaluation.drift:
        drift = Table(
            "column",
            "kind",
            "PSI",
            "test",
            "statistic",
            "p-value",
            "rows",
            title="drift by column",
            title_justify="left",
        )
        for d in report.evaluation.drift:
            drift.add_row(
                esc(d.column),
                esc(d.kind),
                f"{d.psi:.4f}",
                esc(d.test),
                f"{d.statistic:.4g}",
                f"{d.p_value:.3g}",
                str(d.rows),
            )
        out.print(drift)
    for b in report.evaluation.bias:
        groups = Table(
            "group",
            "size",
            "selection",
            "TPR",
            "FPR",
            title=f"bias by {esc(b.sensitive)}",
            title_justify="left",
        )
        for g in b.groups:
            groups.add_row(
                esc(g.group),
                str(g.size),
                f"{g.selection_rate:.3f}",
                "-" if g.tpr is None else f"{g.tpr:.3f}",
                "-" if g.fpr is None else f"{g.fpr:.3f}",
            )
        out.print(groups)
    for note in report.notes:
        out.print(f"[dim]note: {esc(note)}[/]")
