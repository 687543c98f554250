"""``mvctl.yaml``: the registry's user-facing config (DESIGN.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl import yamlio
from mvctl.errors import OperationalError
from mvctl.names import NAME_RE

CONFIG_FILE = "mvctl.yaml"
DEFAULT_CHANNELS = ("production", "staging", "canary", "shadow")

TEMPLATE = """\
# mvctl registry configuration. See the mvctl README for every key.
version: 1

# Deployment pointers; each becomes a git tag MODEL@CHANNEL.
channels: [production, staging, canary, shadow]

# Per-model defaults for `mvctl register MODEL` (command-line options win), plus the gates
# and monitors later commands check. Example:
#
# models:
#   fraud:
#     weights: models/fraud.pkl
#     data: [data/train.csv]
#     metrics: metrics.json
#     params: params.yaml
#     env_lock: requirements.lock
#     gates:
#       production:
#         - {metric: auc, min: 0.90}
models: {}
"""


@dataclass(frozen=True)
class ModelConfig:
    weights: str | None = None
    data: tuple[str, ...] = ()
    metrics: str | None = None
    params: str | None = None
    env_lock: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    review: tuple[str, ...] = ()  # channels whose promotions need a merged request

    def gates(self, channel: str) -> list[Any]:
        """The gate rules for ``channel`` (see mvctl.gates)."""
        return self._rules("gates", channel)

    def monitors(self, channel: str) -> list[Any]:
        """The monitor rules for ``channel`` (see mvctl.monitor)."""
        return self._rules("monitors", channel)

    def _rules(self, key: str, channel: str) -> list[Any]:
        table = self.raw.get(key) or {}
        rules = table.get(channel) if isinstance(table, dict) else None
        return list(rules) if isinstance(rules, list) else []


@dataclass(frozen=True)
class RegistryConfig:
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    models: dict[str, ModelConfig] = field(default_factory=dict)

    review: tuple[str, ...] = ()  # top-level default for every model

    def model(self, name: str) -> ModelConfig:
        return self.models.get(name, ModelConfig(review=self.review))


def _bad(message: str) -> OperationalError:
    return OperationalError(f"{CONFIG_FILE}: {message}", hint=f"fix {CONFIG_FILE} and retry")


def _optional_str(entry: dict[str, Any], key: str, model: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _bad(f"models.{model}.{key} must be a path")
    return value


def parse(data: Any) -> RegistryConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _bad("must be a mapping")
    if data.get("version", 1) != 1:
        raise _bad(f"unsupported version {data.get('version')!r} (this mvctl reads version 1)")
    channels = data.get("channels", list(DEFAULT_CHANNELS))
    if not isinstance(channels, list) or not all(
        isinstance(c, str) and NAME_RE.match(c) for c in channels
    ):
        raise _bad("channels must be a list of names like 'production'")
    models_raw = data.get("models") or {}
    if not isinstance(models_raw, dict):
        raise _bad("models must be a mapping of model names")
    models: dict[str, ModelConfig] = {}
    for name, entry in models_raw.items():
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise _bad(f"invalid model name {name!r}")
        entry = entry or {}
        if not isinstance(entry, dict):
            raise _bad(f"models.{name} must be a mapping")
        data_paths = entry.get("data", [])
        if isinstance(data_paths, str):
            data_paths = [data_paths]
        if not isinstance(data_paths, list) or not all(isinstance(p, str) for p in data_paths):
            raise _bad(f"models.{name}.data must be a list of paths")
        review = entry.get("review", data.get("review", []))
        if not isinstance(review, list) or not all(isinstance(c, str) for c in review):
            raise _bad(f"models.{name}.review must be a list of channels")
        for key in ("gates", "monitors"):
            table = entry.get(key, {})
            if not isinstance(table, dict) or not all(isinstance(v, list) for v in table.values()):
                raise _bad(f"models.{name}.{key} must map channels to lists of rules")
        models[name] = ModelConfig(
            weights=_optional_str(entry, "weights", name),
            data=tuple(data_paths),
            metrics=_optional_str(entry, "metrics", name),
            params=_optional_str(entry, "params", name),
            env_lock=_optional_str(entry, "env_lock", name),
            raw=entry,
            review=tuple(review),
        )
    review = data.get("review", [])
    if not isinstance(review, list) or not all(isinstance(c, str) for c in review):
        raise _bad("review must be a list of channels")
    return RegistryConfig(channels=tuple(channels), models=models, review=tuple(review))


def load(root: Path) -> RegistryConfig:
    path = root / CONFIG_FILE
    if not path.is_file():
        raise OperationalError(
            f"{root} is not an mvctl registry (no {CONFIG_FILE})", hint="run 'mvctl init' first"
        )
    return parse(yamlio.load_file(path))


def loads(text: str) -> RegistryConfig:
    return parse(yamlio.loads(text, CONFIG_FILE))
