"""How core functions report progress on long work without printing anything themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Advance = Callable[[int], None]


class ProgressSink(Protocol):
    def task(self, label: str, total: int | None) -> Advance:
        """Start a task of ``total`` units (None: unknown); return how to advance it."""
        ...


class NoProgress:
    def task(self, label: str, total: int | None) -> Advance:
        return _ignore


def _ignore(_: int) -> None:
    return None
