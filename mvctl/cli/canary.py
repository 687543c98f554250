"""``mvctl canary``: weighted canary channels (mvctl.channels.weights): change a canary's
share of traffic, or stop it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import DryRunOpt, JsonOpt, PushOpt, RemoteOpt
from mvctl.cli.output import handled
from mvctl.cli.render import channels as render

canary_app = typer.Typer(
    name="canary",
    help="Weighted canary channels: change the share of traffic, stop.",
    no_args_is_help=True,
)

ChannelOpt = Annotated[str, typer.Option("--channel", "-c", help="The weighted channel.")]


@canary_app.command("weight")
@handled
def weight(
    model: Annotated[str, typer.Argument(help="Model name.")],
    percent: Annotated[
        str, typer.Argument(metavar="WEIGHT", help="Percent of traffic, 0 < WEIGHT <= 100.")
    ],
    channel: ChannelOpt = "canary",
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")] = "",
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Give the canary another share of traffic: a weight event on the version it holds."""
    from mvctl.channels.weights import set_weight
    from mvctl.formats.tags import parse_weight

    move = set_weight(
        Path.cwd(),
        model,
        parse_weight(percent, "WEIGHT"),
        channel,
        reason=reason,
        push=push,
        remote=remote,
        dry_run=dry_run,
    )
    render.move(move, as_json)


@canary_app.command("stop")
@handled
def stop(
    model: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; recorded).")],
    channel: ChannelOpt = "canary",
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Take the canary off: its alias is deleted, GTO's unassignment MODEL#CHANNEL!#N written.

    The channel is empty until a promotion starts a new tenure; a retry of an interrupted
    stop completes it, never repeats it."""
    from mvctl.channels.weights import stop as run_stop

    move = run_stop(
        Path.cwd(), model, channel, reason=reason, push=push, remote=remote, dry_run=dry_run
    )
    render.move(move, as_json)
