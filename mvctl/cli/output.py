"""Printing for the CLI: rich for people, JSON for machines, one-line errors with a hint."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from mvctl.common.progress import Advance
from mvctl.errors import MvctlError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from mvctl.publishing.pointers import PointerReport

# rich is imported only by output that needs it (tables, trees, progress bars): a rollback
# or a --json read stays clear of its import cost.

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CliState:
    traceback: bool = False


def stdout() -> Console:
    from rich.console import Console

    # No highlighting and no :emoji: codes: user text prints as typed.
    return Console(highlight=False, emoji=False, soft_wrap=False)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)


def esc(value: object) -> str:
    """``value`` as Rich markup that prints it verbatim.

    Everything a user or a registry wrote (reasons, identities, params, metric keys, column
    names, paths) goes through here before it joins a markup string or a table cell: a
    ``[/x]`` in it would otherwise crash the command, and ``[bold red]...[/]`` restyle it.
    """
    text = str(value)
    # Only a '[' or a trailing backslash (which would escape the next tag) can mean markup;
    # skipping the rest keeps a 10,000-row table fast.
    if "[" not in text and not text.endswith("\\"):
        return text
    from rich.markup import escape

    return escape(text)


def say(text: str, *, mark: str = "✓", color: str = "green") -> None:
    """One line of outcome for people, without loading rich."""
    typer.echo(f"{typer.style(mark, fg=color)} {text}")


def print_json(data: Any) -> None:
    # Indented for a person at a terminal; compact for pipes, where Python's C encoder is
    # ten times faster (indentation forces the pure-Python one).
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=str, ensure_ascii=False) + "\n")


def print_error_json(
    message: str, hint: str | None, exit_code: int, report: dict[str, Any] | None = None
) -> None:
    """An error for machines: one object on stdout (DESIGN.md), a refused report's fields
    alongside when the command has one (``passed``, ``results``... stay where scripts read
    them)."""
    error: dict[str, Any] = {"error": message, "hint": hint, "exit": exit_code}
    print_json(error | {k: v for k, v in (report or {}).items() if k not in error})


class ReportedError(Exception):
    """An MvctlError that follows a report: under --json both go out as one object."""

    def __init__(self, error: MvctlError, report: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.error = error
        self.report = report


def print_json_or_refuse(report: dict[str, Any], refusal: MvctlError | None) -> None:
    """--json output of a command that may refuse after reporting (validate, check, monitor):
    the report alone, or, with the refusal, one error object that carries it."""
    if refusal is None:
        print_json(report)
        return
    raise ReportedError(refusal, report)


def wants_json(params: dict[str, Any]) -> bool:
    """Whether a command's parameters ask for JSON: ``--json`` or ``--format json``."""
    return bool(params.get("as_json")) or str(params.get("fmt", "")) == "json"


def handled(func: Callable[P, R]) -> Callable[..., R]:
    """Run a command, turning MvctlError into a red one-line message, a hint and its exit code
    (and, under --json, the same as one JSON object on stdout).

    The wrapper takes Typer's context as an extra first parameter so it can read the global
    ``--traceback`` flag without module state.
    """

    @functools.wraps(func)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> R:
        state = ctx.find_root().obj
        show_traceback = isinstance(state, CliState) and state.traceback
        as_json = wants_json(kwargs)
        try:
            return func(*args, **kwargs)
        except (MvctlError, ReportedError) as caught:
            if show_traceback:
                raise
            exc = caught.error if isinstance(caught, ReportedError) else caught
            report = caught.report if isinstance(caught, ReportedError) else None
            typer.echo(f"{typer.style('error:', fg='red', bold=True)} {exc.message}", err=True)
            if exc.hint:
                typer.echo(f"{typer.style('hint:', dim=True)} {exc.hint}", err=True)
            if as_json:
                print_error_json(exc.message, exc.hint, exc.exit_code, report)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if show_traceback:
                raise
            typer.echo(
                f"{typer.style('interrupted', fg='red')}; nothing was left half-done", err=True
            )
            if as_json:
                print_error_json("interrupted; nothing was left half-done", None, 130)
            raise typer.Exit(130) from None

    params = list(inspect.signature(func, eval_str=True).parameters.values())
    ctx_param = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    wrapper.__signature__ = inspect.Signature([ctx_param, *params])  # type: ignore[attr-defined]
    return wrapper


class RichProgress:
    """A ProgressSink drawing rich progress bars (bytes done / total, rate) on stderr, only
    when it is a terminal (TTY_COMPATIBLE=1 or FORCE_COLOR=1 force one) and not ``quiet``:
    a command given --json draws none, so a machine's capture of both streams stays clean."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        # The bars are made at the first task: a command that transfers nothing (a pull
        # that finds no change, every --json run) never imports rich.progress (~60 ms).
        self._console = console
        self._disabled = quiet or not console.is_terminal
        self._bars: Progress | None = None
        self._running = False

    @property
    def drawn(self) -> bool:
        """Whether bars are drawn: work that only feeds them can be skipped otherwise."""
        return not self._disabled

    def task(self, label: str, total: int | None) -> Advance:
        if self._disabled:
            return _ignore
        bars = self._progress()
        task_id = bars.add_task(label, total=total)

        def advance(amount: int) -> None:
            bars.advance(task_id, amount)

        return advance

    def _progress(self) -> Progress:
        if self._bars is None:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TransferSpeedColumn,
            )

            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),  # labels hold paths
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                console=self._console,
                transient=True,
            )
            if self._running:
                self._bars.start()
        return self._bars

    @contextmanager
    def running(self) -> Iterator[RichProgress]:
        self._running = True
        try:
            yield self
        finally:
            self._running = False
            if self._bars is not None:
                self._bars.stop()


def _ignore(amount: int) -> None:
    """The advance of a task no bar shows."""


def warn_pointers(report: PointerReport | None) -> None:
    """A pointer file that could not be written: a warning on stderr (with --json too), as
    the move itself is published in git and the command succeeds."""
    if report is not None and report.warning:
        typer.echo(f"{typer.style('warning:', fg='yellow')} {report.warning}", err=True)


def say_published(
    pushed: bool, remote: str | None, published: tuple[str, ...], dry_run: bool = False
) -> None:
    """One line on where a write went: the remote the fleet follows, or only this clone."""
    if dry_run:
        where = f"would be published to {remote}" if remote else "would stay local"
        say(where, mark="·", color="white")
    elif pushed:
        shown = ", ".join(published[:4]) + (
            f" and {len(published) - 4} more" if len(published) > 4 else ""
        )
        say(f"published to {remote}: {shown}")
    else:
        say(
            "kept local (--local, 'push: never' or no git remote): serving hosts will not "
            "see it until 'mvctl push'",
            mark="!",
            color="yellow",
        )
