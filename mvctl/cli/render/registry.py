"""Rich rendering of registry results (mvctl.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mvctl.cli.output import esc, say_published, stdout
from mvctl.cli.render.fit import caption, fit

if TYPE_CHECKING:
    from mvctl.channels.labels import Relabel
    from mvctl.registry.read import ListedVersion
    from mvctl.registry.register import RegisterResult


def held(channel: str, weight: float | None) -> str:
    """A channel holding a version, with its share of traffic when it is weighted."""
    return channel if weight is None else f"{channel} ({weight:g}%)"


def registered(result: RegisterResult) -> None:
    # Imported here: every command imports this module, and these pull in the lineage and
    # registry readers (a tenth of `mvctl --help`'s start-up).
    from mvctl.formats.values import flatten
    from mvctl.lineage.markdown import size

    out = stdout()
    m = result.manifest
    name, tag = esc(f"{m.model} {m.version}"), esc(result.tag)
    if result.dry_run:
        out.print(f"would register [bold]{name}[/] (tag {tag})")
    else:
        commit = esc((result.commit or "")[:12])
        out.print(f"[green]✓[/] registered [bold]{name}[/] at {commit} (tag {tag})")
    for w in m.weights:
        out.print(esc(f"  weights  {w.path}  sha256 {w.sha256[:16] or '-'}  {size(w.size)}"))
    for d in m.dataset:
        out.print(esc(f"  data     {d.path}  md5 {d.md5[:16] or '-'}"))
    if m.parent:
        out.print(esc(f"  parent   {m.parent}"))
    if m.metrics:
        out.print(esc("  metrics  " + ", ".join(f"{k}={v}" for k, v in flatten(m.metrics).items())))
    if m.labels:
        out.print(esc("  labels   " + ", ".join(m.labels)))
    if m.data_window:
        window = m.data_window
        column = f" (column {window['column']})" if window.get("column") else ""
        out.print(esc(f"  window   {window.get('start')}..{window.get('end')}{column}"))
    say_published(result.pushed, result.remote, result.published, result.dry_run)


_STATUS_STYLE = {"gold": "yellow", "bad": "red", "retired": "dim", "deregistered": "dim"}


def versions_table(model: str, versions: list[ListedVersion], *, filtered: bool) -> None:
    """``list MODEL``: newest first, with key metrics, channels, status and labels."""
    from rich.table import Table

    out = stdout()
    if not versions:
        out.print(f"no version of {esc(model)} passes the filters" if filtered else esc(model))
        return
    keys = _key_metrics([v.info.metrics for v in versions])
    rows = [_row(item, keys) for item in reversed(versions)]
    columns = _fit(
        ["version", "created (UTC)", "author", *keys, "channels", "status", "labels"],
        rows,
        out.width,
        keys,
    )
    table = Table(title=esc(model), caption=caption(list(rows[0]), columns))
    for name in columns:
        # Values are never cut: every column but channels and labels (one per line, folded)
        # keeps its values whole, and columns that do not fit are left out (_fit).
        folded = name in _FOLDED
        table.add_column(esc(name), no_wrap=not folded, overflow="fold" if folded else "ellipsis")
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    out.print(table)


def relabelled(result: Relabel) -> None:
    out = stdout()
    name = esc(f"{result.model} {result.version}")
    if not result.changed:
        out.print(f"{name} already has these labels and description: nothing to write")
    else:
        verb = "would label" if result.dry_run else "[green]✓[/] labelled"
        out.print(f"{verb} [bold]{name}[/] ({esc(result.tag or '')})")
    out.print(esc(f"  labels       {', '.join(result.labels) or '-'}"))
    if result.description:
        out.print(esc(f"  description  {result.description}"))
    for note in result.notes:
        out.print(f"  [yellow]note[/] {esc(note)}")
    say_published(result.pushed, result.remote, result.published, result.dry_run)


_FOLDED = ("channels", "labels")
_FOLD_WIDTH = 14


def _row(item: ListedVersion, keys: list[str]) -> dict[str, str]:
    v = item.info
    status = item.status or ""
    style = _STATUS_STYLE.get(status)
    row = {
        "version": f"[strike]{esc(v.version)}[/]" if v.deregistered else esc(v.version),
        "created (UTC)": esc(v.created.replace("T", " ")[:16]),
        "author": esc(v.author.split(" <")[0]),
        "channels": esc("\n".join(held(c, v.weights.get(c)) for c in v.channels)),
        "status": f"[{style}]{esc(status)}[/]" if style else esc(status),
        "labels": esc("\n".join(item.labels)),
    }
    row |= {k: esc(_num(v.metrics.get(k))) for k in keys}
    return row


def _fit(columns: list[str], rows: list[dict[str, str]], width: int, keys: list[str]) -> list[str]:
    """The columns that fit ``width`` with every value whole: the author goes first, then
    the metrics from the last (one always stays), then the labels."""
    droppable = ["author", *reversed(keys[1:]), "labels"]
    return fit(columns, rows, width, droppable, dict.fromkeys(_FOLDED, _FOLD_WIDTH))


def _key_metrics(all_metrics: list[dict[str, Any]], limit: int = 4) -> list[str]:
    seen: dict[str, None] = {}
    for metrics in all_metrics:
        for key in metrics:
            seen.setdefault(key, None)
    return list(seen)[:limit]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
