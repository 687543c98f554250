"""The ``mvctl`` Typer application: global options and command registration."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mvctl import __version__, interrupts
from mvctl.cli import (
    channel_cmds,
    lineage_cmds,
    monitor_cmds,
    publish_cmds,
    registry_cmds,
    serving_cmds,
)
from mvctl.cli.output import CliState, print_error_json

app = typer.Typer(
    name="mvctl",
    help="A model registry and rollback safety net that lives in git and DVC.",
    no_args_is_help=True,
    add_completion=False,
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


app.command()(registry_cmds.init)
app.command()(registry_cmds.register)
app.command("list")(registry_cmds.list_)
app.command()(registry_cmds.show)
app.command()(lineage_cmds.lineage)
app.command()(lineage_cmds.diff)
app.command()(channel_cmds.validate)
app.command()(channel_cmds.promote)
app.command()(channel_cmds.rollback)
app.command()(channel_cmds.history)
app.command("mark-gold")(channel_cmds.mark_gold)
app.command()(channel_cmds.retire)
app.command()(channel_cmds.sync)
app.command()(channel_cmds.propose)
app.command()(channel_cmds.apply)
app.command()(channel_cmds.check)
app.command()(publish_cmds.push)
app.command()(publish_cmds.status)
app.command()(serving_cmds.pull)
app.command()(monitor_cmds.monitor)
app.add_typer(monitor_cmds.webhook_app, name="webhook")


def _json_requested(args: list[str]) -> bool:
    """Whether the command line asks for JSON (``--json``, ``--format json``, ``-f json``)."""
    words = args[: args.index("--")] if "--" in args else args
    pairs = zip(words, [*words[1:], ""], strict=True)
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
