"""Live metrics for a monitor from Prometheus: instant queries against its HTTP API, or a
saved query API response given as ``--metrics FILE`` (mvctl.formats.queryapi validates
both), else a plain metrics file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters import prometheus
from mvctl.errors import OperationalError
from mvctl.formats import queryapi
from mvctl.formats.values import Metrics, check_metrics, read_metrics


@dataclass(frozen=True)
class PrometheusSource:
    """Where live metrics come from: a Prometheus base URL and the queries to run there."""

    url: str
    queries: tuple[queryapi.Query, ...]
    token: str | None = None
    timeout: float = 10.0

    def check(self) -> PrometheusSource:
        prometheus.check_url(self.url)
        queryapi.check_queries(self.queries)
        if not 0 < self.timeout <= 300:
            raise OperationalError(f"a query timeout of {self.timeout} s is out of range")
        return self


def from_prometheus(source: PrometheusSource) -> tuple[Metrics, tuple[str, ...]]:
    """The metrics the queries give, and a note for each query that gave none."""
    source.check()
    flat: dict[str, float] = {}
    notes: list[str] = []
    for query in source.queries:
        answer = prometheus.query(
            source.url, query.promql, token=source.token, timeout=source.timeout
        )
        label = query.name or query.promql[:80]
        found = queryapi.values_of(query, answer, f"the query {label!r}")
        if not found:
            notes.append(f"Prometheus has no series for {label}: its rules are skipped")
        twice = set(found) & set(flat)
        if twice:
            raise OperationalError(f"two queries give {sorted(twice)[0]}")
        flat |= found
    return check_metrics(queryapi.nested(flat), "Prometheus"), tuple(notes)


def from_file(path: Path) -> Metrics:
    """A metrics file: saved query API response(s) (JSON), else numbers as before."""
    if path.suffix.lower() == ".json" and path.is_file():
        with path.open("rb") as handle:
            raw = handle.read(queryapi.MAX_RESPONSE_BYTES + 1)
        data: Any = queryapi.decode(raw, f"metrics file {path}")
        if queryapi.looks_saved(data):
            return check_metrics(queryapi.read_saved(path, data), str(path))
    return read_metrics(path)
