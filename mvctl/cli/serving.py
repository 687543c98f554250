"""The serving host's command: mvctl pull (once, --watch, --status)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mvctl.cli.output import esc, handled, print_json, print_json_or_refuse, say, stdout
from mvctl.formats.names import redacted_url

if TYPE_CHECKING:
    from mvctl.errors import MvctlError
    from mvctl.serving.layout import Served
    from mvctl.serving.request import PullRequest, PullResult


def _log(text: str, *, error: bool = False) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    typer.echo(f"{stamp} {text}", err=error)
    sys.stdout.flush()


def _describe(result: PullResult) -> str:
    s = result.served
    where = f"{s.model}@{s.channel}"
    if not result.changed:
        return f"{where}: serving {s.version} (no change)"
    how = "downloaded and verified" if result.downloaded else "from the local cache"
    return f"{where}: {result.previous or 'nothing'} -> {s.version} ({how}) at {s.path}"


def _print_status(served: Served | None, dest: Path, as_json: bool) -> None:
    if as_json:
        print_json(served.to_dict() if served else {"dest": str(dest), "serving": None})
        return
    if served is None:
        say(f"{dest} serves nothing yet", mark="-", color="yellow")
        return
    from rich.table import Table

    table = Table(show_header=False, title=esc(dest), title_justify="left")
    for key, value in served.to_dict().items():
        table.add_row(esc(key), esc(", ".join(value) if isinstance(value, list) else value))
    stdout().print(table)


@handled
def pull(
    dest: Annotated[Path, typer.Option("--dest", help="Host directory (created if missing).")],
    repo: Annotated[
        str | None, typer.Argument(help="The registry's git URL (what `git clone` takes).")
    ] = None,
    model: Annotated[str | None, typer.Argument(help="Model name.")] = None,
    channel: Annotated[str, typer.Option("--channel", "-c", help="Channel.")] = "production",
    keep: Annotated[int, typer.Option("--keep", help="Versions kept for rollbacks.")] = 3,
    dvc_remote: Annotated[
        str | None,
        typer.Option("--dvc-remote", help="DVC remote name from your config, or a URL."),
    ] = None,
    on_change: Annotated[
        str | None,
        typer.Option("--on-change", help="Command run after a swap (split like a shell would)."),
    ] = None,
    shell: Annotated[
        bool, typer.Option("--shell", help="Run --on-change through /bin/sh -c.")
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Keep polling until stopped.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between polls with --watch.")
    ] = 30.0,
    show_status: Annotated[
        bool, typer.Option("--status", help="Show what DEST serves and exit.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Serving host: follow a channel and swap weights atomically, verified."""
    import shlex

    from mvctl import serving
    from mvctl.errors import UsageError

    if show_status:
        _print_status(serving.status(dest.resolve()), dest, as_json)
        return
    if repo is None or model is None:
        raise UsageError("pull needs REPO_URL and MODEL (or --status)")
    serving.check_interval(interval)
    try:
        argv = tuple(shlex.split(on_change)) if on_change else ()
    except ValueError as exc:  # an unterminated quote
        raise UsageError(f"--on-change cannot be split: {exc}") from None
    request = serving.PullRequest(
        repo=repo,
        model=model,
        channel=channel,
        dest=dest,
        keep=keep,
        dvc_remote=dvc_remote,
        on_change=argv,
        shell=shell,
    )
    if watch:
        _watch(request, interval, as_json)
    else:
        _pull_once(request, as_json)


def _pull_once(request: PullRequest, as_json: bool) -> None:
    from mvctl import serving
    from mvctl.errors import OperationalError

    result = serving.pull(request)
    refusal = None
    if result.hook and result.hook.returncode != 0:
        refusal = OperationalError(
            f"--on-change exited {result.hook.returncode} after the swap to "
            f"{result.served.version}",
            hint="the new version is in place; fix the command or restart the server",
        )
    if as_json:
        print_json_or_refuse(result.to_dict(), refusal)
    else:
        say(_describe(result))
    if refusal:
        raise refusal


def _watch(request: PullRequest, interval: float, as_json: bool) -> None:
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

    def on_result(result: PullResult) -> None:
        if as_json:
            typer.echo(json.dumps(result.to_dict()))
        elif result.changed:
            _log(_describe(result))
        if result.hook and result.hook.returncode != 0:
            _log(f"error: --on-change exited {result.hook.returncode}", error=True)

    def on_error(exc: MvctlError, retry_in: float) -> None:
        _log(
            f"error: {exc.message} (still serving what it had; retry in {retry_in:.1f} s)",
            error=True,
        )

    where = redacted_url(request.repo)  # a password or token in the URL is never printed
    _log(f"following {request.model}@{request.channel} from {where} every {interval} s")
    serving.follow(request, interval=interval, stop=stop, on_result=on_result, on_error=on_error)
