"""A serving host's poller metrics (``mvctl pull --watch --metrics-port``, and ``mvctl serve
--follow`` beside the router's), so that Prometheus can tell a host that lags its alias:

    mvctl_served_info{model,channel,version}        1 for what the host serves now
    mvctl_alias_info{model,channel,version,commit}  1 for what the alias names, as the last
                                                    successful ls-remote saw it (version
                                                    "unknown" until the host has it)
    mvctl_last_sync_timestamp_seconds{model}        end of the last poll without an error
    mvctl_swaps_total{model,channel}                swaps of a channel (rollbacks included)
    mvctl_swap_duration_seconds{model}              time of a poll that swapped (histogram:
                                                    ls-remote, download, verify, swap, hook)
    mvctl_sync_errors_total{model}                  errors of polls (one per error)

``served != alias`` for a while is the lag alert: ``mvctl_alias_info unless on(instance,
model, channel, version) mvctl_served_info``. Without a model (``mvctl serve``, whose
target names it) the ``model`` label is left out and the router's ``mvctl_served_info``
stands for what is served.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from mvctl.serving.request import ChannelsResult

UNKNOWN = "unknown"  # the alias's version before the host has that commit
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class HostMetrics:
    """Counts what a poller's results say; thread-safe (a poller thread writes, a scrape
    reads)."""

    def __init__(self, model: str | None, *, registry: Any = None, served: bool = True) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = registry or CollectorRegistry(auto_describe=True)
        self._base: tuple[str, ...] = (model,) if model is not None else ()
        base = ("model",) if model is not None else ()
        reg = self.registry
        self._served = (
            Gauge(
                "mvctl_served_info",
                "1 for the version served now",
                (*base, "channel", "version"),
                registry=reg,
            )
            if served
            else None
        )
        self._alias = Gauge(
            "mvctl_alias_info",
            "1 for the version the channel's alias names on the remote",
            (*base, "channel", "version", "commit"),
            registry=reg,
        )
        self._last_sync = Gauge(
            "mvctl_last_sync_timestamp_seconds",
            "Unix time of the last poll without an error",
            base,
            registry=reg,
        )
        self._swaps = Counter(
            "mvctl_swaps", "Swaps of a channel's version", (*base, "channel"), registry=reg
        )
        self._duration = Histogram(
            "mvctl_swap_duration_seconds",
            "Time of a poll that swapped",
            base,
            buckets=_BUCKETS,
            registry=reg,
        )
        self._errors = Counter("mvctl_sync_errors", "Errors of registry polls", base, registry=reg)
        if base:  # a label set exists from the start: rate() sees the first error
            self._errors.labels(*self._base)
        else:
            self._errors.inc(0)
        self._now_served: dict[str, tuple[str, ...]] = {}
        self._now_alias: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()

    def observe(self, result: ChannelsResult) -> None:
        """One poll's result (``follow_channels``'s ``on_result``)."""
        with self._lock:
            swapped = False
            for outcome in result.outcomes:
                channel = outcome.channel
                served = outcome.served
                self._put(
                    self._served,
                    self._now_served,
                    channel,
                    (channel, served.version) if served else None,
                )
                if outcome.alias_commit is not None:
                    version = outcome.alias_version or UNKNOWN
                    self._put(
                        self._alias,
                        self._now_alias,
                        channel,
                        (channel, version, outcome.alias_commit),
                    )
                elif outcome.removed or outcome.empty:  # the alias names nothing now
                    self._put(self._alias, self._now_alias, channel, None)
                if outcome.changed and outcome.error is None:
                    self._child(self._swaps, channel).inc()
                    swapped = True
            if swapped:
                self._child(self._duration).observe(result.elapsed)
            if not result.errors:
                self._child(self._last_sync).set(time.time())

    def error(self) -> None:
        """One poll's error (``follow_channels``'s ``on_error``)."""
        self._child(self._errors).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _child(self, metric: Any, *labels: str) -> Any:
        values = (*self._base, *labels)
        return metric.labels(*values) if values else metric

    def _put(
        self,
        gauge: Any,
        now: dict[str, tuple[str, ...]],
        channel: str,
        labels: tuple[str, ...] | None,
    ) -> None:
        """Set ``channel``'s one label set of ``gauge`` to 1, removing the one it had."""
        if gauge is None:
            return
        old = now.get(channel)
        if old == labels:
            return
        if old is not None:
            gauge.remove(*self._base, *old)
            del now[channel]
        if labels is not None:
            gauge.labels(*self._base, *labels).set(1)
            now[channel] = labels
