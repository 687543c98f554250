"""``mvctl monitor``: a channel's monitors on live data (mvctl.monitoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.output import handled, print_json_or_refuse, say, say_published
from mvctl.cli.render import monitoring as render


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
        Path | None,
        typer.Option(
            "--metrics",
            help="Live metrics exported as JSON/YAML, or a saved Prometheus query API "
            "response (JSON).",
        ),
    ] = None,
    prometheus: Annotated[
        str | None,
        typer.Option(
            "--prometheus",
            help="Read live metrics from this Prometheus (base URL; bearer token from "
            "MVCTL_PROMETHEUS_TOKEN if set).",
        ),
    ] = None,
    query: Annotated[
        list[str] | None,
        typer.Option(
            "--query",
            help="With --prometheus: NAME=PROMQL (its one result is metric NAME), or PROMQL "
            "whose results are named by __name__; repeatable.",
        ),
    ] = None,
    query_timeout: Annotated[
        float, typer.Option("--query-timeout", help="Seconds a Prometheus query may take.")
    ] = 10.0,
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
    """Check live data and metrics against the channel's monitors.

    Exit 1 on a breach; with --rollback, the channel is rolled back too.
    """
    import os

    from mvctl.errors import MvctlError, PolicyError, UsageError
    from mvctl.formats.queryapi import parse_query
    from mvctl.monitoring.live import PrometheusSource
    from mvctl.monitoring.monitor import monitor as run_monitor

    if query and prometheus is None:
        raise UsageError("--query goes with --prometheus URL")
    source = None
    if prometheus is not None:
        token = os.environ.get("MVCTL_PROMETHEUS_TOKEN", "").strip() or None
        queries = tuple(parse_query(q) for q in query or ())
        source = PrometheusSource(prometheus, queries, token, query_timeout)

    report = run_monitor(
        Path.cwd(),
        model,
        channel,
        live=live,
        predictions=predictions,
        metrics_file=metrics,
        prometheus=source,
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
