"""A router's Prometheus metrics, in a registry of its own (two routers in one process, or
a test beside a server, never share or collide on counters).

    mvctl_requests_total{channel,version}         requests answered or failed, per channel
    mvctl_request_errors_total{channel,version}   requests the model failed (shadow included)
    mvctl_request_latency_seconds{channel,version} the model's time per request (histogram)
    mvctl_reloads_total                           hot swaps of the models served
    mvctl_reload_duration_seconds                 a hot swap's time: loading the new models
                                                  and swapping them in (histogram)
    mvctl_shadow_dropped_total                    shadow copies dropped: the queue was full
    mvctl_shadow_errors_total                     shadow calls that raised
    mvctl_served_info{channel,version}            1 for what is served now

Label sets exist only for versions actually served (a swap binds them), so the series
grow with the versions a server served, not with the registry. ``mvctl serve --follow``
adds its poller's metrics (mvctl.serving.hostmetrics) to the same registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Model latencies span sub-millisecond trees to second-long networks.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Slot:
    """The metric children of one (channel, version), bound once: a request only counts."""

    requests: Any
    errors: Any
    latency: Any


class RouterMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("channel", "version")
        self._requests = Counter(
            "mvctl_requests_total",
            "Requests per channel and version",
            labels,
            registry=self.registry,
        )
        self._errors = Counter(
            "mvctl_request_errors_total",
            "Requests the model failed",
            labels,
            registry=self.registry,
        )
        self._latency = Histogram(
            "mvctl_request_latency_seconds",
            "Model time per request",
            labels,
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._dropped = Counter(
            "mvctl_shadow_dropped",
            "Shadow copies dropped because the queue was full",
            registry=self.registry,
        )
        self._shadow_errors = Counter(
            "mvctl_shadow_errors", "Shadow calls that raised", registry=self.registry
        )
        self._reloads = Counter(
            "mvctl_reloads", "Hot swaps of the models served", registry=self.registry
        )
        self._reload_time = Histogram(
            "mvctl_reload_duration_seconds",
            "Time of a hot swap: loading the new models and swapping them in",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self._served = Gauge(
            "mvctl_served_info",
            "1 for the channel and version served now",
            labels,
            registry=self.registry,
        )
        self._served_now: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def slot(self, channel: str, version: str) -> Slot:
        return Slot(
            requests=self._requests.labels(channel, version),
            errors=self._errors.labels(channel, version),
            latency=self._latency.labels(channel, version),
        )

    def set_served(self, pairs: Iterable[tuple[str, str]]) -> None:
        """What is served now; label sets of what no longer is are removed."""
        now = set(pairs)
        with self._lock:
            for gone in self._served_now - now:
                self._served.remove(*gone)
            for pair in now:
                self._served.labels(*pair).set(1)
            self._served_now = now

    def reloaded(self, seconds: float) -> None:
        self._reloads.inc()
        self._reload_time.observe(seconds)

    def shadow_dropped(self) -> None:
        self._dropped.inc()

    def shadow_error(self) -> None:
        self._shadow_errors.inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
