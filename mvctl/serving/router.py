"""The in-process router: which channel answers a request, and everything around the answer.

A host directory serves a primary channel and, optionally, a weighted canary and a shadow.
A request goes to the canary iff its key's bucket is below the canary's weight; the bucket
is a hash of model and key alone, so every replica, process and restart sends a key to the
same channel, and raising the weight only moves keys to the canary, never back. A copy of
every request goes to the shadow on a worker thread, off the caller's path: a queue that is
full drops the copy (counted) rather than make the caller wait.

The channels are one immutable snapshot, replaced by a single assignment: a request reads
it once, so a request in flight finishes on the models it started with, and a swap never
fails one. A new model is loaded completely before the swap; one that fails to load is
never swapped in.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl.errors import MvctlError, OperationalError
from mvctl.serving.decisions import DecisionLog
from mvctl.serving.errors import InvalidRequest, NotReady, PredictError
from mvctl.serving.follow import check_interval
from mvctl.serving.layout import STATE, ChannelServed, served_channels
from mvctl.serving.loaders import Inputs, LoadedModel, load_model
from mvctl.serving.metrics import RouterMetrics, Slot

SHADOW = "shadow"
KEY_MAX = 256
_KEY_RE = re.compile(rf"[\x20-\x7e]{{1,{KEY_MAX}}}")  # printable ASCII, as a header carries
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    """One channel's model, ready to answer."""

    channel: str
    version: str
    model: LoadedModel
    weight: float | None  # percent, for the weighted (canary) channel
    dir: str  # versions/NAME it was loaded from (reload only when this changes)


@dataclass(frozen=True)
class Answer:
    channel: str
    version: str
    key: str
    outputs: list[Any]
    latency_s: float


@dataclass(frozen=True)
class _Channel:
    loaded: Loaded
    role: str
    slot: Slot


@dataclass(frozen=True)
class _Snapshot:
    """What serves, swapped whole: read once per request, never mutated."""

    primary: _Channel | None = None
    canary: _Channel | None = None
    shadow: _Channel | None = None

    def channels(self) -> list[_Channel]:
        return [c for c in (self.primary, self.canary, self.shadow) if c is not None]


@dataclass(frozen=True)
class _ShadowCopy:
    channel: _Channel
    inputs: Inputs
    key: str


_STOP = object()


def bucket(model: str, key: str) -> float:
    """The key's place in [0, 100): the same on every host and in every process."""
    digest = hashlib.sha256(f"{model}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


class Router:
    def __init__(
        self,
        model: str,
        *,
        decision_log: Path | None = None,
        shadow_queue: int = 1000,
        log_outputs: bool = True,
    ) -> None:
        if shadow_queue < 1:
            raise InvalidRequest(f"shadow_queue must be at least 1, not {shadow_queue}")
        self.model = model
        self._prefix = hashlib.sha256(f"{model}\0".encode())
        self._snapshot = _Snapshot()
        self._swap_lock = threading.RLock()  # swaps, refreshes and the worker's start
        self._metrics = RouterMetrics()
        self._log = (
            DecisionLog(decision_log, log_outputs=log_outputs) if decision_log is not None else None
        )
        self._queue: queue.Queue[_ShadowCopy | object] = queue.Queue(maxsize=shadow_queue)
        self._worker: threading.Thread | None = None
        self._closing = threading.Event()
        self._errors: dict[str, MvctlError] = {}
        self._failed: dict[str, str] = {}  # channel -> dir that failed to load

    # -- what serves ------------------------------------------------------------------

    def set_channels(self, loaded: Sequence[Loaded]) -> None:
        """``loaded[0]`` is the primary; a later channel with a weight is the canary; the
        channel named "shadow" gets a copy of every request; others are ignored."""
        primary = canary = shadow = None
        if loaded:
            primary = self._channel(loaded[0], "primary")
            for item in loaded[1:]:
                if item.channel == SHADOW and shadow is None:
                    shadow = self._channel(item, SHADOW)
                elif item.channel != SHADOW and item.weight is not None and canary is None:
                    canary = self._channel(item, "canary")
        snapshot = _Snapshot(primary, canary, shadow)
        with self._swap_lock:
            self._snapshot = snapshot  # the one assignment a request sees
            self._metrics.set_served(
                (c.loaded.channel, c.loaded.version) for c in snapshot.channels()
            )
        if shadow is not None:
            self._start_worker()

    def _channel(self, loaded: Loaded, role: str) -> _Channel:
        weight = loaded.weight
        if weight is not None and not 0 <= weight <= 100:
            raise InvalidRequest(f"weight of {loaded.channel} must be 0-100 percent, not {weight}")
        return _Channel(loaded, role, self._metrics.slot(loaded.channel, loaded.version))

    def served(self) -> dict[str, str]:
        """channel -> version, primary first."""
        return {c.loaded.channel: c.loaded.version for c in self._snapshot.channels()}

    def loaded(self) -> list[Loaded]:
        """What serves now, primary first (the argument set_channels was given, less what
        it ignored)."""
        return [c.loaded for c in self._snapshot.channels()]

    @property
    def ready(self) -> bool:
        return self._snapshot.primary is not None

    @property
    def errors(self) -> dict[str, MvctlError]:
        """channel -> why its newest version could not be loaded (the old one serves)."""
        return dict(self._errors)

    def refresh(self, dest: Path, *, trust_pickle: bool = False, loader: str | None = None) -> bool:
        """One look at what ``dest`` serves: load the channels whose version directory
        changed, completely, then swap them in at once. A model that fails to load is never
        swapped in (the one it would replace keeps serving; the error is in ``errors``); a
        directory that failed is not tried again until the channel names another one.
        True if what serves changed."""
        with self._swap_lock:
            wanted = served_channels(dest)
            have = {item.channel: item for item in self.loaded()}
            by_dir = {item.dir: item.model for item in have.values()}
            new: list[Loaded] = []
            for channel, entry in wanted.items():
                item = self._refreshed(
                    channel, entry, have.get(channel), by_dir, trust_pickle, loader
                )
                if item is not None:
                    new.append(item)
                elif not new:
                    return False  # no primary to serve: keep everything as it is
            if [_identity(i) for i in new] == [_identity(i) for i in have.values()]:
                return False
            self.set_channels(new)
            return True

    def _refreshed(
        self,
        channel: str,
        entry: ChannelServed,
        old: Loaded | None,
        by_dir: dict[str, LoadedModel],
        trust_pickle: bool,
        loader: str | None,
    ) -> Loaded | None:
        if old is not None and old.dir == entry.dir:
            self._errors.pop(channel, None)
            self._failed.pop(channel, None)
            return dataclasses.replace(old, weight=entry.weight)
        model = by_dir.get(entry.dir)
        if model is None:
            if self._failed.get(channel) == entry.dir:
                return old
            try:
                model = load_model(entry.path, trust_pickle=trust_pickle, loader=loader)
            except MvctlError as exc:
                self._failed[channel], self._errors[channel] = entry.dir, exc
                still = old.version if old else "nothing"
                _log.warning(
                    "%s %s not loaded, serving %s: %s", channel, entry.version, still, exc.message
                )
                return old
        self._errors.pop(channel, None)
        self._failed.pop(channel, None)
        return Loaded(channel, entry.version, model, entry.weight, entry.dir)

    def follow(
        self,
        dest: Path,
        *,
        stop: threading.Event,
        interval: float = 0.5,
        trust_pickle: bool = False,
        loader: str | None = None,
        on_swap: Callable[[dict[str, str]], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """refresh() until ``stop`` is set, whenever state.json changed (a stat a look);
        run it in a thread of its own. Each new load error is reported once."""
        check_interval(interval)
        seen: tuple[int, int, int] | None = None
        while not stop.is_set():
            try:
                now = _stamp(dest / STATE)
                if now != seen:
                    before = self.errors
                    seen = now
                    if self.refresh(dest, trust_pickle=trust_pickle, loader=loader) and on_swap:
                        on_swap(self.served())
                    for channel, exc in self.errors.items():
                        if before.get(channel) is not exc and on_error is not None:
                            on_error(exc)
            except Exception as exc:  # a follower never dies of one look
                seen = None
                if on_error is not None:
                    on_error(
                        exc
                        if isinstance(exc, MvctlError)
                        else OperationalError(f"unexpected {type(exc).__name__}: {exc}")
                    )
            stop.wait(interval)

    # -- one request ------------------------------------------------------------------

    @staticmethod
    def request_key(header: str | None, payload: bytes) -> str:
        """The X-Request-Key header if given (printable ASCII, at most 256 characters),
        else the sha256 of the payload: the same request always routes the same way."""
        if header is None:
            return hashlib.sha256(payload).hexdigest()
        return _checked_key(header)

    def route(self, key: str) -> str:
        """The channel that answers ``key``."""
        return self._pick(self._snapshot, key).loaded.channel

    def _pick(self, snapshot: _Snapshot, key: str) -> _Channel:
        primary, canary = snapshot.primary, snapshot.canary
        if primary is None:
            raise NotReady(f"no model of {self.model} is loaded yet", hint="wait for a pull")
        if canary is not None:
            h = self._prefix.copy()
            h.update(key.encode())
            weight = canary.loaded.weight or 0.0
            if int.from_bytes(h.digest()[:8], "big") % 10_000 / 100 < weight:
                return canary
        return primary

    def predict(self, inputs: Inputs, *, key: str) -> Answer:
        """Route, answer, log the decision, count it, and queue a copy for the shadow."""
        _checked_key(key)
        snapshot = self._snapshot  # read once: a swap mid-request does not touch it
        target = self._pick(snapshot, key)
        try:
            return self._answer(target, inputs, key)
        finally:
            if snapshot.shadow is not None:
                self._enqueue(_ShadowCopy(snapshot.shadow, inputs, key))

    def _answer(self, target: _Channel, inputs: Inputs, key: str) -> Answer:
        loaded = target.loaded
        start = time.perf_counter()
        try:
            outputs = loaded.model.predict(inputs)
        except Exception as exc:
            latency = time.perf_counter() - start
            self._count(target, latency, error=True)
            self._decision(target, key, latency, None, _describe(exc))
            if isinstance(exc, InvalidRequest):
                raise
            raise PredictError(
                f"{loaded.channel} {loaded.version} failed: {_describe(exc)}"
            ) from exc
        latency = time.perf_counter() - start
        self._count(target, latency, error=False)
        self._decision(target, key, latency, outputs, None)
        return Answer(loaded.channel, loaded.version, key, outputs, latency)

    def _count(self, channel: _Channel, latency: float, *, error: bool) -> None:
        channel.slot.requests.inc()
        channel.slot.latency.observe(latency)
        if error:
            channel.slot.errors.inc()

    def _decision(
        self,
        channel: _Channel,
        key: str,
        latency: float,
        outputs: list[Any] | None,
        error: str | None,
    ) -> None:
        if self._log is not None:
            self._log.decision(
                key=key,
                channel=channel.loaded.channel,
                version=channel.loaded.version,
                latency_s=latency,
                role=channel.role,
                outputs=outputs,
                error=error,
            )

    def outcome(self, key: str, outcome: Any) -> None:
        """An outcome line (the label that became known later), joined to the decision by
        key. Without a decision log there is nothing to join it to, and nothing is kept."""
        _checked_key(key)
        if self._log is not None:
            self._log.outcome(key, outcome)

    # -- the shadow, off the caller's path ---------------------------------------------

    def _enqueue(self, copy: _ShadowCopy) -> None:
        if self._closing.is_set():
            return
        try:
            self._queue.put_nowait(copy)
        except queue.Full:
            self._metrics.shadow_dropped()

    def _start_worker(self) -> None:
        with self._swap_lock:
            if self._worker is not None or self._closing.is_set():
                return
            self._worker = threading.Thread(
                target=self._shadow_loop, name=f"mvctl-shadow-{self.model}", daemon=True
            )
            self._worker.start()

    def _shadow_loop(self) -> None:
        while not self._closing.is_set():
            copy = self._queue.get()
            if not isinstance(copy, _ShadowCopy) or self._closing.is_set():
                break
            # A shadow's answers and failures are logged and counted, never returned.
            try:
                self._answer(copy.channel, copy.inputs, copy.key)
            except Exception:
                self._metrics.shadow_error()

    # -- reporting and shutdown -------------------------------------------------------

    def metrics(self) -> tuple[bytes, str]:
        """Prometheus exposition text and its content type."""
        return self._metrics.render()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the shadow worker (copies still queued are dropped), flush and close the
        decision log. Requests after close are still answered; their shadow copies not."""
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)  # wakes a worker waiting for work
        if self._worker is not None:
            self._worker.join(timeout)
        if self._log is not None:
            self._log.close()


def _identity(item: Loaded) -> tuple[str, str, str, float | None]:
    return (item.channel, item.version, item.dir, item.weight)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a pull replaces state.json (by rename: a new inode)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InvalidRequest(
            f"invalid request key: 1 to {KEY_MAX} printable ASCII characters",
            hint="send X-Request-Key as a short printable id, or leave it out",
        )
    return key


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
