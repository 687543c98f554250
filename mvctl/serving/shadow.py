"""The shadow worker: a bounded queue and one thread, off the caller's path. A caller never
waits for it: a copy that does not fit is dropped (and counted by the caller's callback).

The queue is bounded twice: in copies, and in the bytes the copies keep alive (each holds a
request's decoded inputs), so a slow shadow behind big requests cannot pile them up in
memory. A copy's bytes stay counted until the worker has finished with it."""

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
        self,
        size: int,
        run: Callable[[T], None],
        on_drop: Callable[[], None],
        name: str,
        *,
        max_bytes: int | None = None,
    ) -> None:
        self._queue: queue.Queue[tuple[T, int] | object] = queue.Queue(maxsize=size)
        self._run = run
        self._on_drop = on_drop
        self._closing = threading.Event()
        self._name = name
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._bytes = 0  # of the copies queued or being run
        self._bytes_lock = threading.Lock()

    @property
    def pending_bytes(self) -> int:
        """Bytes of the copies queued or in progress."""
        return self._bytes

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closing.is_set():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, item: T, cost: int = 0) -> None:
        """Queue ``item`` (keeping about ``cost`` bytes alive) without ever blocking; a full
        queue, in copies or in bytes, drops it."""
        if self._closing.is_set():
            return
        with self._bytes_lock:
            if self._max_bytes is not None and self._bytes + cost > self._max_bytes:
                fits = False
            else:
                try:
                    self._queue.put_nowait((item, cost))
                    self._bytes += cost
                    fits = True
                except queue.Full:
                    fits = False
        if not fits:
            self._on_drop()

    def _loop(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is _STOP or self._closing.is_set():
                return
            item: T
            cost: int
            item, cost = entry  # type: ignore[misc]
            try:
                with contextlib.suppress(Exception):  # ``run`` counts its own failures
                    self._run(item)
            finally:
                del item, entry  # the inputs are freed before their bytes are
                with self._bytes_lock:
                    self._bytes -= cost

    def close(self, timeout: float) -> None:
        """Stop after the copy in progress; copies still queued are dropped."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)  # wakes a worker waiting for work
        if self._thread is not None:
            self._thread.join(timeout)
