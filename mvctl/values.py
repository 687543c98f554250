"""Metrics (numbers only, flat or nested) and params, read from files and options."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mvctl import yamlio
from mvctl.errors import OperationalError, UsageError

Metrics = dict[str, Any]  # nested mapping whose leaves are int/float


def _load_mapping(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise OperationalError(f"{what} file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OperationalError(f"{what} file {path} is not valid JSON: {exc}") from exc
    else:
        data = yamlio.load_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise OperationalError(f"{what} file {path} must hold a mapping of names to values")
    return data


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
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise UsageError(
                f"--metric {option!r} is not KEY=NUMBER", hint="e.g. --metric auc=0.93"
            )
        try:
            value: int | float = int(raw) if raw.strip().lstrip("-").isdigit() else float(raw)
        except ValueError:
            raise UsageError(f"--metric {key}: {raw!r} is not a number") from None
        if not math.isfinite(value):
            raise UsageError(f"--metric {key}: {raw!r} is not a finite number")
        node = result
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise UsageError(f"--metric {key} conflicts with --metric {part}")
            node = child
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
