"""``mvctl.yaml``: the registry's user-facing config (DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from mvctl.common import yamlio
from mvctl.errors import OperationalError
from mvctl.formats import schema
from mvctl.formats.layout import CONFIG_FILE
from mvctl.formats.rules import CanaryConfig, Rule, parse_canary, parse_rule
from mvctl.formats.schema import DEFAULT_CHANNELS

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_CHANNELS",
    "ModelConfig",
    "RegistryConfig",
    "check_registry",
    "load",
    "loads",
]


TEMPLATE = """\
# mvctl registry configuration. See the mvctl README for every key.
version: 1

# Deployment pointers; each becomes a git tag MODEL@CHANNEL.
channels: [production, staging, canary, shadow]

# Commands that move tags publish them to the git remote (auto); never keeps them local
# until `mvctl push`.
# push: never

# Large fleets: pushed moves also write a small pointer file per channel on the DVC remote,
# which hosts poll (mvctl pull --watch --pointer) instead of the git server.
# pointers: true

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


RuleKind = Literal["gates", "monitors"]


@dataclass(frozen=True)
class ModelConfig:
    weights: str | None = None
    data: tuple[str, ...] = ()
    metrics: str | None = None
    params: str | None = None
    env_lock: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    review: tuple[str, ...] = ()  # channels whose promotions need a merged request
    gate_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # by channel
    monitor_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)
    canary: CanaryConfig = field(default_factory=CanaryConfig)  # mvctl canary analyze

    @property
    def date_column(self) -> str | None:
        """``columns.date``: the column whose first and last day are the data's window."""
        columns = self.raw.get("columns")
        found = columns.get("date") if isinstance(columns, dict) else None
        return found if isinstance(found, str) else None

    def gates(self, channel: str) -> list[Rule]:
        """The gate rules for ``channel`` (see mvctl.channels.gates)."""
        return list(self.gate_rules.get(channel, ()))

    def monitors(self, channel: str) -> list[Rule]:
        """The monitor rules for ``channel`` (see mvctl.analysis.rules)."""
        return list(self.monitor_rules.get(channel, ()))

    def has_rules(self) -> tuple[str, ...]:
        """Which of gates and monitors have at least one rule on some channel."""
        tables = {"gates": self.gate_rules, "monitors": self.monitor_rules}
        return tuple(kind for kind, table in tables.items() if any(table.values()))


@dataclass(frozen=True)
class RegistryConfig:
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    models: dict[str, ModelConfig] = field(default_factory=dict)

    review: tuple[str, ...] = ()  # top-level default for every model
    push: str = "auto"  # "never": moves stay local unless published by hand
    pointers: bool = False  # pushed moves also write pointer files on the DVC remote

    def model(self, name: str) -> ModelConfig:
        return self.models.get(name, ModelConfig(review=self.review))

    def rules_for(
        self, model: str, kind: RuleKind, channel: str, registered: Callable[[str], bool]
    ) -> list[Rule]:
        """``model``'s ``kind`` rules for ``channel``. When ``model`` has no entry but an entry
        with rules names a model with no registered version (``registered`` says), that entry
        is most likely ``model`` misspelled, and running no rule would let anything through."""
        if model not in self.models:
            orphans = self.unregistered(registered)
            if orphans:
                name = (get_close_matches(model, orphans, n=1) or orphans)[0]
                raise _bad(
                    f"models.{name} has {self._rule_words(name)} but no version of {name!r} is"
                    f" registered, and {model} has no entry (a typo?)",
                    hint=f"rename models.{name} to {model}, or give {model} an entry of its own"
                    f" ('{model}: {{}}' for none)",
                )
        entry = self.model(model)
        return entry.gates(channel) if kind == "gates" else entry.monitors(channel)

    def unregistered(self, registered: Callable[[str], bool]) -> list[str]:
        """Models with gates or monitors but no registered version."""
        return [n for n, m in self.models.items() if m.has_rules() and not registered(n)]

    def unregistered_problems(self, registered: Collection[str]) -> list[str]:
        """``mvctl check``'s words for :meth:`unregistered`."""
        return [
            f"{CONFIG_FILE}: models.{name} has {self._rule_words(name)} but no version of"
            f" {name!r} is registered"
            for name in self.unregistered(registered.__contains__)
        ]

    def _rule_words(self, name: str) -> str:
        return " and ".join(self.models[name].has_rules())


def _bad(message: str, hint: str | None = None) -> OperationalError:
    return OperationalError(
        f"{CONFIG_FILE}: {message}", hint=hint or f"fix {CONFIG_FILE} and retry"
    )


def parse(data: Any, text: str | None = None) -> RegistryConfig:
    """The config in ``data`` (loaded from ``text``, which gives errors their line)."""
    found = list(schema.problems(data))
    if found:
        raise schema.located(found[0], len(found) - 1, text)
    data = data or {}
    review = tuple(data.get("review", []))
    models: dict[str, ModelConfig] = {}
    for name, entry in (data.get("models") or {}).items():
        entry = entry or {}
        paths = entry.get("data", [])
        models[name] = ModelConfig(
            weights=entry.get("weights"),
            data=(paths,) if isinstance(paths, str) else tuple(paths),
            metrics=entry.get("metrics"),
            params=entry.get("params"),
            env_lock=entry.get("env_lock"),
            raw=entry,
            review=tuple(entry.get("review", review)),
            gate_rules=_by_channel(entry.get("gates")),
            monitor_rules=_by_channel(entry.get("monitors")),
            canary=parse_canary(entry.get("canary")),
        )
    return RegistryConfig(
        channels=tuple(data.get("channels", DEFAULT_CHANNELS)),
        models=models,
        review=review,
        push=data.get("push", "auto"),
        pointers=data.get("pointers", False),
    )


def _by_channel(table: dict[str, list[dict[str, Any]]] | None) -> dict[str, tuple[Rule, ...]]:
    """A gates or monitors table the schema accepted, typed (so no rule fails to parse)."""
    return {channel: tuple(map(parse_rule, rules)) for channel, rules in (table or {}).items()}


def check_registry(root: Path) -> None:
    """``root`` (a work tree's top level) is a registry: it has ``mvctl.yaml``. Every
    command that reads or writes a registry says so in the same words, exit 3."""
    if not (root / CONFIG_FILE).is_file():
        raise OperationalError(
            f"{root} is not an mvctl registry (no {CONFIG_FILE})", hint="run 'mvctl init' first"
        )


def load(root: Path) -> RegistryConfig:
    check_registry(root)
    return loads(yamlio.read_text(root / CONFIG_FILE))  # capped, and UTF-8 or a one-line error


def loads(text: str) -> RegistryConfig:
    return parse(yamlio.loads(text, CONFIG_FILE), text)
