"""Rich rendering of channel moves, gate reports and marks (mvctl.channels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, print_json, say, say_published, stdout

if TYPE_CHECKING:
    from mvctl.channels.gates import GateReport
    from mvctl.channels.marks import VersionMark
    from mvctl.channels.moves import ChannelMove


def move(move: ChannelMove, as_json: bool) -> None:
    if as_json:
        print_json(move.to_dict())
        return
    out = stdout()
    if not move.changed:
        if move.note:
            out.print(f"[yellow]=[/] {esc(move.note)}")
        else:
            out.print(
                f"[green]✓[/] {esc(move.model)}@{esc(move.channel)} already holds "
                f"{esc(move.version)}"
            )
        return
    if move.completed:
        out.print(
            f"[green]✓[/] {esc(move.model)}@{esc(move.channel)}: {esc(move.note)} "
            f"({esc(move.previous or 'nothing')} → [bold]{esc(move.version)}[/])"
        )
        say_published(move.pushed, move.remote, move.published)
        return
    verb = {
        "promote": "promoted",
        "override": "promoted (gates overridden)",
        "rollback": "rolled back",
    }
    prefix = "would be " if move.dry_run else ""
    frm = esc(move.previous or "nothing")
    out.print(
        f"[green]✓[/] {esc(move.model)}@{esc(move.channel)} {prefix}{verb[move.kind]}: "
        f"{frm} → [bold]{esc(move.version)}[/] ({esc(move.event)})"
    )
    if move.gates and move.gates.results:
        gates(move.gates)
    say_published(move.pushed, move.remote, move.published, move.dry_run)
    if move.note:
        say(move.note, mark="!", color="yellow")


def gates(report: GateReport) -> None:
    from rich.table import Table

    table = Table(
        "gate", "result", "detail", title=f"{esc(report.channel)} gates", title_justify="left"
    )
    for r in report.results:
        table.add_row(esc(r.gate), "[green]pass[/]" if r.ok else "[red]FAIL[/]", esc(r.detail))
    stdout().print(table)


def mark(mark: VersionMark, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(mark.to_dict())
        return
    prefix = "would be " if mark.dry_run else ""
    say(f"{mark.model} {mark.version} {prefix}{verb} ({mark.tag})")
    say_published(mark.pushed, mark.remote, mark.published, mark.dry_run)
