"""The evidence a canary is judged on: decision logs (`mvctl serve`'s, possibly from several
replicas) and outcome files, read as untrusted input, split into the two arms compared.

A decision line (mvctl.serving.decisions) says which channel and version answered a request
key, how fast, and with what; an outcome line (``{"key", "outcome", "kind": "outcome"}``, in
the decision log itself or in a separate file) says what became known later (the label).
Every line is checked field by field: a line over :data:`MAX_LINE` bytes, that is not a JSON
object (or holds an integer of more than :data:`MAX_DIGITS` digits, which no server writes
and which would overflow every float conversion), or whose fields are not what the server
writes (a key of 1-256 characters, a model and a channel name, a SemVer version, a finite
latency, a known role, an ISO time) is skipped and counted; one bad line never fails the
analysis, nor does a crafted line cost more than its cap.

The same decision twice (same key, model, channel, version, role and time: two replicas
shipping one line, an at-least-once log shipper) is counted once (``skipped.duplicate``),
and a file given twice is read once: a duplicate would halve the variance and turn an
insignificant difference into a verdict. A decision of another model (or written without
a model, before mvctl logged it) is counted in ``skipped.other``.

Joining: an outcome labels the last decision of its key in each arm. A request's ``output``
is one answer per row; a scalar outcome labels a one-row request, a list of outcomes labels
the rows one for one, anything else is counted as unjoined.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl.errors import OperationalError
from mvctl.formats.names import NAME_RE, Version

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

MAX_LINE = 64 * 1024  # the server writes at most ~5 KiB (outputs over 4 KiB are hashed)
MAX_KEY = 256
MAX_DIGITS = 32  # an integer literal longer than this makes the line malformed
ROLES = ("primary", "canary", "shadow")


@dataclass(frozen=True)
class Decision:
    time: float  # seconds since the epoch
    key: str
    channel: str
    version: str
    latency_ms: float
    role: str
    output: Any  # the answers, one per row (None when hashed or failed)
    error: bool
    model: str | None = None  # the model whose server wrote the line (None: not logged)


@dataclass(frozen=True)
class Skipped:
    """Lines not used, by reason (reported with the analysis)."""

    malformed: int = 0  # not JSON, not an object, a field of the wrong type
    too_long: int = 0
    other: int = 0  # decisions of another model, channel or version, or out of window
    unjoined: int = 0  # outcomes whose key or row count matches no decision of an arm
    duplicate: int = 0  # decisions read already (same key, model, channel, version, role, time)

    def to_dict(self) -> dict[str, int]:
        return {
            "malformed": self.malformed,
            "too_long": self.too_long,
            "other": self.other,
            "unjoined": self.unjoined,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True)
class Evidence:
    """Everything read: decisions in time order, the last outcome per key, what was skipped."""

    decisions: tuple[Decision, ...]
    outcomes: dict[str, Any] = field(default_factory=dict)
    skipped: Skipped = Skipped()
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: its decisions as arrays (time order) and its joined rows
    (prediction and outcome per row, with the decision's time)."""

    channel: str
    version: str
    times: NDArray[np.float64]
    latency_ms: NDArray[np.float64]
    errors: NDArray[np.float64]  # 1.0 for a failed request
    outputs: tuple[Any, ...]  # per answered request, its rows (for PSI and agreement)
    keys: tuple[str, ...]  # per answered request
    joined_times: NDArray[np.float64]
    predictions: tuple[Any, ...]  # per joined row
    labels: tuple[Any, ...]  # per joined row

    @property
    def requests(self) -> int:
        return len(self.times)

    def summary(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "version": self.version,
            "requests": self.requests,
            "errors": int(self.errors.sum()),
            "labelled": len(self.labels),
        }


def _lines(path: Path) -> Iterator[bytes | None]:
    """The file's lines, None for one over MAX_LINE (whose rest is skipped unread-into)."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise OperationalError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="pass the decision log mvctl "
            "serve writes (--decision-log, default DIR/decisions.jsonl)",
        ) from None
    with handle:
        while True:
            line = handle.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                while (rest := handle.readline(MAX_LINE)) and not rest.endswith(b"\n"):
                    pass
                yield None
                continue
            yield line


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        return None
    return stamp.timestamp()


def _key(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_KEY and value.isprintable()


def _int(text: str) -> int:
    """``json.loads``'s parse_int: a literal of more than MAX_DIGITS digits is malformed
    (it would overflow ``math.isfinite`` and every float conversion after it)."""
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def _decision(line: dict[str, Any]) -> Decision | None:
    when = _time(line.get("time"))
    latency = line.get("latency_ms")
    channel, version, role = line.get("channel"), line.get("version"), line.get("role")
    error, model = line.get("error"), line.get("model")
    if (
        when is None
        or (model is not None and not (isinstance(model, str) and NAME_RE.match(model)))
        or not _key(line.get("key"))
        or not (isinstance(channel, str) and NAME_RE.match(channel))
        or not (isinstance(version, str) and Version.is_valid(version))
        or role not in ROLES
        or isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
        or latency < 0
        or (error is not None and not isinstance(error, str))
    ):
        return None
    output = line.get("output")
    return Decision(
        time=when,
        key=line["key"],
        channel=channel,
        version=version,
        latency_ms=float(latency),
        role=str(role),
        output=output if isinstance(output, list) and error is None else None,
        error=error is not None,
        model=model,
    )


def read(logs: Sequence[Path], outcome_files: Sequence[Path] = ()) -> Evidence:
    """Decision and outcome lines from ``logs`` and outcome lines from ``outcome_files`` (a
    file given twice is read once; a decision seen already is counted as a duplicate)."""
    decisions: list[Decision] = []
    seen: set[tuple[str, str | None, str, str, str, float]] = set()
    outcomes: dict[str, tuple[float, Any]] = {}
    malformed = too_long = duplicate = 0
    files: list[tuple[Path, bool]] = []
    opened: set[Path] = set()
    for path, outcomes_only in [(p, False) for p in logs] + [(p, True) for p in outcome_files]:
        real = path.resolve()
        if real not in opened:
            opened.add(real)
            files.append((path, outcomes_only))
    for path, outcomes_only in files:
        for raw in _lines(path):
            if raw is None:
                too_long += 1
                continue
            if not raw.strip():
                continue
            try:
                line = json.loads(raw, parse_int=_int)
            except (ValueError, RecursionError, OverflowError):
                malformed += 1
                continue
            if not isinstance(line, dict):
                malformed += 1
            elif "outcome" in line and (outcomes_only or line.get("kind") == "outcome"):
                when = _time(line.get("time")) if "time" in line else 0.0
                if when is None or not _key(line.get("key")):
                    malformed += 1
                    continue
                old = outcomes.get(line["key"])
                if old is None or when >= old[0]:
                    outcomes[line["key"]] = (when, line["outcome"])
            elif outcomes_only:
                malformed += 1
            elif (found := _decision(line)) is not None:
                same = (found.key, found.model, found.channel, found.version, found.role)
                if (*same, found.time) in seen:
                    duplicate += 1
                    continue
                seen.add((*same, found.time))
                decisions.append(found)
            else:
                malformed += 1
    decisions.sort(key=lambda d: d.time)  # stable: one replica's order kept within a ms
    return Evidence(
        decisions=tuple(decisions),
        outcomes={k: v for k, (_, v) in outcomes.items()},
        skipped=Skipped(malformed=malformed, too_long=too_long, duplicate=duplicate),
        files=tuple(str(p) for p in (*logs, *outcome_files)),
    )


def _rows(output: Any, outcome: Any) -> list[tuple[Any, Any]] | None:
    """(prediction, outcome) per row, or None when the outcome does not fit the output."""
    if not isinstance(output, list):
        return None
    if isinstance(outcome, list):
        return list(zip(output, outcome, strict=True)) if len(outcome) == len(output) else None
    return [(output[0], outcome)] if len(output) == 1 else None


def split(
    evidence: Evidence,
    baseline: tuple[str, str],
    candidate: tuple[str, str],
    *,
    since: float | None = None,
    model: str | None = None,
) -> tuple[Arm, Arm, Skipped]:
    """The two arms: decisions of (channel, version) ``baseline`` and ``candidate`` (at or
    after ``since``, the candidate's tenure start, so both cover the same window; of
    ``model`` only, when given), each joined with the outcomes."""
    import numpy as np

    chosen: dict[tuple[str, str], list[Decision]] = {baseline: [], candidate: []}
    other = 0
    for d in evidence.decisions:
        arm = chosen.get((d.channel, d.version))
        if (
            arm is None
            or (since is not None and d.time < since)
            or (model is not None and d.model != model)
        ):
            other += 1
        else:
            arm.append(d)
    unjoined = 0
    arms: list[Arm] = []
    for (channel, version), items in chosen.items():
        last: dict[str, Decision] = {}
        for d in items:
            if not d.error and d.output is not None:
                last[d.key] = d
        times: list[float] = []
        predictions: list[Any] = []
        labels: list[Any] = []
        for key, outcome in evidence.outcomes.items():
            decision = last.get(key)
            if decision is None:
                continue
            rows = _rows(decision.output, outcome)
            if rows is None:
                unjoined += 1
                continue
            for prediction, label in rows:
                times.append(decision.time)
                predictions.append(prediction)
                labels.append(label)
        order = np.argsort(np.asarray(times, dtype=float), kind="stable")
        answered = [d for d in items if not d.error and d.output is not None]
        arms.append(
            Arm(
                channel=channel,
                version=version,
                times=np.asarray([d.time for d in items], dtype=float),
                latency_ms=np.asarray([d.latency_ms for d in items], dtype=float),
                errors=np.asarray([1.0 if d.error else 0.0 for d in items]),
                outputs=tuple(d.output for d in answered),
                keys=tuple(d.key for d in answered),
                joined_times=np.asarray(times, dtype=float)[order],
                predictions=tuple(predictions[i] for i in order),
                labels=tuple(labels[i] for i in order),
            )
        )
    skipped = Skipped(
        malformed=evidence.skipped.malformed,
        too_long=evidence.skipped.too_long,
        other=other,
        unjoined=unjoined,
        duplicate=evidence.skipped.duplicate,
    )
    return arms[0], arms[1], skipped
