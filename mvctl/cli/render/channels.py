"""Rich rendering of channel moves, gate reports and marks (mvctl.channels)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, print_json, say, say_published, stdout, warn_pointers
from mvctl.cli.render.fit import caption, fit

if TYPE_CHECKING:
    from mvctl.channels.gates import GateReport
    from mvctl.channels.marks import VersionMark
    from mvctl.channels.moves import ChannelMove
    from mvctl.channels.state import Event


def _percent(weight: float | None) -> str:
    return "" if weight is None else f"{weight:g}%"


def move(move: ChannelMove, as_json: bool) -> None:
    warn_pointers(move.pointers)
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
        to = "stopped" if move.kind == "stop" else f"[bold]{esc(move.version)}[/]"
        out.print(
            f"[green]✓[/] {esc(move.model)}@{esc(move.channel)}: {esc(move.note)} "
            f"({esc(move.previous or 'nothing')} → {to})"
        )
        say_published(move.pushed, move.remote, move.published)
        return
    verb = {
        "promote": "promoted",
        "override": "promoted (gates overridden)",
        "rollback": "rolled back",
        "weight": "reweighted",
        "stop": "stopped",
    }
    prefix = "would be " if move.dry_run else ""
    frm = esc(move.previous or "nothing")
    if move.kind == "weight":
        change = (
            f"{esc(move.version)} at {_percent(move.previous_weight) or 'no weight'} → "
            f"[bold]{_percent(move.weight)}[/]"
        )
    elif move.kind == "stop":
        change = f"{frm} → nothing (alias {esc(move.model)}@{esc(move.channel)} deleted)"
    else:
        at = f" at {_percent(move.weight)}" if move.weight is not None else ""
        change = f"{frm} → [bold]{esc(move.version)}[/]{at}"
    out.print(
        f"[green]✓[/] {esc(move.model)}@{esc(move.channel)} {prefix}{verb[move.kind]}: "
        f"{change} ({esc(move.event)})"
    )
    if move.gates and move.gates.results:
        gates(move.gates)
    say_published(move.pushed, move.remote, move.published, move.dry_run)
    if move.note:
        say(move.note, mark="!", color="yellow")


def _who(event: Event) -> str:
    """The actor's name, or the person who asked through the dashboard and the identity
    that wrote the tags for them."""
    actor = event.actor.split(" <")[0]
    if event.requested_by is None:
        return actor
    return f"{event.requested_by} (via {event.via or '?'}, as {actor})"


_HISTORY = ("#", "time (UTC)", "channel", "kind", "from → to", "weight", "actor", "reason")
# Free text wraps (to this width at the narrowest); every other value stays whole.
_HISTORY_FOLDED = {"actor": 14, "reason": 16}
# Left out in this order when the table does not fit (the caption names them).
_HISTORY_DROPPED = ("#", "actor", "weight", "kind")


def history(model: str, events: list[Event]) -> None:
    from rich.table import Table

    out = stdout()
    if not events:
        out.print(f"no channel events for {esc(model)} yet")
        return
    rows = [_event_row(e) for e in reversed(events)]
    # A column no event fills (no weighted channel) says nothing: it is left out silently.
    present = [c for c in _HISTORY if c != "weight" or any(r[c] for r in rows)]
    columns = present
    if fit(present, rows, out.width, present, _HISTORY_FOLDED) != present:
        for row in rows:  # narrow: the date above the time, then columns left out
            row["time (UTC)"] = row["time (UTC)"].replace(" ", "\n", 1)
        columns = fit(present, rows, out.width, _HISTORY_DROPPED, _HISTORY_FOLDED)
    table = Table(title=esc(model), caption=caption(present, columns))
    for name in columns:
        folded = name in _HISTORY_FOLDED
        table.add_column(esc(name), no_wrap=not folded, overflow="fold" if folded else "ellipsis")
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    out.print(table)


def _event_row(e: Event) -> dict[str, str]:
    if e.kind == "stop":
        change = f"{e.version or '?'} → (stopped)"
    else:
        change = f"{e.previous or '-'} → {e.version or '?'}"
    weight = _percent(e.weight)
    if e.kind in ("weight", "stop") and e.previous_weight is not None:
        weight = f"{_percent(e.previous_weight)} → {weight or '-'}"
    return {
        "#": str(e.counter),
        "time (UTC)": esc(e.time.replace("T", " ")[:19].rstrip("Z")),
        "channel": esc(e.channel),
        "kind": esc(e.kind),
        "from → to": esc(change),
        "weight": esc(weight),
        "actor": esc(_who(e)),
        "reason": esc(e.reason),
    }


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
