"""Rich rendering of retention plans and their results (mvctl.retention)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mvctl.cli.output import esc, print_json, say, say_published, stdout

if TYPE_CHECKING:
    from mvctl.retention.prune import GcResult


def _size(amount: int) -> str:
    from mvctl.lineage.markdown import size

    return size(amount)


def gc(result: GcResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    from rich.table import Table

    plan = result.plan
    out = stdout()
    several = len(plan.models) > 1
    # Four narrow columns and a wrapping "why": readable at 80 columns.
    table = Table("version", "plan", "why", "frees", title=None, expand=False)
    for entry in plan.versions:
        name = f"{entry.model} {entry.version}" if several else entry.version
        if entry.action == "prune":
            action = "[red]prune[/]" if not result.dry_run else "[yellow]prune[/]"
        else:
            action = "[green]keep[/]" if entry.action == "keep" else "[dim]pruned[/]"
        frees = _size(entry.bytes) if entry.objects else "-"
        table.add_row(esc(name), action, esc("; ".join(entry.reasons)), frees)
    if plan.versions:
        out.print(table)
    for name in result.taken_back:
        say(f"took back {esc(name)}, left unpublished by an earlier gc: the version is kept now")
    if result.dry_run:
        # A dry run fetches nothing: quick, and says so, since --yes may decide otherwise.
        say(
            "decided on this clone's tags; --yes decides again on the remote's",
            mark="·",
            color="white",
        )
    pruned = plan.pruned
    amount = f"{_size(plan.bytes)} in {len(plan.objects)} objects"
    versions = f"{len(pruned)} version{'s' if len(pruned) != 1 else ''}"
    if not pruned:
        say("nothing to prune", mark="·", color="white")
        return
    if result.dry_run:
        say(
            f"would free {amount} from {versions}; run with --yes",
            mark="·",
            color="white",
        )
        return
    say(f"pruned {versions}: freed {amount} (removed {result.deleted})")
    if result.spared:
        say(
            f"spared {len(result.spared)} object{'s' if len(result.spared) != 1 else ''} that "
            "a version registered meanwhile needs",
            mark="·",
            color="white",
        )
    if result.tags:
        say(
            f"deregistered {len(result.tags)} (tags {esc(', '.join(result.tags[:3]))}"
            f"{' …' if len(result.tags) > 3 else ''})"
        )
    say_published(result.pushed, result.remote, result.published)
