"""SIGTERM is an interruption like Ctrl-C: systemd, CI cancellation and `timeout` send it,
and a write command must then leave the old or the new state, never half of each.

``install`` makes SIGTERM raise KeyboardInterrupt (as SIGINT does), so every ``finally`` and
undo runs; ``shielded`` holds both signals back while an undo or a state check runs, so a
second signal cannot cut the repair itself short; ``settle`` holds them for the rest of a
command whose write is complete, so what it prints next ("done") stays true.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def install() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread (SIGINT already does)."""
    signal.signal(signal.SIGTERM, _raise)


def settle() -> None:
    """The command's write is complete: from here on SIGINT/SIGTERM wait until it exits.
    Only under ``install`` (the CLI); a program using mvctl as a library keeps its signals."""
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is _raise
    ):
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


@contextmanager
def shielded() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then act."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
