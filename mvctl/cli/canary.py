"""``mvctl canary``: weighted canary channels (mvctl.channels.weights): change a canary's
share of traffic, or stop it; and analysis of a canary or shadow against production with
always-valid sequential tests (mvctl.canary), once or on an interval, acting on the verdict
with --apply."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.options import DryRunOpt, JsonOpt, PushOpt, RemoteOpt
from mvctl.cli.output import handled, print_json, print_json_or_refuse
from mvctl.cli.render import channels as render

if TYPE_CHECKING:
    from mvctl.canary.apply import Round
    from mvctl.errors import MvctlError

canary_app = typer.Typer(
    name="canary",
    help="Weighted canary channels: weight, stop, analyze and watch.",
    no_args_is_help=True,
)


class ReportFormat(StrEnum):
    rich = "rich"
    json = "json"
    markdown = "markdown"


class Candidate(StrEnum):
    canary = "canary"
    shadow = "shadow"


LogOpt = Annotated[
    list[Path],
    typer.Option(
        "--log",
        help="A decision log mvctl serve wrote (repeat for several replicas).",
    ),
]
OutcomesOpt = Annotated[
    list[Path] | None,
    typer.Option("--outcomes", help="Outcome lines {key, outcome} (repeatable)."),
]
CandidateOpt = Annotated[
    Candidate, typer.Option("--channel", "-c", help="What is compared with production.")
]
ApplyOpt = Annotated[
    bool,
    typer.Option(
        "--apply", help="Act on the verdict: next weight, promote to production, or stop."
    ),
]

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
    """Give the canary another share of traffic.

    A weight event on the version the canary holds.
    """
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
    """Take the canary off, deleting its alias.

    Writes GTO's unassignment tag MODEL#CHANNEL!#N. The channel is empty until
    a promotion starts a new tenure; a retry of an interrupted stop completes
    it, never repeats it.
    """
    from mvctl.channels.weights import stop as run_stop

    move = run_stop(
        Path.cwd(), model, channel, reason=reason, push=push, remote=remote, dry_run=dry_run
    )
    render.move(move, as_json)


def _refusal(found: Round) -> MvctlError | None:
    """A rollback verdict is exit 1 (after the report), as a monitor's breach is."""
    from mvctl.errors import PolicyError

    rep = found.report
    if rep.verdict.kind != "rollback":
        return None
    done = found.applied is not None and any(m.changed for m in found.applied.moves)
    return PolicyError(
        f"{rep.model}@{rep.channel} {rep.candidate['version']} should be rolled back: "
        + "; ".join(rep.verdict.reasons),
        hint="stopped (see 'mvctl history')"
        if done
        else f"stop it: 'mvctl canary analyze {rep.model} ... --apply' or 'mvctl canary stop'",
    )


@canary_app.command("analyze")
@handled
def analyze(
    model: Annotated[str, typer.Argument(help="Model name.")],
    log: LogOpt,
    outcomes: OutcomesOpt = None,
    channel: CandidateOpt = Candidate.canary,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ReportFormat.rich
    ),
    apply: ApplyOpt = False,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare the canary or shadow with production, and decide.

    On the decision logs mvctl serve wrote. Per metric: both values, an
    always-valid sequential test and a verdict. Overall: promote, next step,
    continue or roll back (exit 1 for roll back, after the report).

    Metrics, steps, alpha and minimum samples come from 'canary:' in mvctl.yaml.
    With --apply the verdict is performed: the next weight, a promotion to
    production through its gates, or a stop, with the evidence in the event.
    """
    from mvctl.canary.apply import analyze_round
    from mvctl.cli.render import canary as render_canary

    found = analyze_round(
        Path.cwd(),
        model,
        log,
        outcomes or [],
        channel.value,
        apply=apply,
        push=push,
        remote=remote,
        dry_run=dry_run,
    )
    refusal = _refusal(found)
    if as_json or fmt is ReportFormat.json:
        print_json_or_refuse(found.to_dict(), refusal)
    elif fmt is ReportFormat.markdown:
        typer.echo(render_canary.markdown(found), nl=False)
    else:
        render_canary.report(found)
    if refusal:
        raise refusal


@canary_app.command("watch")
@handled
def watch(
    model: Annotated[str, typer.Argument(help="Model name.")],
    log: LogOpt,
    outcomes: OutcomesOpt = None,
    channel: CandidateOpt = Candidate.canary,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between analyses.")] = 60.0,
    apply: ApplyOpt = False,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Analyze every --interval seconds until a decision.

    With --apply, act on each verdict. One line per round (a JSON object per
    line with --json), until a promotion or a rollback, or SIGTERM/SIGINT
    (which let a move in progress finish, then exit 0).

    Operational errors, and a registry that changed between an analysis and
    its move (exit 4 for analyze), are logged and retried next round; a
    refusal (gates, review) ends it with its exit code.
    """
    import signal
    import threading

    from mvctl.canary.apply import analyze_round
    from mvctl.cli.render import canary as render_canary
    from mvctl.errors import ConflictError, MvctlError, OperationalError
    from mvctl.serving.follow import check_interval

    check_interval(interval)
    stop = threading.Event()

    def stop_on_signal(signum: int, _frame: object) -> None:
        typer.echo(f"received {signal.Signals(signum).name}: stopping", err=True)
        stop.set()

    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)
    while not stop.is_set():
        try:
            found = analyze_round(
                Path.cwd(),
                model,
                log,
                outcomes or [],
                channel.value,
                apply=apply,
                push=push,
                remote=remote,
                dry_run=dry_run,
            )
        except (OperationalError, ConflictError) as exc:
            # a log not written yet, a remote down, the canary moved since the analysis:
            # the next round analyses what the registry holds then
            typer.echo(f"error: {exc.message} (retry in {interval:g} s)", err=True)
        except MvctlError:
            raise
        else:
            if as_json:
                print_json(found.to_dict())
            else:
                typer.echo(render_canary.round_line(found))
            if found.final:
                refusal = _refusal(found)
                if refusal:
                    raise refusal
                return
        stop.wait(interval)
