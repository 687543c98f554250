"""The shadow worker: a bounded queue and one thread, off the caller's path. A caller never
waits for it: a copy that does not fit is dropped (and counted by the caller's callback)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_STOP = object()


class ShadowWorker(Generic[T]):
    def __init__(
        self, size: int, run: Callable[[T], None], on_drop: Callable[[], None], name: str
    ) -> None:
        self._queue: queue.Queue[T | object] = queue.Queue(maxsize=size)
        self._run = run
        self._on_drop = on_drop
        self._closing = threading.Event()
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, item: T) -> None:
        """Queue ``item`` without ever blocking; a full queue drops it."""
        if self._closing.is_set():
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._on_drop()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP or self._closing.is_set():
                return
            with contextlib.suppress(Exception):  # ``run`` counts its own failures
                self._run(item)  # type: ignore[arg-type]

    def close(self, timeout: float) -> None:
        """Stop after the copy in progress; copies still queued are dropped."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)  # wakes a worker waiting for work
        if self._thread is not None:
            self._thread.join(timeout)
