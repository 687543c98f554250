"""Rendering of canary analyses (mvctl.canary): a Rich report for people, Markdown for a pull
request or a chat message, one line per round for ``canary watch``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, stdout
from mvctl.cli.render import channels as render_channels

if TYPE_CHECKING:
    from mvctl.canary.analysis import CanaryReport, MetricResult
    from mvctl.canary.apply import Round

VERDICT_WORDS = {
    "promote": "promote",
    "next_step": "next step",
    "continue": "continue",
    "rollback": "roll back",
}
_STYLES = {
    "worse": "bold red",
    "failed": "bold red",
    "better": "green",
    "too few samples": "dim",
    "reported": "dim",
}


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _heading(report: CanaryReport) -> str:
    base, cand = report.baseline, report.candidate
    at = f" at {report.weight:g}%" if report.weight is not None else ""
    return (
        f"{report.model}@{report.channel} {cand['version']}{at} vs production "
        f"{base['version']}: {cand['requests']} vs {base['requests']} requests, "
        f"{cand['labelled']} vs {base['labelled']} labelled"
    )


def _verdict_line(report: CanaryReport) -> str:
    verdict = report.verdict
    word = VERDICT_WORDS[verdict.kind]
    if verdict.kind == "next_step" and verdict.next_weight is not None:
        word += f" ({verdict.weight:g}% → {verdict.next_weight:g}%)"
    return f"{word}: {'; '.join(verdict.reasons)}"


def _test_cell(m: MetricResult) -> str:
    if m.worse is None:
        return "threshold" if m.bound else "-"
    return f"mSPRT {m.worse.kind}"


def _bound(m: MetricResult) -> str:
    if not m.bound:
        return "-"
    shown = ", ".join(f"{k} {v:g}" for k, v in m.bound.items())
    return f"{shown} ({m.failed_checks}/{m.windows} failed)"


def report(found: Round) -> None:
    from rich.table import Table

    rep = found.report
    out = stdout()
    table = Table(
        "metric",
        "production",
        rep.channel,
        "n",
        "test",
        "p worse",
        "p better",
        "threshold",
        "verdict",
        title=esc(_heading(rep)),
        title_justify="left",
    )
    for m in rep.metrics:
        style = _STYLES.get(m.verdict)
        verdict = f"[{style}]{esc(m.verdict)}[/]" if style else esc(m.verdict)
        name = esc(m.metric) + (" (primary)" if m.primary else "")
        table.add_row(
            name if m.guarded else f"[dim]{name}[/]",
            _value(m.baseline),
            _value(m.candidate),
            f"{m.n_baseline}/{m.n_candidate}",
            _test_cell(m),
            _p(m.p_worse),
            _p(m.p_better),
            esc(_bound(m)),
            verdict,
        )
    out.print(table)
    color = {"rollback": "bold red", "promote": "bold green"}.get(rep.verdict.kind, "bold")
    out.print(f"[{color}]{esc(_verdict_line(rep))}[/]")
    out.print(
        f"[dim]always-valid tests at alpha {rep.alpha:g} shared by {rep.tests} "
        f"(Bonferroni); at least {rep.min_samples} samples per arm; "
        f"skipped lines: {esc(_skipped(rep))}[/]"
    )
    if found.applied is not None:
        if not found.applied.moves:
            out.print("[dim]--apply: nothing to do[/]")
        for move in found.applied.moves:
            render_channels.move(move, as_json=False)


def _skipped(rep: CanaryReport) -> str:
    return ", ".join(f"{k} {v}" for k, v in rep.skipped.to_dict().items()) or "none"


def markdown(found: Round) -> str:
    """The report as Markdown (every value from the evidence escaped for a table cell)."""
    rep = found.report

    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = [
        f"### Canary analysis: {cell(_heading(rep))}",
        "",
        f"**{cell(_verdict_line(rep))}**",
        "",
        f"| metric | production | {rep.channel} | n | p worse | p better | threshold | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in rep.metrics:
        name = m.metric + (" (primary)" if m.primary else "") + ("" if m.guarded else " ·")
        lines.append(
            f"| {cell(name)} | {_value(m.baseline)} | {_value(m.candidate)} | "
            f"{m.n_baseline}/{m.n_candidate} | {_p(m.p_worse)} | {_p(m.p_better)} | "
            f"{cell(_bound(m))} | {m.verdict} |"
        )
    lines += [
        "",
        f"Always-valid sequential tests (mixture SPRT) at alpha {rep.alpha:g}, shared by "
        f"{rep.tests} one-sided tests (Bonferroni); at least {rep.min_samples} samples per "
        "arm before any verdict. · reported, not guarded.",
    ]
    if found.applied is not None:
        for move in found.applied.moves:
            done = "would be " if move.dry_run else ""
            lines.append(f"\nApplied: {done}{move.kind} {cell(move.event)}")
    return "\n".join(lines) + "\n"


def round_line(found: Round) -> str:
    """One line per ``watch`` round."""
    rep = found.report
    done = ""
    if found.applied is not None and found.applied.moves:
        done = " → " + ", ".join(f"{m.kind} {m.event}" for m in found.applied.moves)
    return (
        f"{rep.model}@{rep.channel} {rep.candidate['version']}: "
        f"{_verdict_line(rep)} [{rep.candidate['requests']} vs "
        f"{rep.baseline['requests']} requests]{done}"
    )
