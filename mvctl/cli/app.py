"""The ``mvctl`` Typer application: global options and command registration."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated

import typer

from mvctl import __version__
from mvctl.cli.output import CliState, print_error_json
from mvctl.common import interrupts

# Every command, in the order `mvctl --help` lists them: name -> (module under mvctl.cli,
# function). A command line that names one builds the app with that command alone, so a
# rollback does not import, nor let Typer inspect, the other twenty-odd (~60 ms).
_COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("registry", "init"),
    "register": ("registry", "register"),
    "list": ("registry", "list_"),
    "show": ("registry", "show"),
    "get": ("get", "get"),
    "lineage": ("lineage", "lineage"),
    "diff": ("lineage", "diff"),
    "validate": ("channels", "validate"),
    "promote": ("channels", "promote"),
    "rollback": ("channels", "rollback"),
    "unassign": ("channels", "unassign"),
    "history": ("channels", "history"),
    "mark-gold": ("channels", "mark_gold"),
    "label": ("channels", "label"),
    "retire": ("channels", "retire"),
    "sync": ("publishing", "sync"),
    "propose": ("channels", "propose"),
    "apply": ("channels", "apply"),
    "check": ("check", "check"),
    "push": ("publishing", "push"),
    "status": ("publishing", "status"),
    "pull": ("serving", "pull"),
    "serve": ("serve", "serve"),
    "monitor": ("monitoring", "monitor"),
    "gc": ("retention", "gc"),
    "webhook": ("web", "webhook_app"),
    "ui": ("web", "ui"),
    "canary": ("canary", "canary_app"),
}
_ROOT_FLAGS = ("--traceback",)
_COMPLETION = "_MVCTL_COMPLETE"  # Click's shell-completion variable: every command


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mvctl {__version__}")
        raise typer.Exit()


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


def build(only: str | None = None) -> typer.Typer:
    """The application with every command, or with command ``only`` alone (the root
    callback keeps it a group: ``mvctl NAME ...`` parses as with all of them)."""
    new = typer.Typer(
        name="mvctl",
        help="A model registry and rollback safety net that lives in git and DVC.",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
    )
    new.callback()(root)
    for name, (module, attr) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"mvctl.cli.{module}"), attr)
        if isinstance(target, typer.Typer):
            new.add_typer(target, name=name)
        else:
            new.command(name)(target)
    return new


def _named_command(args: list[str]) -> str | None:
    """The command ``args`` run, when past the root's flags they start with one."""
    words = list(args)
    while words and words[0] in _ROOT_FLAGS:
        words.pop(0)
    if not words or words[0] not in _COMMANDS or _COMPLETION in os.environ:
        return None
    return words[0]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # `from mvctl.cli.app import app`: the whole application
        return build()
    raise AttributeError(name)


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
    app = build(_named_command(args))
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
