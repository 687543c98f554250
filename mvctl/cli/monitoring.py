"""Commands that watch live data: monitor, and the Alertmanager webhook."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.output import esc, handled, print_json_or_refuse, say, say_published, stdout

if TYPE_CHECKING:
    from mvctl.monitoring.monitor import MonitorReport

webhook_app = typer.Typer(
    name="webhook", help="Alertmanager-compatible receiver that rolls back.", no_args_is_help=True
)


def _print_report(report: MonitorReport) -> None:
    from rich.table import Table

    styles = {"ok": "green", "warn": "yellow", "breach": "bold red", "skipped": "dim"}
    out = stdout()
    table = Table(
        "monitor",
        "level",
        "detail",
        title=esc(f"{report.model}@{report.channel} serving {report.version}"),
        title_justify="left",
    )
    for r in report.evaluation.results:
        level = f"[{styles[r.level]}]{esc(r.level)}[/]" if r.level in styles else esc(r.level)
        table.add_row(esc(r.rule), level, esc(r.detail))
    out.print(table)
    if report.evaluation.drift:
        drift = Table(
            "column",
            "kind",
            "PSI",
            "test",
            "statistic",
            "p-value",
            "rows",
            title="drift by column",
            title_justify="left",
        )
        for d in report.evaluation.drift:
            drift.add_row(
                esc(d.column),
                esc(d.kind),
                f"{d.psi:.4f}",
                esc(d.test),
                f"{d.statistic:.4g}",
                f"{d.p_value:.3g}",
                str(d.rows),
            )
        out.print(drift)
    for b in report.evaluation.bias:
        groups = Table(
            "group",
            "size",
            "selection",
            "TPR",
            "FPR",
            title=f"bias by {esc(b.sensitive)}",
            title_justify="left",
        )
        for g in b.groups:
            groups.add_row(
                esc(g.group),
                str(g.size),
                f"{g.selection_rate:.3f}",
                "-" if g.tpr is None else f"{g.tpr:.3f}",
                "-" if g.fpr is None else f"{g.fpr:.3f}",
            )
        out.print(groups)
    for note in report.notes:
        out.print(f"[dim]note: {esc(note)}[/]")


@handled
def monitor(
    model: Annotated[str, typer.Argument(help="Model name.")],
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel.")] = "production",
    live: Annotated[
        Path | None, typer.Option("--live", help="Live batch (CSV/Parquet) with features.")
    ] = None,
    predictions: Annotated[
        Path | None, typer.Option("--predictions", help="Predictions (and labels), row-aligned.")
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
        _print_report(report)
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


@webhook_app.command("serve")
@handled
def webhook_serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 9465,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding the bearer token.")
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--local",
            help="Publish rollbacks to the git remote (the default when it exists), or keep "
            "them local.",
        ),
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to publish to.")] = "origin",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and log; roll nothing.")
    ] = False,
    read_timeout: Annotated[
        float,
        typer.Option(
            "--read-timeout", help="Seconds a client has to send a request's headers, and its body."
        ),
    ] = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            help="Open connections at most; beyond, the longest stalled one is dropped.",
        ),
    ] = 64,
) -> None:
    """Receive Alertmanager webhooks (POST /alerts) and roll back named channels."""
    from mvctl._adapters.git import GitRepo
    from mvctl.web import httpserver, webhook

    limits = httpserver.Limits(read_timeout=read_timeout, max_connections=max_connections)
    httpserver.check_port(port)
    token = webhook.load_token(token_file, os.environ)
    root = GitRepo.open(Path.cwd()).root

    def log(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        typer.echo(f"{stamp} {text}", err=True)

    app = webhook.create_app(
        root,
        token,
        dry_run=dry_run,
        push=push,
        remote=remote,
        read_timeout=limits.read_timeout,
        log=log,
    )

    def ready(where: str) -> None:
        suffix = " (dry run)" if dry_run else ""
        log(f"mvctl webhook on http://{where}/alerts for {root}{suffix}")

    try:
        webhook.serve(app, host, port, limits, ready=ready, log=log)
    except KeyboardInterrupt:  # SIGINT/SIGTERM: a server asked to stop stops cleanly
        log("stopped")
