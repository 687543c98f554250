"""Commands that move and read channels: promote, rollback, validate, history, mark-gold,
retire, sync."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.output import (
    esc,
    handled,
    print_json,
    print_json_or_refuse,
    say,
    say_published,
    stdout,
)

if TYPE_CHECKING:
    from mvctl.channels.gates import GateReport
    from mvctl.channels.promotion import ChannelMove, VersionMark
    from mvctl.errors import MvctlError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
]
PushOpt = Annotated[
    bool | None,
    typer.Option(
        "--push/--local",
        help="Publish to the git remote the hosts follow (the default when it exists; "
        "atomic, leased), or keep the move in this clone only.",
    ),
]
RemoteOpt = Annotated[str, typer.Option("--remote", help="Git remote to publish to.")]
EvalDataOpt = Annotated[
    Path | None,
    typer.Option("--eval-data", help="Validation data (CSV/Parquet) for drift and bias gates."),
]


class ReportFormat(StrEnum):
    rich = "rich"
    json = "json"
    markdown = "markdown"


def _print_move(move: ChannelMove, as_json: bool) -> None:
    if as_json:
        print_json(move.to_dict())
        return
    out = stdout()
    if not move.changed:
        if move.note:
            out.print(f"[yellow]=[/] {esc(move.note)}")
        else:
            out.print(
                f"[green]✓[/] {esc(move.model)}@{esc(move.channel)} already holds "
                f"{esc(move.version)}"
            )
        return
    if move.completed:
        out.print(
            f"[green]✓[/] {esc(move.model)}@{esc(move.channel)}: {esc(move.note)} "
            f"({esc(move.previous or 'nothing')} → [bold]{esc(move.version)}[/])"
        )
        say_published(move.pushed, move.remote, move.published)
        return
    verb = {
        "promote": "promoted",
        "override": "promoted (gates overridden)",
        "rollback": "rolled back",
    }
    prefix = "would be " if move.dry_run else ""
    frm = esc(move.previous or "nothing")
    out.print(
        f"[green]✓[/] {esc(move.model)}@{esc(move.channel)} {prefix}{verb[move.kind]}: "
        f"{frm} → [bold]{esc(move.version)}[/] ({esc(move.event)})"
    )
    if move.gates and move.gates.results:
        _print_gates(move.gates)
    say_published(move.pushed, move.remote, move.published, move.dry_run)
    if move.note:
        say(move.note, mark="!", color="yellow")


def _print_gates(report: GateReport) -> None:
    from rich.table import Table

    table = Table(
        "gate", "result", "detail", title=f"{esc(report.channel)} gates", title_justify="left"
    )
    for r in report.results:
        table.add_row(esc(r.gate), "[green]pass[/]" if r.ok else "[red]FAIL[/]", esc(r.detail))
    stdout().print(table)


@handled
def promote(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote, e.g. v1.4.0.")],
    to: Annotated[str, typer.Option("--to", help="Channel, e.g. production.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the event).")] = "",
    force: Annotated[
        bool, typer.Option("--force", help="Override failed gates (needs --reason).")
    ] = False,
    push: PushOpt = None,
    remote: RemoteOpt = "origin",
    eval_data: EvalDataOpt = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Promote a version to a channel through its gates (event tag + alias move)."""
    from mvctl.channels.promotion import promote as run_promote

    move = run_promote(
        Path.cwd(),
        model,
        version,
        to,
        reason=reason,
        force=force,
        push=push,
        remote=remote,
        dry_run=dry_run,
        eval_data=eval_data,
    )
    _print_move(move, as_json)


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
    from mvctl.channels.promotion import rollback as run_rollback

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
    _print_move(move, as_json)


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
    """Run a channel's gates for a version; exit 1 if one fails. Changes nothing."""
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
        _print_gates(report)
    if refusal:
        raise refusal


@handled
def history(
    model: Annotated[str, typer.Argument(help="Model name.")],
    channel: Annotated[str | None, typer.Option("--channel", "-c", help="One channel.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every promotion, rollback and override: time, actor, from → to, reason."""
    from rich.table import Table

    from mvctl.channels.promotion import history as run_history

    events = run_history(Path.cwd(), model, channel)
    if as_json:
        print_json({"model": model, "events": [e.to_dict() for e in events]})
        return
    table = Table(
        "#", "time (UTC)", "channel", "kind", "from → to", "actor", "reason", title=esc(model)
    )
    for e in reversed(events):
        table.add_row(
            str(e.counter),
            esc(e.time.replace("T", " ")[:19].rstrip("Z")),
            esc(e.channel),
            esc(e.kind),
            esc(f"{e.previous or '-'} → {e.version or '?'}"),
            esc(e.actor.split(" <")[0]),
            esc(e.reason),
        )
    stdout().print(table if events else f"no channel events for {model} yet")


def _print_mark(mark: VersionMark, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(mark.to_dict())
        return
    prefix = "would be " if mark.dry_run else ""
    say(f"{mark.model} {mark.version} {prefix}{verb} ({mark.tag})")
    say_published(mark.pushed, mark.remote, mark.published, mark.dry_run)


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
    from mvctl.channels.promotion import mark_gold as run

    mark = run(Path.cwd(), model, version, reason=reason, push=push, remote=remote, dry_run=dry_run)
    _print_mark(mark, "marked gold", as_json)


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
    """Deregister a version (GTO's MODEL@vX.Y.Z!); refused while a channel holds it."""
    from mvctl.channels.promotion import retire as run

    mark = run(Path.cwd(), model, version, reason=reason, push=push, remote=remote, dry_run=dry_run)
    _print_mark(mark, "retired", as_json)


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
    """Fetch channel tags from the remote; local aliases only move forward."""
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


@handled
def check(
    remote: Annotated[
        str, typer.Option("--remote", help="Also report what this git remote lacks.")
    ] = "origin",
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not compare with the git remote.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the registry (aliases vs events, manifests, DVC files) and what the git remote
    lacks. Exit 1 on a mismatch."""
    from mvctl.check import check as run_check
    from mvctl.errors import PolicyError

    report = run_check(Path.cwd(), remote=remote, offline=offline)
    refusal = None
    if not report.ok:
        refusal = PolicyError(f"{len(report.problems)} consistency problem(s) found")
    if as_json:
        print_json_or_refuse(report.to_dict(), refusal)
    else:
        out = stdout()
        for problem in report.problems:
            out.print(f"[red]✗[/] {esc(problem)}")
        for note in report.notes:
            out.print(f"[dim]note: {esc(note)}[/]")
        if report.ok:
            out.print(
                f"[green]✓[/] registry consistent: {report.models} models, "
                f"{report.versions} versions, {report.events} events"
            )
    if refusal:
        raise refusal


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
    """Commit a promotion request with its gate report on a new branch, ready for a PR."""
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
    _print_gates(proposal.report)
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
    """Perform merged promotion requests not yet performed (run by CI on the main branch)."""
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
