"""Which channel answers a request: the channels a router serves as one immutable value,
and the sticky bucket of a request key.

A request goes to the canary iff its key's bucket is below the canary's weight. The bucket
is a hash of model and key alone, in steps of a millionth of a percent (the six decimals a
weight may have, so the share routed is the weight recorded):

    digest = sha256(model + "\\0" + key)
    bucket = (int.from_bytes(digest[:8], "big") % 10_000 * 10_000
              + int.from_bytes(digest[8:16], "big") % 10_000) / 1_000_000

so every replica, process and restart sends a key to the same channel, and raising the
weight only moves keys to the canary, never back. The first term is the bucket of 0.01%
steps routers used before, so a weight of at most two decimals routes every key as they did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mvctl.serving.errors import InvalidRequest, NotReady
from mvctl.serving.loaders import LoadedModel
from mvctl.serving.metrics import Slot

SHADOW = "shadow"
KEY_MAX = 256
_KEY_RE = re.compile(rf"[\x20-\x7e]{{1,{KEY_MAX}}}")  # printable ASCII, as a header carries


@dataclass(frozen=True)
class Loaded:
    """One channel's model, ready to answer."""

    channel: str
    version: str
    model: LoadedModel
    weight: float | None  # percent, for the weighted (canary) channel
    dir: str  # versions/NAME it was loaded from (reload only when this changes)

    def identity(self) -> tuple[str, str, str, float | None]:
        """What tells two servings apart (the model object is the same for one dir)."""
        return (self.channel, self.version, self.dir, self.weight)


@dataclass(frozen=True)
class Answer:
    channel: str
    version: str
    key: str
    outputs: list[Any]
    latency_s: float


@dataclass(frozen=True)
class Channel:
    """A served channel with its role ("primary", "canary" or "shadow") and the metric
    children it counts into, bound once."""

    loaded: Loaded
    role: str
    slot: Slot


@dataclass(frozen=True)
class Snapshot:
    """What serves, replaced whole: a request reads it once and it is never mutated."""

    primary: Channel | None = None
    canary: Channel | None = None
    shadow: Channel | None = None

    def channels(self) -> list[Channel]:
        return [c for c in (self.primary, self.canary, self.shadow) if c is not None]


def roles(channels: Sequence[tuple[str, float | None]]) -> dict[int, str]:
    """Which of ``channels`` (name, weight) serve, by index: the first is the primary; the
    first later one with a weight is the canary; the one named "shadow" gets a copy of
    every request; the others are ignored (so never loaded)."""
    out: dict[int, str] = {}
    for i, (name, weight) in enumerate(channels):
        if i == 0:
            out[i] = "primary"
        elif name == SHADOW and SHADOW not in out.values():
            out[i] = SHADOW
        elif name != SHADOW and weight is not None and "canary" not in out.values():
            out[i] = "canary"
    return out


def snapshot_of(loaded: Sequence[Loaded], slot: Callable[[str, str], Slot]) -> Snapshot:
    """The snapshot serving ``loaded`` in the roles ``roles`` gives them."""
    chosen: dict[str, Channel] = {}
    for i, role in roles([(item.channel, item.weight) for item in loaded]).items():
        item = loaded[i]
        if item.weight is not None and not 0 <= item.weight <= 100:
            raise InvalidRequest(
                f"weight of {item.channel} must be 0-100 percent, not {item.weight}"
            )
        chosen[role] = Channel(item, role, slot(item.channel, item.version))
    return Snapshot(chosen.get("primary"), chosen.get("canary"), chosen.get(SHADOW))


class KeyRouter:
    """Picks a snapshot's channel for a key; the model's hash prefix is computed once."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._prefix = hashlib.sha256(f"{model}\0".encode())

    def pick(self, snapshot: Snapshot, key: str) -> Channel:
        primary, canary = snapshot.primary, snapshot.canary
        if primary is None:
            raise NotReady(f"no model of {self.model} is loaded yet", hint="wait for a pull")
        if canary is not None and canary.loaded.weight:
            digest = self._prefix.copy()
            digest.update(key.encode())
            if _millionths(digest.digest()) < round(canary.loaded.weight * STEPS):
                return canary
        return primary


STEPS = 1_000_000  # buckets per percent: a weight's six decimals, compared as integers


def _millionths(digest: bytes) -> int:
    """The bucket in millionths of a percent, in [0, 100 * STEPS)."""
    coarse = int.from_bytes(digest[:8], "big") % 10_000  # hundredths of a percent
    return coarse * 10_000 + int.from_bytes(digest[8:16], "big") % 10_000


def bucket(model: str, key: str) -> float:
    """The key's place in [0, 100): the definition KeyRouter.pick computes faster."""
    return _millionths(hashlib.sha256(f"{model}\0{key}".encode()).digest()) / STEPS


def request_key(header: str | None, payload: bytes) -> str:
    """The X-Request-Key header if given, else the sha256 of the payload: the same request
    always routes the same way."""
    if header is None:
        return hashlib.sha256(payload).hexdigest()
    return check_key(header)


def check_key(key: str) -> str:
    """A request key: 1 to 256 printable ASCII characters (it goes into logs and labels)."""
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InvalidRequest(
            f"invalid request key: 1 to {KEY_MAX} printable ASCII characters",
            hint="send X-Request-Key as a short printable id, or leave it out",
        )
    return key
