"""Rich rendering of registry results (mvctl.registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, say_published, stdout

if TYPE_CHECKING:
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
    say_published(result.pushed, result.remote, result.published, result.dry_run)
