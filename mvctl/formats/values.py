"""Metrics (numbers only, flat or nested) and params, read from files and options."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mvctl.common import yamlio
from mvctl.errors import OperationalError, UsageError
from mvctl.formats.names import shown

Metrics = dict[str, Any]  # nested mapping whose leaves are int/float

# Metrics and params travel in every version's manifest, and metrics in its tag message,
# which `list` reads for every version: a summary of a run, never a data dump.
MAX_FILE_BYTES = 1024 * 1024
MAX_KEYS = 10_000  # flattened keys (a.b.c) of one file
MAX_DEPTH = 64  # nested mappings and lists
MAX_KEY_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A --metric value as a person types it: no '1_000', no 'infinity', no 5,000 digits.
_NUMBER = re.compile(r"\A[+-]?(?:\d{1,300}(?:\.\d{0,300})?|\.\d{1,300})(?:[eE][+-]?\d{1,4})?\Z")
# A --metric key part: any printable text without spaces (a space is a quoting slip).
_METRIC_KEY = re.compile(r"\A[^\s.=\x00-\x1f\x7f]{1,128}\Z")


def _load_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise OperationalError(f"{what} file {path} does not exist")
    text = yamlio.read_text(path, MAX_FILE_BYTES)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except RecursionError:
            raise _too_deep(what, path) from None
        except ValueError as exc:
            raise OperationalError(f"{what} file {path} is not valid JSON: {exc}") from exc
    else:
        data = yamlio.loads(text, str(path), MAX_FILE_BYTES)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OperationalError(f"{what} file {path} must hold a mapping of names to values")
    _check_shape(data, what, path)
    return data


def _check_shape(data: dict[str, Any], what: str, path: Path) -> None:
    """Refuse more than MAX_KEYS flattened keys, nesting deeper than MAX_DEPTH, and keys
    that are not plain one-line text, walking without recursion."""
    keys = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(what, path)
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str | int | float) or isinstance(key, bool):
                    raise OperationalError(f"{what} file {path}: key {key!r} is not a name")
                text = str(key)
                if len(text) > MAX_KEY_LENGTH or _CONTROL.search(text):
                    raise OperationalError(
                        f"{what} file {path}: key {shown(text)} is not a one-line name of at"
                        f" most {MAX_KEY_LENGTH} characters"
                    )
                if isinstance(value, dict | list) and value:
                    stack.append((value, depth + 1))
                else:
                    keys += 1
        elif isinstance(node, list):
            keys += 1
            stack.extend((item, depth + 1) for item in node if isinstance(item, dict | list))
        if keys > MAX_KEYS:
            raise OperationalError(
                f"{what} file {path} has more than {MAX_KEYS} keys",
                hint=f"record a summary of the run: at most {MAX_KEYS} keys",
            )


def _too_deep(what: str, path: Path) -> OperationalError:
    return OperationalError(
        f"{what} file {path} is nested more than {MAX_DEPTH} levels deep",
        hint="record a flat or lightly nested summary of the run",
    )


def _is_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def check_metrics(data: Mapping[str, Any], source: str, prefix: str = "") -> Metrics:
    """Return ``data`` if every leaf is a finite number; otherwise name the first offender."""
    checked: Metrics = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            checked[str(key)] = check_metrics(value, source, f"{name}.")
        elif _is_number(value):
            checked[str(key)] = value
        else:
            raise OperationalError(
                f"metric {name!r} in {source} is not a number: {value!r}",
                hint="metrics hold finite numbers only; put other values in params",
            )
    return checked


def read_metrics(path: Path) -> Metrics:
    return check_metrics(_load_mapping(path, "metrics"), str(path))


def read_params(path: Path) -> dict[str, Any]:
    return _load_mapping(path, "params")


def parse_metric_options(options: Iterable[str]) -> Metrics:
    """``--metric key=value`` options; dotted keys nest (val.auc=0.9)."""
    result: Metrics = {}
    for option in options:
        key, sep, raw = option.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise UsageError(
                f"--metric {shown(option)} is not KEY=NUMBER", hint="e.g. --metric auc=0.93"
            )
        parts = key.split(".")
        if len(parts) > MAX_DEPTH or not all(_METRIC_KEY.match(part) for part in parts):
            raise UsageError(
                f"--metric {shown(key)} is not a metric name",
                hint="a metric name has no spaces or control characters; dots nest (val.auc)",
            )
        if not _NUMBER.match(raw):
            raise UsageError(f"--metric {key}: {shown(raw)} is not a number")
        value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
        if not math.isfinite(value):
            raise UsageError(f"--metric {key}: {shown(raw)} is not a finite number")
        node = result
        *parents, leaf = parts
        for index, part in enumerate(parents):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                prefix = ".".join(parents[: index + 1])
                raise UsageError(f"--metric {key} conflicts with --metric {prefix}")
            node = child
        if isinstance(node.get(leaf), dict):
            raise UsageError(f"--metric {key} conflicts with --metric {key}.*")
        node[leaf] = value
    return result


def merge(base: Metrics, override: Metrics) -> Metrics:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> {'a.b': leaf}."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
