"""The ``mvctl`` Typer application: global options and command registration."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mvctl import __version__
from mvctl.cli import (
    canary,
    channels,
    check,
    lineage,
    monitoring,
    publishing,
    registry,
    retention,
    serve,
    serving,
    web,
)
from mvctl.cli.output import CliState, print_error_json
from mvctl.common import interrupts

app = typer.Typer(
    name="mvctl",
    help="A model registry and rollback safety net that lives in git and DVC.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mvctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    traceback: Annotated[
        bool, typer.Option("--traceback", help="Show the full traceback of an error.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A model registry and rollback safety net that lives in git and DVC."""
    ctx.obj = CliState(traceback=traceback)


app.command()(registry.init)
app.command()(registry.register)
app.command("list")(registry.list_)
app.command()(registry.show)
app.command()(lineage.lineage)
app.command()(lineage.diff)
app.command()(channels.validate)
app.command()(channels.promote)
app.command()(channels.rollback)
app.command()(channels.history)
app.command("mark-gold")(channels.mark_gold)
app.command()(channels.retire)
app.command()(channels.label)
app.command()(publishing.sync)
app.command()(channels.propose)
app.command()(channels.apply)
app.command()(check.check)
app.command()(publishing.push)
app.command()(publishing.status)
app.command()(serving.pull)
app.command()(serve.serve)
app.command()(monitoring.monitor)
app.command()(retention.gc)
app.add_typer(web.webhook_app, name="webhook")
app.command()(web.ui)
app.add_typer(canary.canary_app, name="canary")


def _json_requested(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json``, ``--format json``, ``-f json``)."""
    words = args[: args.index("--")] if "--" in args else args
    pairs = zip(words, [*words[1:], ""][: len(words)], strict=True)  # `mvctl` alone: none
    return any(
        word in ("--json", "--format=json", "-fjson")
        or (word in ("--format", "-f") and nxt == "json")
        for word, nxt in pairs
    )


def main() -> None:
    # SIGTERM (systemd, CI cancellation, `timeout`) interrupts like Ctrl-C: undo runs.
    interrupts.install()
    args = sys.argv[1:]
    if not _json_requested(args):
        app()
        return
    # Under --json a usage error (unknown option, missing argument, bad choice) is one JSON
    # object on stdout too: Typer raises it to us instead of printing it when it does not
    # run standalone; MvctlErrors are already turned into JSON by `handled`.
    try:
        code = app(args=args, standalone_mode=False)
    except typer.TyperException as exc:
        ctx = getattr(exc, "ctx", None)
        command = getattr(ctx, "command_path", None) or "mvctl"
        message, hint = exc.format_message(), f"see {command} --help"
        typer.echo(f"{typer.style('error:', fg='red', bold=True)} {message}", err=True)
        print_error_json(message, hint, exc.exit_code)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo(f"{typer.style('aborted', fg='red')}", err=True)
        print_error_json("aborted", None, 1)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
