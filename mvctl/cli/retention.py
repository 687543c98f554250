"""``mvctl gc``: retention (mvctl.retention)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import JsonOpt, PushOpt, RemoteOpt
from mvctl.cli.output import RichProgress, handled, stderr
from mvctl.cli.render import retention as render
from mvctl.errors import UsageError


@handled
def gc(
    model: Annotated[
        str | None, typer.Argument(help="Model name (default: every model).", show_default=False)
    ] = None,
    keep_gold: Annotated[
        int | None,
        typer.Option(
            "--keep-gold",
            help="Keep the last N gold versions of every channel "
            "(default: mvctl.yaml's retention.keep_gold, else 3).",
            show_default=False,
        ),
    ] = None,
    keep_recent: Annotated[
        int | None,
        typer.Option(
            "--keep-recent",
            help="Keep the N newest versions (default: retention.keep_recent, else 5).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan only (the default).")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", help="Prune: deregister, then delete the objects.")
    ] = False,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    as_json: JsonOpt = False,
) -> None:
    """Prune old versions' artifacts, keeping what rollbacks may need.

    Never one a channel holds, one of the last N gold of any channel,
    or one of the newest. Shows the plan unless --yes.
    """
    from mvctl.retention.prune import gc as run

    if dry_run and yes:
        raise UsageError("--dry-run and --yes contradict each other", hint="give one of them")
    progress = RichProgress(stderr())
    with progress.running():
        result = run(
            Path.cwd(),
            model,
            keep_gold=keep_gold,
            keep_recent=keep_recent,
            dry_run=not yes,
            push=push,
            remote=remote,
            progress=progress,
        )
    render.gc(result, as_json)
