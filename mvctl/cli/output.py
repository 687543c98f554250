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

from mvctl.errors import MvctlError
from mvctl.progress import Advance

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported only by output that needs it (tables, trees, progress bars): a rollback
# or a --json read stays clear of its import cost.

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CliState:
    traceback: bool = False


def stdout() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def say(text: str, *, mark: str = "✓", color: str = "green") -> None:
    """One line of outcome for people, without loading rich."""
    typer.echo(f"{typer.style(mark, fg=color)} {text}")


def print_json(data: Any) -> None:
    # Indented for a person at a terminal; compact for pipes, where Python's C encoder is
    # ten times faster (indentation forces the pure-Python one).
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, default=str, ensure_ascii=False) + "\n")


def handled(func: Callable[P, R]) -> Callable[..., R]:
    """Run a command, turning MvctlError into a red one-line message, a hint and its exit code.

    The wrapper takes Typer's context as an extra first parameter so it can read the global
    ``--traceback`` flag without module state.
    """

    @functools.wraps(func)
    def wrapper(ctx: typer.Context, *args: Any, **kwargs: Any) -> R:
        state = ctx.find_root().obj
        show_traceback = isinstance(state, CliState) and state.traceback
        try:
            return func(*args, **kwargs)
        except MvctlError as exc:
            if show_traceback:
                raise
            typer.echo(f"{typer.style('error:', fg='red', bold=True)} {exc.message}", err=True)
            if exc.hint:
                typer.echo(f"{typer.style('hint:', dim=True)} {exc.hint}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if show_traceback:
                raise
            typer.echo(
                f"{typer.style('interrupted', fg='red')}; nothing was left half-done", err=True
            )
            raise typer.Exit(130) from None

    params = list(inspect.signature(func, eval_str=True).parameters.values())
    ctx_param = inspect.Parameter(
        "ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context
    )
    wrapper.__signature__ = inspect.Signature([ctx_param, *params])  # type: ignore[attr-defined]
    return wrapper


class RichProgress:
    """A ProgressSink drawing rich progress bars on stderr, only when it is a terminal."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )

    def task(self, label: str, total: int | None) -> Advance:
        task_id = self._progress.add_task(label, total=total)

        def advance(amount: int) -> None:
            self._progress.advance(task_id, amount)

        return advance

    @contextmanager
    def running(self) -> Iterator[RichProgress]:
        with self._progress:
            yield self
