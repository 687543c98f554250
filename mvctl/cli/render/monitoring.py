"""Rich rendering of monitor reports (mvctl.monitoring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, stdout

if TYPE_CHECKING:
    from mvctl.analysis.rules import Bound
    from mvctl.monitoring.monitor import MonitorReport


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _limit(bound: Bound, value: float | None) -> str:
    """A bound's limit and mark, and what was held to it when that is not the value (a live
    rate's confidence bound)."""
    mark = {True: "", False: " ✗", None: " ?"}[bound.ok]
    held = "" if bound.compared in (None, value) else f" (by {bound.compared:.4g})"
    return f"{bound.key} {_number(bound.limit)}{mark}{held}"


def report(report: MonitorReport) -> None:
    from rich.table import Table

    styles = {"ok": "green", "warn": "yellow", "breach": "bold red", "skipped": "dim"}
    out = stdout()
    results = report.evaluation.results
    # Metric rules show their evidence in columns of their own: the live value, what the
    # served version registered, the limits it was held to, the rows and the source.
    metric = any(r.source is not None or r.bounds for r in results)
    extra = ("value", "registered", "limits", "rows", "source") if metric else ()
    table = Table(
        "monitor",
        "level",
        *extra,
        "detail",
        title=esc(f"{report.model}@{report.channel} serving {report.version}"),
        title_justify="left",
    )
    for r in results:
        level = f"[{styles[r.level]}]{esc(r.level)}[/]" if r.level in styles else esc(r.level)
        cells = (
            (
                _number(r.value),
                _number(r.registered),
                "; ".join(_limit(b, r.value) for b in r.bounds) or "-",
                "-" if r.rows is None else str(r.rows),
                {"predictions": "labelled rows", "metrics_file": "metrics file"}.get(
                    r.source or "", "-"
                ),
            )
            if metric
            else ()
        )
        table.add_row(esc(r.rule), level, *cells, esc(r.detail))
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
