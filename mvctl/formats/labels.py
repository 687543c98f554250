"""Labels (``KEY=VALUE``), the time window of a version's training data
(``START..END``), and the selectors ``list`` and ``promote --select`` take: the one place
that knows these formats.

A label is ``KEY=VALUE`` matched whole: the key a name (letters, digits, ``_ . -``, at most
63 characters, starting and ending with a letter or digit), the value one word of at most
128 ASCII characters (letters, digits, ``_ . - : + /``). Nothing a shell, a table or a tag
message could read otherwise. Manifests written before labels had a format may hold plain
labels (``baseline``): they are read as they are, and no filter matches them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from mvctl.errors import UsageError

MAX_LABELS = 64  # labels on one version
_KEY = r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
_VALUE = r"[A-Za-z0-9_.:+/-]{1,128}"
KEY_RE = re.compile(rf"\A{_KEY}\Z")
LABEL_RE = re.compile(rf"\A(?P<key>{_KEY})=(?P<value>{_VALUE})\Z")
_LABEL_HINT = "labels are KEY=VALUE, e.g. season=holiday (letters, digits, _ . - in the key)"


def _shown(text: str) -> str:
    return repr(text[:80])


def parse_label(text: str, what: str = "--label") -> tuple[str, str]:
    """``KEY=VALUE`` -> (key, value); anything else is a usage error."""
    match = LABEL_RE.match(text)
    if match is None:
        raise UsageError(f"{what} {_shown(text)} is not KEY=VALUE", hint=_LABEL_HINT)
    return match["key"], match["value"]


def check_key(text: str, what: str = "--remove") -> str:
    if not KEY_RE.match(text):
        raise UsageError(f"{what} {_shown(text)} is not a label key", hint=_LABEL_HINT)
    return text


def check_labels(texts: Iterable[str], what: str = "--label") -> tuple[str, ...]:
    """Labels as a user gave them: each ``KEY=VALUE``, no key twice, sorted by key."""
    pairs: dict[str, str] = {}
    for text in texts:
        key, value = parse_label(text, what)
        if key in pairs and pairs[key] != value:
            raise UsageError(f"{what} gives {key} twice ({pairs[key]}, {value})")
        pairs[key] = value
    if len(pairs) > MAX_LABELS:
        raise UsageError(f"{len(pairs)} labels; a version has at most {MAX_LABELS}")
    return as_labels(pairs)


def as_labels(pairs: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f"{key}={pairs[key]}" for key in sorted(pairs))


def pairs_of(labels: Iterable[str]) -> dict[str, str]:
    """key -> value of the ``KEY=VALUE`` labels among ``labels`` (plain ones skipped)."""
    found: dict[str, str] = {}
    for text in labels:
        match = LABEL_RE.match(text)
        if match is not None:
            found.setdefault(match["key"], match["value"])
    return found


def label_problems(labels: Any) -> list[str]:
    """How a stored list of labels (a label tag's) fails the format; empty when it does not."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return ["labels must be a list of KEY=VALUE strings"]
    found = [f"label {_shown(x)} is not KEY=VALUE" for x in labels if not LABEL_RE.match(x)]
    keys = [x.split("=", 1)[0] for x in labels if LABEL_RE.match(x)]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    found += [f"label key {k!r} is given twice" for k in twice]
    return found


# --- the data window ----------------------------------------------------------------------

_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_WINDOW_RE = re.compile(rf"\A(?P<start>{_DATE})\.\.(?P<end>{_DATE})\Z")
_WINDOW_HINT = "e.g. --data-window 2025-11-20..2026-01-05 (ISO dates, START <= END)"


@dataclass(frozen=True)
class DataWindow:
    """The first and last day of a version's training data (inclusive); ``column``: the
    date column it was read from (None: given with --data-window)."""

    start: date
    end: date
    column: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start.isoformat(), "end": self.end.isoformat()}
        if self.column is not None:
            out["column"] = self.column
        return out

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @classmethod
    def from_dict(cls, data: Any) -> DataWindow | None:
        """A stored window; None for anything that is not one (a reader never fails on it)."""
        if not isinstance(data, Mapping):
            return None
        start, end, column = data.get("start"), data.get("end"), data.get("column")
        try:
            window = cls(_date(start), _date(end), column if isinstance(column, str) else None)
        except (TypeError, ValueError):
            return None
        return window if window.start <= window.end else None


def _date(value: Any) -> date:
    if not isinstance(value, str) or not re.fullmatch(_DATE, value):
        raise ValueError(value)
    return date.fromisoformat(value)


def parse_window(text: str) -> DataWindow:
    """``START..END`` as a user typed it: two ISO dates (``YYYY-MM-DD``), START <= END."""
    match = _WINDOW_RE.match(text)
    if match is None:
        raise UsageError(f"--data-window {_shown(text)} is not START..END", hint=_WINDOW_HINT)
    try:
        start, end = date.fromisoformat(match["start"]), date.fromisoformat(match["end"])
    except ValueError as exc:
        raise UsageError(f"--data-window {_shown(text)}: {exc}", hint=_WINDOW_HINT) from None
    if start > end:
        raise UsageError(f"--data-window {_shown(text)} ends before it starts", hint=_WINDOW_HINT)
    return DataWindow(start, end)


def window_problems(data: Any) -> list[str]:
    """How a manifest's ``data_window`` fails its format (empty when absent or valid)."""
    if data is None:
        return []
    if DataWindow.from_dict(data) is None:
        return ["data_window needs start and end, ISO dates with start <= end"]
    return []


# --- selectors: list filters and promote --select ----------------------------------------

Op = Literal[">=", "<=", ">", "<", "=="]
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_METRIC_RE = re.compile(
    rf"\A(?P<key>[A-Za-z0-9_][A-Za-z0-9_.:/-]{{0,199}})\s*(?P<op>>=|<=|==|>|<)\s*"
    rf"(?P<value>{_NUMBER})\Z"
)
_METRIC_HINT = "e.g. --metric 'auc>=0.9' (operators >=, <=, >, <, ==; a plain number)"


@dataclass(frozen=True)
class LabelFilter:
    key: str
    value: str

    def matches(self, labels: Iterable[str]) -> bool:
        return pairs_of(labels).get(self.key) == self.value

    def __str__(self) -> str:
        return f"label {self.key}={self.value}"


@dataclass(frozen=True)
class MetricFilter:
    key: str  # a flattened metric name (dots nest)
    op: Op
    value: float

    def matches(self, metrics: Mapping[str, Any]) -> bool:
        got = metrics.get(self.key)
        if isinstance(got, bool) or not isinstance(got, int | float) or not math.isfinite(got):
            return False  # a version without the metric never passes a threshold
        return {
            ">=": got >= self.value,
            "<=": got <= self.value,
            ">": got > self.value,
            "<": got < self.value,
            "==": got == self.value,
        }[self.op]

    def __str__(self) -> str:
        return f"metric {self.key}{self.op}{self.value:g}"


def parse_metric_filter(text: str, what: str = "--metric") -> MetricFilter:
    match = _METRIC_RE.match(text.strip())
    if match is None:
        raise UsageError(f"{what} {_shown(text)} is not METRIC OP NUMBER", hint=_METRIC_HINT)
    value = float(match["value"])
    if not math.isfinite(value):
        raise UsageError(f"{what} {_shown(text)}: the number is not finite", hint=_METRIC_HINT)
    op: Op = match["op"]  # type: ignore[assignment]  # the pattern allows these five only
    return MetricFilter(match["key"], op, value)


Selector = LabelFilter | MetricFilter
_SELECT_HINT = "e.g. --select 'label season=holiday' or --select 'metric auc>=0.9'"


def parse_selector(text: str) -> Selector:
    """``label KEY=VALUE`` or ``metric NAME OP NUMBER`` (``promote --select``)."""
    kind, _, rest = text.strip().partition(" ")
    if kind == "label":
        return LabelFilter(*parse_label(rest.strip(), "--select label"))
    if kind == "metric":
        return parse_metric_filter(rest, "--select metric")
    raise UsageError(f"--select {_shown(text)} names no kind (label or metric)", hint=_SELECT_HINT)


def matches(
    selectors: Iterable[Selector], labels: Iterable[str], metrics: Mapping[str, Any]
) -> bool:
    """Whether a version with ``labels`` and (flattened) ``metrics`` passes every selector."""
    held = tuple(labels)
    return all(
        s.matches(held) if isinstance(s, LabelFilter) else s.matches(metrics) for s in selectors
    )
