"""``mvctl monitor``: a channel's monitors on live data (mvctl.monitoring)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.output import handled, print_json_or_refuse, say, say_published
from mvctl.cli.render import monitoring as render

if TYPE_CHECKING:
    pass


@handled
def monitor(
    model: Annotated[str, typer.Argument(help="Model name.")],
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel.")] = "production",
    live: Annotated[
        Path | None, typer.Option("--live", help="Live batch (CSV/Parquet) with features.")
    ] = None,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Predictions, row-aligned with --live; with labels, metric rules are "
            "measured on them.",
        ),
    ] = None,
    metrics: Annotated[
        Path | None, typer.Option("--metrics", help="Live metrics exported as JSON/YAML.")
    ] = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="On a breach, roll the channel back.")
    ] = False,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--local",
            help="Publish the rollback to the git remote (the default when it exists), or "
            "keep it local.",
        ),
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to publish to.")] = "origin",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Roll back only on paper.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check live data and metrics against the channel's monitors; exit 1 on a breach."""
    from mvctl.errors import MvctlError, PolicyError
    from mvctl.monitoring.monitor import monitor as run_monitor

    report = run_monitor(
        Path.cwd(),
        model,
        channel,
        live=live,
        predictions=predictions,
        metrics_file=metrics,
        rollback=rollback,
        push=push,
        remote=remote,
        dry_run=dry_run,
    )
    breach = PolicyError(f"monitors breached: {report.summary()}") if report.breached else None
    # A rollback that could not be made is reported after the breach report, not instead.
    refusal: MvctlError | None = report.rollback_error or breach
    if as_json:
        print_json_or_refuse(report.to_dict(), refusal)
    else:
        render.report(report)
        if report.rollback is not None:
            move = report.rollback
            prefix = "would roll" if move.dry_run else "rolled"
            if move.changed:
                say(
                    f"{prefix} {model}@{channel} back: {move.previous} → {move.version} "
                    f"({move.event})"
                )
            else:
                say(move.note or f"{model}@{channel} already holds {move.version}", mark="=")
            say_published(move.pushed, move.remote, move.published, move.dry_run)
    if refusal:
        raise refusal
