"""The schema of ``mvctl.yaml``: a table of allowed keys per level, and the rule kinds
gates and monitors may use (mvctl.formats.rules types a rule the schema accepted, and the code
that evaluates each kind keys its own table by the same names: mvctl.channels.gates,
mvctl.analysis.rules).

Each spec yields the problems of a value at a path (mapping keys and list indexes);
:func:`problems` lists them all and :func:`located` words the first with its line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, Literal, Protocol, get_args

from mvctl.common import yamlio
from mvctl.errors import OperationalError
from mvctl.formats.layout import CONFIG_FILE
from mvctl.formats.names import NAME_RE

DEFAULT_CHANNELS = ("production", "staging", "canary", "shadow")
DriftTest = Literal["psi", "ks", "chi2", "dataset"]
Correction = Literal["none", "bonferroni", "fdr"]
BiasMetric = Literal[
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
]
VersionPart = Literal["major", "minor", "patch"]
# The metrics a monitor computes from labelled rows (mvctl.analysis.classification).
LiveMetric = Literal[
    "false_positive_rate",
    "false_negative_rate",
    "precision",
    "recall",
    "accuracy",
    "f1",
    "roc_auc",
    "mae",
    "rmse",
]
DRIFT_TESTS: tuple[str, ...] = get_args(DriftTest)
CORRECTIONS: tuple[str, ...] = get_args(Correction)
BIAS_METRICS: tuple[str, ...] = get_args(BiasMetric)
VERSION_PARTS: tuple[str, ...] = get_args(VersionPart)
LIVE_METRICS: tuple[str, ...] = get_args(LiveMetric)
METRIC_CHECKS = ("min", "max", "max_drop", "min_gain", "required")
# What `mvctl canary analyze` compares (mvctl.canary.analysis keys its table by these names).
CanaryMetricName = Literal[
    "error_rate",
    "false_positive_rate",
    "false_negative_rate",
    "precision",
    "recall",
    "accuracy",
    "roc_auc",
    "mae",
    "rmse",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "psi",
    "agreement",
]
CANARY_METRICS: tuple[str, ...] = get_args(CanaryMetricName)
# Values without a sequential test of their own (reported, and checked against a threshold):
# never the primary metric, so a promotion always rests on a test.
CANARY_UNTESTED = ("roc_auc", "psi", "agreement")


def kinds_of(rule: Mapping[str, Any], kinds: Iterable[str]) -> list[str]:
    """The kind keys (``metric``, ``drift``, ...) that ``rule`` carries, in ``kinds`` order."""
    return [k for k in kinds if k in rule]


At = tuple[str | int, ...]


@dataclass(frozen=True)
class _Problem:
    at: At
    message: str


class _Spec(Protocol):
    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]: ...


def _suggest(word: object, choices: Iterable[str]) -> str:
    close = get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class _Value:
    """A leaf: ``test`` says whether a value is ``what``."""

    what: str
    test: Callable[[Any], bool]

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not self.test(value):
            yield _Problem(at, f"must be {self.what}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _is_finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(_is_text(v) for v in value)


def _one_of(*words: str) -> _Value:
    shown = [repr(w) for w in words]
    what = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
    return _Value(what, lambda v: isinstance(v, str) and v in words)


NUMBER = _Value("a number", _is_number)
FLAG = _Value("true or false", lambda v: isinstance(v, bool))
TEXT = _Value("a non-empty string", _is_text)
STRING = _Value("a string", lambda v: isinstance(v, str))
TEXTS = _Value("a list of strings", _texts)
PATH = _Value("a path", _is_text)
PATHS = _Value("a path or a list of paths", lambda v: _is_text(v) or _texts(v))
COUNT = _Value("a whole number >= 0", lambda v: type(v) is int and v >= 0)
ROWS = _Value("a whole number >= 1", lambda v: type(v) is int and v >= 1)
SHARE = _Value("a number >= 0 (a fraction: 0.15 is 15%)", lambda v: _is_finite(v) and v >= 0)
DECREASE = _Value(
    "a number from 0 to 1 (a fraction: 0.15 is 15%)", lambda v: _is_finite(v) and 0 <= v <= 1
)
NAMES = _Value(
    "a list of names like 'production'",
    lambda v: isinstance(v, list) and all(isinstance(c, str) and NAME_RE.match(c) for c in v),
)


class _Channels:
    """A list of channels that ``channels`` declares."""

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            yield _Problem(at, "must be a list of channels")
            return
        for channel in value:
            if channel not in channels:
                yield _Problem(at, f"unknown channel {channel!r}{_suggest(channel, channels)}")


@dataclass(frozen=True)
class _Table:
    """A mapping with known keys. ``kind`` names it in messages; ``needs``: at least one of
    these keys; ``nullable``: an empty entry (``fraud:``) means nothing is set."""

    keys: Mapping[str, _Spec]
    kind: str = ""
    needs: tuple[str, ...] = ()
    nullable: bool = False

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if value is None and self.nullable:
            return
        if not isinstance(value, dict):
            yield _Problem(at, "must be a mapping")
            return
        for key, item in value.items():
            spec = self.keys.get(key) if isinstance(key, str) else None
            if spec is None:
                where = f" for a {self.kind}" if self.kind else ""
                yield _Problem((*at, str(key)), f"unknown key{where}{_suggest(key, self.keys)}")
            else:
                yield from spec.check(item, (*at, key), channels)
        if self.needs and not any(k in value for k in self.needs):
            yield _Problem(at, f"a {self.kind} needs one of {', '.join(self.needs)}")


@dataclass(frozen=True)
class _Rules:
    """A channel's list of rules, each a mapping with exactly one kind key."""

    kinds: Mapping[str, _Spec]

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not isinstance(value, list):
            yield _Problem(at, "must be a list of rules")
            return
        for index, rule in enumerate(value):
            where = (*at, index)
            if not isinstance(rule, dict):
                yield _Problem(where, "a rule must be a mapping like {metric: auc, min: 0.9}")
                continue
            kinds = kinds_of(rule, self.kinds)
            if not kinds:
                guess = next((s for k in rule if (s := _suggest(k, self.kinds))), "")
                yield _Problem(where, f"a rule needs one of {', '.join(self.kinds)}{guess}")
            elif len(kinds) > 1:
                yield _Problem(where, f"a rule has one kind, not {' and '.join(kinds)}")
            else:
                yield from self.kinds[kinds[0]].check(rule, where, channels)


@dataclass(frozen=True)
class _ByChannel:
    """Gates or monitors: channels declared in ``channels`` -> their rules."""

    rules: _Rules

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not isinstance(value, dict):
            yield _Problem(at, "must be a mapping of channels to lists of rules")
            return
        for channel, rules in value.items():
            if channel not in channels:
                known = f" (channels: {', '.join(channels)})"
                yield _Problem(
                    (*at, str(channel)), f"unknown channel{_suggest(channel, channels) or known}"
                )
            else:
                yield from self.rules.check(rules, (*at, channel), channels)


@dataclass(frozen=True)
class _Models:
    entry: _Spec

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if value is None:
            return
        if not isinstance(value, dict):
            yield _Problem(at, "must be a mapping of model names")
            return
        for name, entry in value.items():
            if not isinstance(name, str) or not NAME_RE.match(name):
                yield _Problem((*at, str(name)), "invalid model name (lowercase, digits, - and _)")
            else:
                yield from self.entry.check(entry, (*at, name), channels)


class _Steps:
    """Canary weights to walk through: percentages in (0, 100], strictly increasing."""

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            yield _Problem(at, "must be a list of percentages like [5, 25, 50]")
            return
        for index, step in enumerate(value):
            if not 0 < step <= 100:
                yield _Problem((*at, index), "a step is a percentage above 0 and at most 100")
            elif index and step <= value[index - 1]:
                yield _Problem((*at, index), "steps must increase")


_CANARY_METRIC = _Table(
    {
        "metric": _one_of(*CANARY_METRICS),
        "primary": FLAG,
        "min": NUMBER,
        "max": NUMBER,
        "effect": _Value("a number above 0", lambda v: _is_number(v) and v > 0),
    },
    "canary metric",
    needs=("metric",),
)


class _CanaryMetrics:
    """The metrics a canary is judged on: known names, at most one primary, and the
    primary one that has a sequential test."""

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        if not isinstance(value, list) or not value:
            yield _Problem(at, "must be a non-empty list like [{metric: error_rate}]")
            return
        primaries = 0
        for index, item in enumerate(value):
            where = (*at, index)
            if not isinstance(item, dict):
                yield _Problem(where, "a canary metric must be a mapping like {metric: recall}")
                continue
            if isinstance(item.get("metric"), str) and item["metric"] not in CANARY_METRICS:
                name = item["metric"]
                yield _Problem(
                    (*where, "metric"),
                    f"unknown canary metric {name!r}{_suggest(name, CANARY_METRICS)}",
                )
                continue
            yield from _CANARY_METRIC.check(item, where, channels)
            if item.get("primary") is True:
                primaries += 1
                if primaries > 1:
                    yield _Problem((*where, "primary"), "only one metric can be primary")
                if item.get("metric") in CANARY_UNTESTED:
                    yield _Problem(
                        (*where, "primary"),
                        f"{item['metric']} has no sequential test: it cannot be primary",
                    )


def _is_alpha(value: Any) -> bool:
    return _is_number(value) and 0 < value < 1


_CANARY = _Table(
    {
        "steps": _Steps(),
        "max_failed": _Value("a whole number >= 1", lambda v: type(v) is int and v >= 1),
        "alpha": _Value("a number between 0 and 1", _is_alpha),
        "min_samples": _Value("a whole number >= 1", lambda v: type(v) is int and v >= 1),
        "metrics": _CanaryMetrics(),
    },
    "canary",
)


_DRIFT = _Table(
    {
        "drift": _one_of(*DRIFT_TESTS),
        "max": NUMBER,
        "warn": NUMBER,
        "alpha": NUMBER,
        "correction": _one_of(*CORRECTIONS),
        "columns": TEXTS,
        "max_share": NUMBER,
        "psi": NUMBER,
    },
    "drift rule",
)
_BIAS = _Table(
    {
        "bias": _one_of(*BIAS_METRICS),
        "min": NUMBER,
        "max": NUMBER,
    },
    "bias rule",
)
GATE_RULES: dict[str, _Table] = {
    "metric": _Table(
        {
            "metric": TEXT,
            "min": NUMBER,
            "max": NUMBER,
            "max_drop": NUMBER,
            "min_gain": NUMBER,
            "relative": FLAG,
            "required": FLAG,
        },
        "metric rule",
        needs=METRIC_CHECKS,
    ),
    "env": _Table({"env": _one_of("python"), "same": _one_of(*VERSION_PARTS)}, "env rule"),
    "package": _Table(
        {
            "package": TEXT,
            "version": _Value("a quoted version like '1.5.2'", _is_text),
            "same": FLAG,
        },
        "package rule",
        needs=("version", "same"),
    ),
    "drift": _DRIFT,
    "bias": _BIAS,
}
MONITOR_ONLY = ("max_increase", "max_decrease", "min_rows")
"""A monitor's metric rule keys that no gate takes: bounds relative to the value the
served version registered, and the labelled rows a live metric needs."""


@dataclass(frozen=True)
class _MonitorMetric:
    """A monitor's metric rule. ``min_rows`` counts labelled rows, so it means something only
    for a metric mvctl computes from them: anywhere else it would be a silent no-op."""

    table: _Table

    def check(self, value: Any, at: At, channels: tuple[str, ...]) -> Iterator[_Problem]:
        yield from self.table.check(value, at, channels)
        if (
            isinstance(value, dict)
            and "min_rows" in value
            and value.get("metric") not in LIVE_METRICS
        ):
            shown = ", ".join(LIVE_METRICS)
            yield _Problem(
                (*at, "min_rows"),
                f"counts labelled rows, so it applies only to the live metrics ({shown})",
            )


MONITOR_RULES: dict[str, _Spec] = {
    "metric": _MonitorMetric(
        _Table(
            {
                "metric": TEXT,
                "min": NUMBER,
                "max": NUMBER,
                "max_increase": SHARE,
                "max_decrease": DECREASE,
                "min_rows": ROWS,
            },
            "metric rule",
            needs=("min", "max", "max_increase", "max_decrease"),
        )
    ),
    "drift": _DRIFT,
    "bias": _BIAS,
}
_MODEL = _Table(
    {
        "weights": PATH,
        "data": PATHS,
        "metrics": PATH,
        "params": PATH,
        "env_lock": PATH,
        "profile": PATH,
        "columns": _Table(
            {
                "label": TEXT,
                "prediction": TEXT,
                "score": TEXT,  # a probability or score column, for roc_auc
                "date": TEXT,  # the day of each row: register records the data's window
                "sensitive": _Value(
                    "a column or a list of columns", lambda v: _is_text(v) or _texts(v)
                ),
                "positive": _Value(
                    "a number, string or boolean", lambda v: isinstance(v, int | float | str)
                ),
            }
        ),
        "gates": _ByChannel(_Rules(GATE_RULES)),
        "monitors": _ByChannel(_Rules(MONITOR_RULES)),
        "review": _Channels(),
        "retention": _Table({"keep_gold": COUNT, "keep_recent": COUNT}),
        "canary": _CANARY,
        "description": STRING,
        "labels": TEXTS,
    },
    nullable=True,
)
SCHEMA = _Table(
    {
        "version": _Value("1 (this mvctl reads version 1)", lambda v: type(v) is int and v == 1),
        "channels": NAMES,
        "models": _Models(_MODEL),
        "review": _Channels(),
        "push": _one_of("auto", "never"),
        "pointers": FLAG,
    }
)


def _first_problem(kinds: Mapping[str, _Spec], rule: Any) -> str | None:
    for found in _Rules(kinds).check([rule], (), ()):
        dotted = ".".join(str(p) for p in found.at[1:])
        return f"{dotted}: {found.message}" if dotted else found.message
    return None


def rule_problem(rule: Any) -> str | None:
    """The first way ``rule`` fails to be a gate or a monitor rule, or None: a rule is one
    when either table accepts it. Its problem is the monitors' when it uses a key only
    monitors take (:data:`MONITOR_ONLY`), else the gates' (whose keys are the wider set)."""
    gate = _first_problem(GATE_RULES, rule)
    if gate is None:
        return None
    monitor = _first_problem(MONITOR_RULES, rule)
    if monitor is None:
        return None
    monitor_only = isinstance(rule, dict) and any(k in rule for k in MONITOR_ONLY)
    return monitor if monitor_only else gate


def problems(data: Any) -> Iterator[_Problem]:
    """Every way ``data`` (a loaded mvctl.yaml) fails the schema."""
    if data is None:
        return
    if not isinstance(data, dict):
        yield _Problem((), "must be a mapping")
        return
    channels = data.get("channels", list(DEFAULT_CHANNELS))
    declared = list(NAMES.check(channels, ("channels",), ()))
    if declared:  # gate and monitor tables are checked against the channels
        yield from declared
        return
    yield from SCHEMA.check(data, (), tuple(channels))


def located(problem: _Problem, more: int, text: str | None) -> OperationalError:
    """``problem`` as an error naming its line in ``text``, and how many more there are."""
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem.at)
    line = yamlio.line_of(text, problem.at) if text is not None else None
    where = f"{CONFIG_FILE}:{line}:" if line is not None else f"{CONFIG_FILE}:"
    what = f" {dotted.lstrip('.')}:" if dotted else ""
    also = f" ({more} more problem{'s' if more > 1 else ''} after this one)" if more else ""
    return OperationalError(f"{where}{what} {problem.message}", hint=f"fix {CONFIG_FILE}{also}")
