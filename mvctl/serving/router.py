"""The in-process router: which channel answers a request, and everything around the answer.

A host directory serves a primary channel and, optionally, a weighted canary and a shadow.
A request goes to the canary by its key's sticky bucket (``routing``); a copy of every
request goes to the shadow on a worker thread, off the caller's path (``shadow``); each
request is a decision-log line (``decisions``) and counts in the router's own Prometheus
registry (``metrics``).

The channels are one immutable snapshot, replaced by a single assignment: a request reads
it once, so a request in flight finishes on the models it started with, and a swap never
fails one. A new model is loaded completely before the swap; one that fails to load is
never swapped in (``reload``).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl.errors import MvctlError, OperationalError
from mvctl.serving.decisions import DecisionLog
from mvctl.serving.errors import InvalidRequest, PredictError
from mvctl.serving.follow import check_interval
from mvctl.serving.layout import STATE, read_json, served_channels
from mvctl.serving.loaders import Inputs, check_max_bytes, load_model
from mvctl.serving.metrics import RouterMetrics
from mvctl.serving.reload import Reloader, stamp
from mvctl.serving.routing import (
    Answer,
    Channel,
    KeyRouter,
    Loaded,
    Snapshot,
    check_key,
    request_key,
    snapshot_of,
)
from mvctl.serving.shadow import ShadowWorker

__all__ = ["Answer", "Loaded", "Router"]


SHADOW_QUEUE_BYTES = 64 << 20  # what queued shadow copies may keep alive, by default


@dataclass(frozen=True)
class _ShadowCopy:
    channel: Channel
    inputs: Inputs
    key: str


class Router:
    def __init__(
        self,
        model: str,
        *,
        decision_log: Path | None = None,
        shadow_queue: int = 1000,
        shadow_queue_bytes: int = SHADOW_QUEUE_BYTES,
        log_outputs: bool = True,
        max_model_bytes: int | None = None,
    ) -> None:
        """``shadow_queue`` copies at most wait for the shadow, keeping at most about
        ``shadow_queue_bytes`` of inputs alive; ``max_model_bytes`` caps what a model file
        may unpack to (``load_model``'s ``max_bytes``; None: its default)."""
        if shadow_queue < 1:
            raise InvalidRequest(f"shadow_queue must be at least 1, not {shadow_queue}")
        if shadow_queue_bytes < 1:
            raise InvalidRequest(f"shadow_queue_bytes must be at least 1, not {shadow_queue_bytes}")
        check_max_bytes(max_model_bytes)
        self._max_model_bytes = max_model_bytes
        self.model = model
        self._keys = KeyRouter(model)
        self._snapshot = Snapshot()
        self._swap_lock = threading.RLock()  # one swap (or refresh) at a time
        self._metrics = RouterMetrics()
        self._log = (
            DecisionLog(decision_log, model=model, log_outputs=log_outputs)
            if decision_log is not None
            else None
        )
        self._shadow: ShadowWorker[_ShadowCopy] = ShadowWorker(
            shadow_queue,
            self._shadow_answer,
            self._metrics.shadow_dropped,
            f"mvctl-shadow-{model}",
            max_bytes=shadow_queue_bytes,
        )
        self._reloader = Reloader()

    # -- what serves ------------------------------------------------------------------

    def set_channels(self, loaded: Sequence[Loaded]) -> None:
        """``loaded[0]`` is the primary; a later channel with a weight is the canary; the
        channel named "shadow" gets a copy of every request; others are ignored. One
        atomic swap: a request in flight finishes on the snapshot it started with."""
        snapshot = snapshot_of(loaded, self._metrics.slot)
        with self._swap_lock:
            self._snapshot = snapshot  # the one assignment a request sees
            self._metrics.set_served(
                (c.loaded.channel, c.loaded.version) for c in snapshot.channels()
            )
        if snapshot.shadow is not None:
            self._shadow.start()

    def served(self) -> dict[str, str]:
        """channel -> version, primary first."""
        return {c.loaded.channel: c.loaded.version for c in self._snapshot.channels()}

    def loaded(self) -> list[Loaded]:
        """What serves now, primary first (what set_channels was given, less what it ignored)."""
        return [c.loaded for c in self._snapshot.channels()]

    @property
    def ready(self) -> bool:
        return self._snapshot.primary is not None

    @property
    def errors(self) -> dict[str, MvctlError]:
        """channel -> why its newest version could not be loaded (the old one serves)."""
        return dict(self._reloader.errors)

    def refresh(self, dest: Path, *, trust_pickle: bool = False, loader: str | None = None) -> bool:
        """One look at what ``dest`` serves: load the channels whose version directory
        changed, completely, then swap them in at once. A model that fails to load is never
        swapped in (what it would replace keeps serving; the error is in ``errors``), nor
        tried again until its channel names another directory. True if it swapped."""
        started = time.monotonic()
        with self._swap_lock:
            primary = _primary_named(dest)  # before the channels: see Reloader
            new = self._reloader.next_channels(
                served_channels(dest),
                self.loaded(),
                lambda path: load_model(
                    path, trust_pickle=trust_pickle, loader=loader, max_bytes=self._max_model_bytes
                ),
                primary,
            )
            if new is None:
                return False
            self.set_channels(new)
        self._metrics.reloaded(time.monotonic() - started)
        return True

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
        """refresh() whenever state.json changed (one stat a look) until ``stop`` is set;
        run it in a thread of its own. Each new load error is reported once."""
        check_interval(interval)
        seen: tuple[int, int, int] | None = None
        while not stop.is_set():
            try:
                now = stamp(dest / STATE)
                if now != seen:
                    seen, before = now, self.errors
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
        """The X-Request-Key header if given (1 to 256 printable ASCII characters), else
        the sha256 hex of the payload: the same request always routes the same way."""
        return request_key(header, payload)

    def route(self, key: str) -> str:
        """The channel that answers ``key``."""
        return self._keys.pick(self._snapshot, key).loaded.channel

    def predict(self, inputs: Inputs, *, key: str, body_size: int = 0) -> Answer:
        """Route, answer, log the decision, count it, and queue a copy for the shadow.
        ``body_size`` is the length of the request the inputs were decoded from, if any:
        it counts toward the copy's bytes what strings and nested values add. Raises
        NotReady with no model loaded, InvalidRequest (exit 2) for inputs the model cannot
        take, PredictError when the model itself fails."""
        check_key(key)
        snapshot = self._snapshot  # read once: a swap mid-request does not touch it
        target = self._keys.pick(snapshot, key)
        try:
            answer = self._answer(target, inputs, key)
        except InvalidRequest:
            raise  # the shadow would refuse it just the same
        except PredictError:
            if snapshot.shadow is not None:
                self._copy(snapshot.shadow, inputs, key, body_size)
            raise
        if snapshot.shadow is not None:
            self._copy(snapshot.shadow, inputs, key, body_size)
        return answer

    def _copy(self, shadow: Channel, inputs: Inputs, key: str, body_size: int) -> None:
        self._shadow.submit(_ShadowCopy(shadow, inputs, key), footprint(inputs) + body_size)

    def _answer(self, target: Channel, inputs: Inputs, key: str) -> Answer:
        loaded, slot = target.loaded, target.slot
        start = time.perf_counter()
        try:
            outputs = loaded.model.predict(inputs)
        except Exception as exc:
            latency = time.perf_counter() - start
            slot.requests.inc()
            slot.latency.observe(latency)
            if not isinstance(exc, InvalidRequest):  # the caller's mistake is not the model's
                slot.errors.inc()
            self._decision(target, key, latency, None, _describe(exc))
            if isinstance(exc, InvalidRequest):
                raise
            raise PredictError(
                f"{loaded.channel} {loaded.version} failed: {_describe(exc)}"
            ) from exc
        latency = time.perf_counter() - start
        slot.requests.inc()
        slot.latency.observe(latency)
        self._decision(target, key, latency, outputs, None)
        return Answer(loaded.channel, loaded.version, key, outputs, latency)

    def _shadow_answer(self, copy: _ShadowCopy) -> None:
        """On the shadow worker: answered, logged and counted, never returned. A copy queued
        for a shadow that has since been swapped out is dropped: a slow candidate's backlog
        must not hold up the next one, nor log answers of a version no longer shadowed."""
        now = self._snapshot.shadow
        if now is None or now.loaded.dir != copy.channel.loaded.dir:
            self._metrics.shadow_dropped()
            return
        try:
            self._answer(copy.channel, copy.inputs, copy.key)
        except Exception:
            self._metrics.shadow_error()

    def _decision(
        self,
        channel: Channel,
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
        """An outcome line (what became known later, such as the true label), joined to the
        decision by key. Without a decision log there is nothing to join it to: a no-op."""
        check_key(key)
        if self._log is not None:
            self._log.outcome(key, outcome)

    # -- reporting and shutdown -------------------------------------------------------

    @property
    def metrics_registry(self) -> Any:
        """The prometheus_client registry behind :meth:`metrics`, for a poller in the
        same process to add its own (``mvctl serve --follow``)."""
        return self._metrics.registry

    def metrics(self) -> tuple[bytes, str]:
        """Prometheus exposition text and its content type."""
        return self._metrics.render()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the shadow worker (copies still queued are dropped), flush and close the
        decision log. Requests after close are still answered; their shadow copies not."""
        self._shadow.close(timeout)
        if self._log is not None:
            self._log.close()


def footprint(inputs: Inputs) -> int:
    """About the bytes ``inputs`` keep alive: the list, its rows (lists or dicts, by
    sys.getsizeof) and a float's 24 bytes a value. One level deep, so cheap enough for the
    caller's path (~10 ms for 100,000 rows); what deeper values add, the request's length
    accounts for."""
    total = sys.getsizeof(inputs)
    try:
        return total + sum(map(sys.getsizeof, inputs)) + _VALUE * sum(map(len, inputs))
    except TypeError:  # rows that have no length (a custom loader's own inputs)
        return total + sum(
            sys.getsizeof(row) + (_VALUE * len(row) if isinstance(row, Sized) else 0)
            for row in inputs
        )


_VALUE = 24  # bytes of a float object; a smaller int is cached, a str is in the body


def _primary_named(dest: Path) -> str | None:
    """The channel ``dest``'s state.json names as its primary (None when it names none)."""
    state = read_json(dest / STATE)
    name = state.get("channel") if state is not None else None
    return name if isinstance(name, str) and name else None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
