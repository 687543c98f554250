"""Prometheus's HTTP query API responses (``/api/v1/query``, an instant vector or a scalar)
as live metrics for ``mvctl monitor``: untrusted JSON, validated before a number is taken.

A query is named (``NAME=PROMQL``: its one result is the metric NAME) or not (each result
is named by its ``__name__`` label, e.g. a recording rule's). A saved file holds either one
response (names from ``__name__``) or a mapping of metric names to responses, the shape
``monitor --prometheus`` reads. An empty vector is no evidence: the metric is left out and
its rule is skipped. More than one series for a name, a non-success status, a NaN or an
infinite value are errors (exit 3): a monitor never decides on an ambiguous number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl.errors import OperationalError, UsageError
from mvctl.formats.names import shown

MAX_RESPONSE_BYTES = 1024 * 1024
MAX_QUERIES = 64
MAX_QUERY_LENGTH = 4096
MAX_RESULTS = 1000  # series in one response
# A metric name as mvctl.yaml's monitor rules spell it (dots nest, as in metrics files).
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_:]{0,127}(?:\.[A-Za-z_][A-Za-z0-9_:]{0,127}){0,7}")
_NAMED = re.compile(rf"({_NAME.pattern})=(?!=)(.+)", re.S)


@dataclass(frozen=True)
class Query:
    """One ``--query``: ``name`` None when the results name themselves (``__name__``)."""

    name: str | None
    promql: str


def parse_query(option: str) -> Query:
    """``NAME=PROMQL`` or ``PROMQL``; ``up == 1`` is a query, not a name."""
    text = option.strip()
    if not text or len(text) > MAX_QUERY_LENGTH or "\x00" in text:
        raise UsageError(
            f"--query {shown(text[:80])} is empty or longer than {MAX_QUERY_LENGTH} characters"
        )
    named = _NAMED.fullmatch(text)
    if named:
        return Query(named.group(1), named.group(2).strip())
    return Query(None, text)


def check_queries(queries: tuple[Query, ...]) -> tuple[Query, ...]:
    if not queries:
        raise UsageError("--prometheus needs at least one --query", hint="e.g. --query 'fpr=...'")
    if len(queries) > MAX_QUERIES:
        raise UsageError(f"at most {MAX_QUERIES} --query options")
    names = [q.name for q in queries if q.name is not None]
    if len(set(names)) != len(names):
        raise UsageError("a --query NAME is given twice")
    return queries


def decode(raw: bytes, source: str) -> Any:
    """The JSON of a response (or a saved file) of at most MAX_RESPONSE_BYTES."""
    if len(raw) > MAX_RESPONSE_BYTES:
        raise OperationalError(f"{source} is larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise OperationalError(f"{source} is not valid JSON: {shown(str(exc)[:200])}") from None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def is_response(data: Any) -> bool:
    """A query API answer: a success with its data, or an error."""
    return isinstance(data, Mapping) and (
        ("status" in data and "data" in data) or data.get("status") == "error"
    )


def values_of(query: Query, response: Any, source: str) -> dict[str, float]:
    """The metrics one response gives ``query``: {} for an empty vector."""
    data = _data(response, source)
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        if query.name is None:
            raise OperationalError(
                f"{source}: a scalar has no name", hint="name the query: --query NAME=PROMQL"
            )
        return {query.name: _number(result, source)}
    if kind != "vector" or not isinstance(result, list):
        raise OperationalError(
            f"{source}: the result is {shown(str(kind))}, not an instant vector",
            hint="query an instant vector (no [range] selector at the end)",
        )
    if len(result) > MAX_RESULTS:
        raise OperationalError(f"{source}: more than {MAX_RESULTS} series")
    found: dict[str, float] = {}
    for series in result:
        if not isinstance(series, Mapping) or not isinstance(series.get("metric"), Mapping):
            raise OperationalError(f"{source}: a series without its labels")
        name = query.name or series["metric"].get("__name__")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise OperationalError(
                f"{source}: a series has no metric name mvctl can use",
                hint="name the query (--query NAME=PROMQL) or query a named metric",
            )
        if name in found:
            raise OperationalError(
                f"{source}: more than one series for {name}",
                hint="aggregate in the query (max(...), sum(...)) so it gives one number",
            )
        found[name] = _number(series.get("value"), source, name)
    return found


def _data(response: Any, source: str) -> Mapping[str, Any]:
    if not isinstance(response, Mapping):
        raise OperationalError(f"{source} is not a Prometheus query API response")
    status = response.get("status")
    if status != "success":
        error = response.get("error")
        why = f": {shown(str(error)[:300])}" if isinstance(error, str) else ""
        raise OperationalError(
            f"{source}: Prometheus answered status {shown(str(status)[:40])}{why}",
            hint="check the query in Prometheus's expression browser",
        )
    data = response.get("data")
    if not isinstance(data, Mapping):
        raise OperationalError(f"{source}: the response has no data")
    return data


def _number(sample: Any, source: str, name: str = "the scalar") -> float:
    """``[timestamp, "value"]``, the value finite."""
    if (
        not isinstance(sample, list)
        or len(sample) != 2
        or not isinstance(sample[1], str)
        or len(sample[1]) > 64
    ):
        raise OperationalError(f'{source}: the value of {name} is not [time, "number"]')
    try:
        value = float(sample[1])
    except ValueError:
        raise OperationalError(f"{source}: {name} is {shown(sample[1])}, not a number") from None
    if not math.isfinite(value):
        raise OperationalError(
            f"{source}: {name} is {sample[1]}",
            hint="a ratio over no traffic is NaN: guard the query (e.g. `... and on() "
            "sum(rate(mvctl_requests_total[5m])) > 0`) or check the series exist",
        )
    return value


def nested(flat: Mapping[str, float]) -> dict[str, Any]:
    """``val.auc`` keys as the nested mapping a metrics file would hold."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise OperationalError(f"metric {key} conflicts with metric {part}")
            node = child
        if isinstance(node.get(leaf), dict):
            raise OperationalError(f"metric {key} conflicts with metric {key}.*")
        node[leaf] = value
    return out


def read_saved(path: Path, data: Any) -> dict[str, Any]:
    """A saved file: one response, or a mapping of metric names to responses."""
    source = f"metrics file {path}"
    if is_response(data):
        return nested(values_of(Query(None, ""), data, source))
    flat: dict[str, float] = {}
    for name, response in data.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise OperationalError(f"{source}: {shown(str(name)[:80])} is not a metric name")
        flat |= values_of(Query(name, ""), response, f"{source} ({name})")
    return nested(flat)


def looks_saved(data: Any) -> bool:
    """Whether a metrics file holds query API responses rather than plain numbers."""
    if is_response(data):
        return True
    return (
        isinstance(data, Mapping)
        and bool(data)
        and all(is_response(value) for value in data.values())
    )
