"""The serving host's command: mvctl pull (once, --watch, --status)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.output import (
    RichProgress,
    esc,
    handled,
    print_json,
    print_json_or_refuse,
    say,
    stderr,
    stdout,
)
from mvctl.common.progress import Advance
from mvctl.formats.names import redacted_url

METRICS_TOKEN_ENV = "MVCTL_METRICS_TOKEN"  # noqa: S105 - the variable's name

if TYPE_CHECKING:
    from mvctl.errors import MvctlError
    from mvctl.serving.hostmetrics import HostMetrics
    from mvctl.serving.layout import ChannelServed, Served
    from mvctl.serving.metricsserver import MetricsServer
    from mvctl.serving.request import ChannelOutcome, ChannelsResult, PullRequest


def _log(text: str, *, error: bool = False) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    typer.echo(f"{stamp} {text}", err=error)
    sys.stdout.flush()


def _held(version: str | None, weight: float | None) -> str:
    if version is None:
        return "nothing"
    return f"{version} at {weight:g}%" if weight is not None else version


def _describe(model: str, outcome: ChannelOutcome) -> str:
    where = f"{model}@{outcome.channel}"
    before = _held(outcome.previous, outcome.previous_weight)
    served = outcome.served
    if outcome.error is not None:
        return f"{where}: keeps {before} ({outcome.error.message})"
    if outcome.empty:
        alias = f"{model}@{outcome.channel}"
        return (
            f"{where}: the channel is empty (no alias {alias} on the remote): keeps serving "
            f"{before} until its next promotion"
        )
    if outcome.removed:
        return f"{where}: {before} -> nothing (its alias is gone; the version stays cached)"
    if served is None:
        return f"{where}: serving nothing (no alias)"
    now = _held(served.version, served.weight)
    if outcome.skipped:
        return f"{where}: serving {now} (its alias is still the one refused)"
    if not outcome.changed:
        return f"{where}: serving {now} (no change)"
    how = "downloaded and verified" if outcome.downloaded else "from the local cache"
    return f"{where}: {before} -> {now} ({how}) at {served.path}"


def _channels_dict(channels: dict[str, ChannelServed]) -> dict[str, object]:
    return {name: held.to_dict() for name, held in channels.items()}


def _print_status(
    served: Served | None, channels: dict[str, ChannelServed], dest: Path, as_json: bool
) -> None:
    if as_json:
        shown = served.to_dict() if served else {"dest": str(dest), "serving": None}
        print_json(shown | {"channels": _channels_dict(channels)})
        return
    if served is None and not channels:
        say(f"{dest} serves nothing yet", mark="-", color="yellow")
        return
    from rich.table import Table

    if served is not None:
        table = Table(show_header=False, title=esc(dest), title_justify="left")
        # A long path folds onto more lines rather than being cut.
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        for key, value in served.to_dict().items():
            table.add_row(esc(key), esc(", ".join(value) if isinstance(value, list) else value))
        stdout().print(table)
    if channels:
        rows = Table(title="channels", title_justify="left")
        for column in ("channel", "version", "weight", "since"):
            rows.add_column(column)
        for name, held in channels.items():
            weight = f"{held.weight:g}%" if held.weight is not None else "-"
            rows.add_row(esc(name), esc(held.version), weight, esc(held.since))
        stdout().print(rows)


@handled
def pull(
    dest: Annotated[Path, typer.Option("--dest", help="Host directory (created if missing).")],
    repo: Annotated[
        str | None, typer.Argument(help="The registry's git URL (what `git clone` takes).")
    ] = None,
    model: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            "-c",
            help="Channel to follow (production if none is given); repeat it to follow several "
            "(--channel production --channel canary): the first is what DEST/current serves.",
        ),
    ] = None,
    keep: Annotated[int, typer.Option("--keep", help="Versions kept for rollbacks.")] = 3,
    dvc_remote: Annotated[
        str | None,
        typer.Option("--dvc-remote", help="DVC remote name from your config, or a URL."),
    ] = None,
    on_change: Annotated[
        str | None,
        typer.Option(
            "--on-change",
            help="Command run after each channel's swap, MVCTL_CHANNEL naming it (split like "
            "a shell would).",
        ),
    ] = None,
    shell: Annotated[
        bool, typer.Option("--shell", help="Run --on-change through /bin/sh -c.")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep polling until stopped.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls with --watch.")
    ] = 30.0,
    pointer: Annotated[
        str | None,
        typer.Option(
            "--pointer",
            help="With --watch, poll the registry's pointer files at this DVC remote URL (a "
            "folder, http(s)://, s3://bucket/prefix) every --interval, and git only when one "
            "changes (registries with 'pointers: true'); git still decides what is served.",
        ),
    ] = None,
    git_interval: Annotated[
        float | None,
        typer.Option(
            "--git-interval",
            help="With --pointer, seconds between git polls when no pointer changes "
            "(default 60): the longest a stale or missing pointer delays a move.",
        ),
    ] = None,
    show_status: Annotated[
        bool, typer.Option("--status", help="Show what DEST serves and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="With --watch, serve Prometheus metrics on this port (bearer token from "
            "MVCTL_METRICS_TOKEN or --metrics-token-file).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics endpoint binds.")
    ] = "127.0.0.1",
    metrics_token_file: Annotated[
        Path | None,
        typer.Option("--metrics-token-file", help="File holding the metrics bearer token."),
    ] = None,
) -> None:
    """Follow channels on a serving host, swapping weights atomically.

    Each version's weights are verified before the swap.
    """
    import shlex

    from mvctl import serving
    from mvctl.errors import UsageError

    if show_status:
        where = dest.resolve()
        _print_status(serving.status(where), serving.served_channels(where), dest, as_json)
        return
    if repo is None or model is None:
        raise UsageError("pull needs REPO_URL and MODEL (or --status)")
    serving.check_interval(interval)
    try:
        argv = tuple(shlex.split(on_change)) if on_change else ()
    except ValueError as exc:  # an unterminated quote
        raise UsageError(f"--on-change cannot be split: {exc}") from None
    request = serving.PullRequest.following(
        repo,
        model,
        tuple(channel or ("production",)),
        dest,
        keep=keep,
        dvc_remote=dvc_remote,
        on_change=argv,
        shell=shell,
    )
    if metrics_port is None and metrics_token_file is not None:
        raise UsageError("--metrics-token-file goes with --metrics-port")
    if git_interval is not None and pointer is None:
        raise UsageError("--git-interval goes with --pointer", hint="plain polling uses --interval")
    if pointer is not None and not watch:
        raise UsageError("--pointer goes with --watch", hint="a single pull asks git directly")
    if git_interval is not None:
        serving.check_interval(git_interval)
    if metrics_port is not None and not watch:
        raise UsageError("--metrics-port goes with --watch", hint="a single pull has no metrics")
    if watch:
        metrics = (
            _metrics_server(request.model, metrics_host, metrics_port, metrics_token_file)
            if metrics_port is not None
            else None
        )
        polling = _Polling(interval, pointer, 60.0 if git_interval is None else git_interval)
        try:
            _watch(request, polling, as_json, metrics)
        finally:
            if metrics is not None:
                metrics[1].close()
    else:
        _pull_once(request, as_json)


def _hook_failure(result: ChannelsResult) -> MvctlError | None:
    from mvctl.errors import OperationalError

    for outcome in result.outcomes:
        if outcome.hook and outcome.hook.returncode != 0:
            version = outcome.version or "nothing"
            primary = outcome is result.outcomes[0]
            swap = f"the swap to {version}" if primary else f"{outcome.channel}'s swap to {version}"
            return OperationalError(
                f"--on-change exited {outcome.hook.returncode} after {swap}",
                hint="the new version is in place; fix the command or restart the server",
            )
    return None


def _report(result: ChannelsResult) -> dict[str, object]:
    from mvctl.serving.pull import primary_result

    primary = primary_result(result)
    return (primary.to_dict() if primary else {}) | {"channels": result.to_dict()}


def _pull_once(request: PullRequest, as_json: bool) -> None:
    from mvctl import serving

    progress = RichProgress(stderr(), quiet=as_json)
    with progress.running():
        result = serving.pull_channels(request, progress)
    errors = result.errors
    refusal = errors[0][1] if errors else _hook_failure(result)
    for channel, error in errors[1:]:  # the first is the command's own error line
        typer.echo(f"error: {request.model}@{channel}: {error.message}", err=True)
    if as_json:
        print_json_or_refuse(_report(result), refusal)
    elif len(result.outcomes) > 1 or not errors:
        for outcome in result.outcomes:
            say(_describe(request.model, outcome), **_mark(outcome))
    if refusal:
        raise refusal


def _mark(outcome: ChannelOutcome) -> dict[str, str]:
    if outcome.error is not None:
        return {"mark": "✗", "color": "red"}
    return {} if outcome.changed else {"mark": "·", "color": "white"}


def _metrics_server(
    model: str, host: str, port: int, token_file: Path | None
) -> tuple[HostMetrics, MetricsServer]:
    """The poller's metrics and their endpoint, listening already (a taken port fails
    before the first poll)."""
    import os

    from mvctl.errors import UsageError
    from mvctl.serving.hostmetrics import HostMetrics
    from mvctl.serving.metricsserver import MetricsServer
    from mvctl.web import auth

    if not 1 <= port <= 65535:
        raise UsageError(f"--metrics-port must be between 1 and 65535, not {port}")
    token = auth.load_token(
        token_file, os.environ, env=METRICS_TOKEN_ENV, server="the metrics endpoint"
    )
    metrics = HostMetrics(model)
    server = MetricsServer(metrics.render, host=host, port=port, token=token)
    server.start()
    where, bound = server.address
    _log(f"metrics on http://{where}:{bound}/metrics (bearer token required)")
    return metrics, server


class _DownloadLog:
    """The ProgressSink of ``--watch``: no bar, a log line for each download done, with
    its bytes and seconds."""

    def task(self, label: str, total: int | None) -> Advance:
        started = time.monotonic()
        done = 0

        def advance(amount: int) -> None:
            nonlocal done
            done += amount
            if done == total:
                _log(f"downloaded {label}: {done:,} bytes in {time.monotonic() - started:.1f} s")

        return advance


@dataclass(frozen=True)
class _Polling:
    interval: float
    pointer: str | None  # the pointer store's URL; None: plain git polling
    git_interval: float


def _watch(
    request: PullRequest,
    polling: _Polling,
    as_json: bool,
    metrics: tuple[HostMetrics, MetricsServer] | None = None,
) -> None:
    import json
    import signal
    import threading

    from mvctl import serving

    stop = threading.Event()

    def stop_on_signal(signum: int, _frame: object) -> None:
        _log(f"received {signal.Signals(signum).name}: stopping")
        stop.set()

    signal.signal(signal.SIGINT, stop_on_signal)
    signal.signal(signal.SIGTERM, stop_on_signal)

    empty: set[str] = set()  # channels said to be empty: said once, not every poll

    def on_result(result: ChannelsResult) -> None:
        if metrics is not None:
            metrics[0].observe(result)
        if as_json:
            typer.echo(json.dumps(_report(result)))
        for outcome in result.outcomes:
            news = outcome.changed or (outcome.empty and outcome.channel not in empty)
            if outcome.error is None:
                (empty.add if outcome.empty else empty.discard)(outcome.channel)
            if news and outcome.error is None and not as_json:
                _log(_describe(request.model, outcome))
            if outcome.hook and outcome.hook.returncode != 0:
                _log(
                    f"error: --on-change exited {outcome.hook.returncode} "
                    f"({request.model}@{outcome.channel})",
                    error=True,
                )

    def on_error(exc: MvctlError, retry_in: float) -> None:
        from mvctl.formats.pointer import BadPointer
        from mvctl.serving.pointerwatch import PointerMismatch

        if isinstance(exc, BadPointer | PointerMismatch):  # a hint refused: git decided
            _log(f"warning: {exc.message}", error=True)
            return
        if metrics is not None:
            metrics[0].error()
        _log(
            f"error: {exc.message} (still serving what it had; retry in {retry_in:.1f} s)",
            error=True,
        )

    # No bars in a log: one line per download instead (none with --json: JSON lines only).
    downloads = None if as_json else _DownloadLog()
    where = redacted_url(request.repo)  # a password or token in the URL is never printed
    followed = ", ".join(f"{request.model}@{c}" for c in request.followed)
    interval = polling.interval
    if polling.pointer is None:
        _log(f"following {followed} from {where} every {interval} s")
        serving.follow_channels(
            request,
            interval=interval,
            stop=stop,
            on_result=on_result,
            on_error=on_error,
            progress=downloads,
        )
        return
    _log(
        f"following {followed} from {where}: pointer files at "
        f"{redacted_url(polling.pointer)} every {interval} s, git every "
        f"{polling.git_interval} s or when a pointer changes"
    )
    serving.watch_pointer(
        request,
        polling.pointer,
        interval=interval,
        git_interval=polling.git_interval,
        stop=stop,
        on_result=on_result,
        on_error=on_error,
        progress=downloads,
    )
