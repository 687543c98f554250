"""Commands that move and read channels (mvctl.channels): validate, promote, rollback,
unassign, history, mark-gold, retire, propose, apply."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.options import DryRunOpt, EvalDataOpt, JsonOpt, PushOpt, RemoteOpt
from mvctl.cli.output import (
    esc,
    handled,
    print_json,
    print_json_or_refuse,
    stdout,
)
from mvctl.cli.render import channels as render

if TYPE_CHECKING:
    from mvctl.errors import MvctlError


class ReportFormat(StrEnum):
    rich = "rich"
    json = "json"
    markdown = "markdown"


@handled
def promote(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str | None,
        typer.Argument(help="Version to promote, e.g. v1.4.0 (or choose one with --select)."),
    ] = None,
    to: Annotated[str, typer.Option("--to", help="Channel, e.g. production.")] = "",
    select: Annotated[
        list[str] | None,
        typer.Option(
            "--select",
            help="Instead of VERSION: the newest gold version on the channel that matches, "
            "e.g. 'label season=holiday' or 'metric auc>=0.9' (repeatable: all).",
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Override failed gates (needs --reason).")
    ] = False,
    weight: Annotated[
        str | None,
        typer.Option(
            "--weight",
            help="Percent of traffic for a canary channel (0 < W <= 100; canary defaults "
            "to 10). Not for production or shadow.",
        ),
    ] = None,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    eval_data: EvalDataOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Promote a version to a channel through its gates.

    Writes an event tag and moves the channel's alias. Instead of a VERSION,
    --select chooses the newest gold one by label or metric.
    """
    from mvctl.channels.promotion import promote as run_promote
    from mvctl.channels.promotion import promote_selected
    from mvctl.errors import UsageError
    from mvctl.formats.labels import parse_selector
    from mvctl.formats.tags import parse_weight

    if not to:
        raise UsageError("promote needs --to CHANNEL", hint="e.g. --to production")
    if (version is None) == (not select):
        raise UsageError(
            "give a VERSION or --select, not both" if select else "give a VERSION or --select",
            hint="e.g. mvctl promote fraud v1.4.0 --to production, or "
            "mvctl promote fraud --to production --select 'label season=holiday'",
        )
    # Parsed before anything is read: a bad weight is a usage error, whatever the registry.
    percent = parse_weight(weight, "--weight") if weight is not None else None
    selectors = [parse_selector(text) for text in select or ()]
    if version is None:
        move = promote_selected(
            Path.cwd(), model, to, selectors, reason=reason, force=force, push=push,
            remote=remote, dry_run=dry_run, eval_data=eval_data, weight=percent,
        )  # fmt: skip
    else:
        move = run_promote(
            Path.cwd(), model, version, to, reason=reason, force=force, push=push,
            remote=remote, dry_run=dry_run, eval_data=eval_data, weight=percent,
        )  # fmt: skip
    render.move(move, as_json)


@handled
def rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; recorded).")],
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel.")] = "production",
    to: Annotated[
        str | None,
        typer.Option("--to", help="Target version (default: the last gold one it held)."),
    ] = None,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Roll a channel back, in one tag move: no gates, no review."""
    from mvctl.channels.rollback import rollback as run_rollback

    move = run_rollback(
        Path.cwd(),
        model,
        channel,
        reason=reason,
        to=to,
        push=push,
        remote=remote,
        dry_run=dry_run,
    )
    render.move(move, as_json)


@handled
def unassign(
    model: Annotated[str, typer.Argument(help="Model name.")],
    channel: Annotated[str, typer.Option("--channel", "-c", help="The channel to clear.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (required; recorded).")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Clear production too (its fleet keeps what it has, gets nothing new)."
        ),
    ] = False,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Clear a channel (GTO's unassign) until its next promotion.

    MODEL#CHANNEL!#N is written and the alias deleted. Hosts following the
    channel keep serving what they have. Production needs --force (a rollback
    is the usual answer). A retry of an interrupted unassign completes it,
    never repeats it.
    """
    from mvctl.channels.weights import unassign as run_unassign

    move = run_unassign(
        Path.cwd(), model, channel, reason=reason, force=force, push=push, remote=remote,
        dry_run=dry_run,
    )  # fmt: skip
    render.move(move, as_json)


@handled
def validate(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to check.")],
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel whose gates run.")],
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="Output format.")] = (
        ReportFormat.rich
    ),
    eval_data: EvalDataOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a channel's gates for a version; exit 1 if one fails.

    Changes nothing: promote runs the same gates before it moves the channel.
    """
    from mvctl.channels.promotion import validate as run_validate
    from mvctl.errors import PolicyError

    report = run_validate(Path.cwd(), model, version, channel, eval_data)
    refusal = None
    if not report.passed:
        refusal = PolicyError(f"{model} {version} fails {len(report.failures())} {channel} gate(s)")
    if as_json or fmt is ReportFormat.json:
        print_json_or_refuse(report.to_dict(), refusal)
    elif fmt is ReportFormat.markdown:
        from mvctl.channels.review import report_markdown

        typer.echo(report_markdown(Path.cwd(), report), nl=False)
    else:
        render.gates(report)
    if refusal:
        raise refusal


@handled
def history(
    model: Annotated[str, typer.Argument(help="Model name.")],
    channel: Annotated[str | None, typer.Option("--channel", "-c", help="One channel.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a model's channel events: promotions, rollbacks, stops.

    Overrides and weight changes too, each with its time, actor, from → to,
    weight and reason.
    """
    from mvctl.channels.state import history as run_history

    events = run_history(Path.cwd(), model, channel)
    if as_json:
        print_json({"model": model, "events": [e.to_dict() for e in events]})
        return
    render.history(model, events)


@handled
def mark_gold(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to vouch for.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Mark a version gold: rollbacks may choose it."""
    from mvctl.channels.marks import mark_gold as run

    mark = run(Path.cwd(), model, version, reason=reason, push=push, remote=remote, dry_run=dry_run)
    render.mark(mark, "marked gold", as_json)


@handled
def label(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION, e.g. fraud@v1.4.0.")],
    labels: Annotated[
        list[str] | None, typer.Argument(help="KEY=VALUE labels to set, e.g. season=holiday.")
    ] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Label KEY to remove (repeatable).")
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", help="Replace the description.")
    ] = None,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Label or describe a registered version.

    Writes a new labels tag; the manifest is never rewritten.
    """
    from mvctl.channels.labels import label as run_label
    from mvctl.cli.render.registry import relabelled

    done = run_label(
        Path.cwd(), ref, tuple(labels or ()), remove=tuple(remove or ()),
        description=description, push=push, remote=remote, dry_run=dry_run,
    )  # fmt: skip
    if as_json:
        print_json(done.to_dict())
        return
    relabelled(done)


@handled
def retire(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to deregister.")],
    reason: Annotated[str, typer.Option("--reason", help="Why.")] = "",
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Deregister a version (GTO's MODEL@vX.Y.Z!).

    Refused while a channel holds it.
    """
    from mvctl.channels.marks import retire as run

    mark = run(Path.cwd(), model, version, reason=reason, push=push, remote=remote, dry_run=dry_run)
    render.mark(mark, "retired", as_json)


@handled
def propose(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote.")],
    to: Annotated[str, typer.Option("--to", help="Channel.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown to reviewers).")] = "",
    push: Annotated[bool, typer.Option("--push", help="Push the branch.")] = False,
    remote: RemoteOpt = "origin",
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Commit a promotion request on a new branch, for a pull request.

    With its gate report, for the reviewers; --push pushes the branch.
    """
    from mvctl.channels.review import propose as run_propose

    proposal = run_propose(
        Path.cwd(), model, version, to, reason=reason, push=push, remote=remote, dry_run=dry_run
    )
    if as_json:
        print_json(proposal.to_dict())
        return
    out = stdout()
    verb = "would commit" if dry_run else "committed"
    request, branch = esc(proposal.request_id), esc(proposal.branch)
    out.print(f"[green]✓[/] {verb} request {request} on branch {branch}")
    render.gates(proposal.report)
    if proposal.pushed:
        out.print(f"[green]✓[/] pushed {branch} to {esc(remote)}: open a pull request")
    elif not dry_run:
        out.print(f"next: git push {esc(remote)} {branch}, then open a pull request")


@handled
def apply(
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    eval_data: EvalDataOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Perform merged promotion requests not yet performed.

    Run by CI on the main branch, once a request's pull request is merged.
    """
    from mvctl.channels.review import apply as run_apply
    from mvctl.errors import ConflictError, PolicyError

    outcomes = run_apply(Path.cwd(), push=push, remote=remote, dry_run=dry_run, eval_data=eval_data)
    statuses = {o.status for o in outcomes}
    refusal: MvctlError | None = None
    if "conflict" in statuses:
        refusal = ConflictError("a request lost a race with another writer", hint="run apply again")
    elif statuses & {"refused", "invalid"}:
        refusal = PolicyError("some requests were not performed")
    if as_json:
        print_json_or_refuse({"requests": [o.to_dict() for o in outcomes]}, refusal)
    else:
        out = stdout()
        marks = {"performed": "[green]✓[/]", "already": "[dim]=[/]"}
        for o in outcomes:
            mark = marks.get(o.status, "[red]✗[/]")
            out.print(f"{mark} {esc(o.request_id)}: {esc(o.status)} ({esc(o.detail)})")
        if not outcomes:
            out.print("no promotion requests at HEAD")
    if refusal:
        raise refusal
