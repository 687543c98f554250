"""The ``mvctl`` Typer application: global options and command registration."""

from __future__ import annotations

import copy
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

# The examples each `--help` ends with, by command path: a line is a command a user can
# paste, or a `# comment` on the one below. Kept here, in the module every command line
# already imports, so a rollback's start-up imports nothing more for them.
# tests/cli/test_help.py runs them against the command tree: flags, arguments, names.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "mvctl register fraud --weights model.pkl --metrics metrics.json",
        "mvctl promote fraud v1.4.0 --to production",
        "mvctl rollback fraud --reason 'false positives doubled after 14:00'",
    ),
    "init": (
        "mvctl init",
        "# artifacts in a team bucket instead of .mvctl/storage",
        "mvctl init --storage s3://ml-artifacts/registry",
    ),
    "register": (
        "mvctl register fraud --weights model.pkl --data data/train.csv \\",
        "    --metrics metrics.json --params params.yaml --env-lock uv.lock",
        "mvctl register fraud --version v2.0.0 --label season=holiday",
        "# tag and publish a registration interrupted after its commit",
        "mvctl register fraud --resume",
    ),
    "list": (
        "mvctl list",
        "mvctl list fraud --label season=holiday --metric 'auc>=0.9'",
        "mvctl list fraud --channel production --json",
    ),
    "show": ("mvctl show fraud@production", "mvctl show fraud@v1.4.0 --json"),
    "get": (
        "mvctl get fraud@v1.4.0 -o /tmp/fraud.pkl",
        "# from another machine, without cloning the registry",
        "mvctl get fraud@production --repo git@github.com:acme/models.git \\",
        "    -o model.pkl",
    ),
    "lineage": (
        "mvctl lineage fraud",
        "mvctl lineage fraud v1.4.0 --format mermaid",
    ),
    "diff": (
        "mvctl diff fraud v1.3.0 v1.4.0",
        "mvctl diff fraud v1.3.0 v1.4.0 --format markdown",
    ),
    "validate": (
        "mvctl validate fraud v1.4.0 --channel production",
        "mvctl validate fraud v1.4.0 -c production --eval-data holdout.parquet",
    ),
    "promote": (
        "mvctl promote fraud v1.4.0 --to production --reason 'Q3 retrain'",
        "mvctl promote fraud v1.5.0 --to canary --weight 5",
        "# the newest gold version labelled for the season",
        "mvctl promote fraud --to production --select 'label season=holiday'",
    ),
    "rollback": (
        "# production back to the last gold version it held",
        "mvctl rollback fraud --reason 'false positives doubled after 14:00'",
        "mvctl rollback fraud --channel canary --to v1.2.0 --reason 'drift in EU'",
    ),
    "unassign": (
        "mvctl unassign fraud --channel staging --reason 'experiment over'",
        "# production too, knowing the fleet keeps serving what it has",
        "mvctl unassign fraud --channel production --force --reason 'model withdrawn'",
    ),
    "history": ("mvctl history fraud", "mvctl history fraud --channel production --json"),
    "mark-gold": ("mvctl mark-gold fraud v1.2.0 --reason 'served all of Q2'",),
    "label": (
        "mvctl label fraud@v1.4.0 season=holiday team=risk",
        "mvctl label fraud@v1.4.0 season=winter --remove team",
        "mvctl label fraud@v1.4.0 --description 'Q4 retrain, holiday traffic'",
    ),
    "retire": ("mvctl retire fraud v1.0.0 --reason 'trained on revoked data'",),
    "sync": ("mvctl sync", "mvctl sync fraud --dry-run"),
    "propose": ("mvctl propose fraud v1.4.0 --to production --reason 'Q3 retrain' --push",),
    "apply": (
        "# in CI on the main branch, after a promotion request is merged",
        "mvctl apply --eval-data holdout.parquet",
    ),
    "check": (
        "mvctl check",
        "# in a pre-commit hook, without the network",
        "mvctl check --offline",
    ),
    "push": ("mvctl push", "mvctl push fraud --dry-run"),
    "status": ("mvctl status", "mvctl status fraud --json"),
    "pull": (
        "mvctl pull https://git.example.com/ml/models.git fraud --dest /srv/fraud",
        "# keep following two channels, swapping weights as they move",
        "mvctl pull https://git.example.com/ml/models.git fraud --dest /srv/fraud \\",
        "    --channel production --channel canary --watch --interval 30",
        "mvctl pull --status --dest /srv/fraud",
    ),
    "serve": (
        "mvctl serve /srv/fraud --port 8080 --token-file serve.token",
        "# pull and serve in one process",
        "mvctl serve /srv/fraud --follow https://git.example.com/ml/models.git \\",
        "    --model fraud --channel production --interval 30",
    ),
    "monitor": (
        "mvctl monitor fraud --live batch.parquet",
        "# yesterday's labelled predictions: roll back on a breach",
        "mvctl monitor fraud --predictions labelled.parquet --rollback",
    ),
    "gc": (
        "mvctl gc fraud",
        "mvctl gc fraud --keep-gold 2 --keep-recent 5 --yes",
    ),
    "ui": (
        "mvctl ui --token-file ui.token",
        "mvctl ui --read-only --hosts /srv/fraud --server http://10.0.0.7:8080",
    ),
    "webhook": ("mvctl webhook serve --token-file tokens/webhook.token",),
    "webhook serve": (
        "mvctl webhook serve --port 9465 --token-file tokens/webhook.token",
        "# log what each alert would roll back, and roll nothing",
        "mvctl webhook serve --token-file tokens/webhook.token --dry-run",
    ),
    "canary": (
        "mvctl canary weight fraud 25 --reason 'error rate flat for an hour'",
        "mvctl canary analyze fraud --log /srv/fraud/decisions.jsonl",
    ),
    "canary weight": ("mvctl canary weight fraud 25 --reason 'error rate flat for an hour'",),
    "canary stop": ("mvctl canary stop fraud --reason 'p99 latency x2 on the canary'",),
    "canary analyze": (
        "mvctl canary analyze fraud --log /srv/fraud/decisions.jsonl \\",
        "    --outcomes labels.jsonl --format markdown",
        "mvctl canary analyze fraud --channel shadow --log decisions.jsonl",
    ),
    "canary watch": (
        "mvctl canary watch fraud --log /srv/fraud/decisions.jsonl \\",
        "    --outcomes labels.jsonl --interval 60 --apply",
    ),
}


def epilog(path: str) -> str | None:
    """The Examples section of command ``path``'s help ("" is mvctl itself). The leading
    newline keeps the indent: Typer dedents an epilog's lines after its first."""
    lines = EXAMPLES.get(path)
    return "\n[bold]Examples[/]\n" + "\n".join(f"  {line}" for line in lines) if lines else None


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
        epilog=epilog(""),
    )
    new.callback()(root)
    for name, (module, attr) in _COMMANDS.items():
        if only is not None and name != only:
            continue
        target = getattr(importlib.import_module(f"mvctl.cli.{module}"), attr)
        if isinstance(target, typer.Typer):
            new.add_typer(_with_examples(target, name), name=name, epilog=epilog(name))
        else:
            new.command(name, epilog=epilog(name))(target)
    return new


def _with_examples(group: typer.Typer, name: str) -> typer.Typer:
    """Sub-app ``group`` whose commands end their help with their examples: a copy, so the
    module's own app stays as it was declared."""
    described = copy.copy(group)
    described.registered_commands = []
    for info in group.registered_commands:
        command = copy.copy(info)
        command.epilog = command.epilog or epilog(f"{name} {info.name}")
        described.registered_commands.append(command)
    return described


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
