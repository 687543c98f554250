"""Commands about what the git remote (and so the fleet) has: push, status, sync."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import DryRunOpt, JsonOpt
from mvctl.cli.output import esc, handled, print_json, say, stdout, warn_pointers

RemoteOpt = Annotated[str, typer.Option("--remote", help="Git remote the hosts follow.")]


@handled
def push(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    remote: RemoteOpt = "origin",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be published; push nothing.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Publish every registry tag the remote lacks, in one push.

    The push is atomic and leased: all the tags or none.
    """
    from mvctl.publishing.publish import push as run_push

    result = run_push(Path.cwd(), remote, model, dry_run=dry_run)
    warn_pointers(result.pointers)
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
    """List the tags made here that serving hosts cannot see yet.

    What the git remote lacks; mvctl push publishes it.
    """
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
    for name in sorted(found.deletions):
        out.print(f"[yellow]pending[/] {esc(name)} (stopped here: to be deleted on {esc(remote)})")
    for name in found.conflicts:
        out.print(f"[red]differs[/] {esc(name)} (run 'mvctl sync --discard-local')")
    if not found.empty:
        out.print(f"run 'mvctl push' to publish {len(found.names())} tag(s) to {esc(remote)}")


@handled
def sync(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote.")] = "origin",
    discard_local: Annotated[
        bool,
        typer.Option(
            "--discard-local",
            help="Make local channel tags exactly the remote's: unpublished moves are dropped.",
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch channel tags from the remote; aliases only move forward."""
    from mvctl.publishing.sync import sync as run_sync

    result = run_sync(Path.cwd(), remote, model, dry_run=dry_run, discard_local=discard_local)
    if as_json:
        print_json(result.to_dict())
        return
    out = stdout()
    verb = "would sync" if dry_run else "synced"
    out.print(
        f"[green]✓[/] {verb} from {esc(remote)}: {len(result.created)} new tags, "
        f"{len(result.moved)} aliases moved forward"
    )
    for name in result.moved:
        out.print(f"  moved {esc(name)}")
    for name in result.kept:
        out.print(f"  kept {esc(name)} (local is newer: 'mvctl push' publishes it)")
    for name in result.discarded:
        out.print(f"  [yellow]discarded[/] local {esc(name)} (never published)")
    for name in result.conflicts:
        out.print(f"  [red]differs[/] {esc(name)} (immutable tag differs from the remote's)")
