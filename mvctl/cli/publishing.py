"""Commands about what the git remote (and so the fleet) has: push, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.output import esc, handled, print_json, say, stdout

RemoteOpt = Annotated[str, typer.Option("--remote", help="Git remote the hosts follow.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


@handled
def push(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    remote: RemoteOpt = "origin",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be published; push nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish every registry tag the remote lacks, in one atomic, leased push."""
    from mvctl.publishing.publish import push as run_push

    result = run_push(Path.cwd(), remote, model, dry_run=dry_run)
    if as_json:
        print_json(result.to_dict())
        return
    verb = "would publish" if dry_run else "published"
    if not result.pushed:
        say(f"nothing to publish: {remote} has every registry tag")
    else:
        say(f"{verb} {len(result.pushed)} tag(s) to {remote}")
        out = stdout()
        for name in result.pushed:
            out.print(f"  {esc(name)}")
    for name in result.behind:
        say(f"moved {name} forward to {remote}'s (newer there)", mark="·", color="white")


@handled
def status(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    remote: RemoteOpt = "origin",
    as_json: JsonOpt = False,
) -> None:
    """List what the remote lacks: tags written here that serving hosts cannot see yet."""
    from mvctl.publishing.publish import status as run_status

    found = run_status(Path.cwd(), remote, model)
    if as_json:
        print_json(found.to_dict())
        return
    out = stdout()
    if found.empty and not found.conflicts:
        say(f"{remote} has every registry tag: nothing pending")
        return
    for name in found.tags:
        out.print(f"[yellow]pending[/] {esc(name)}")
    for name, theirs in sorted(found.aliases.items()):
        state = f"{esc(remote)} is behind" if theirs else f"not on {esc(remote)}"
        out.print(f"[yellow]pending[/] {esc(name)} ({state})")
    for name in found.conflicts:
        out.print(f"[red]differs[/] {esc(name)} (run 'mvctl sync --discard-local')")
    if not found.empty:
        out.print(f"run 'mvctl push' to publish {len(found.names())} tag(s) to {esc(remote)}")
