"""Printing for the CLI: rich for people, JSON for machines, one-line errors with a hint."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from mvctl.errors import MvctlError
from mvctl.progress import Advance

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class CliState:
    traceback: bool = False


def stdout() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False)


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
            err = stderr()
            err.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
            if exc.hint:
                err.print(f"[dim]hint:[/] {exc.hint}", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            if show_traceback:
                raise
            stderr().print("[red]interrupted[/]; nothing was left half-done")
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
