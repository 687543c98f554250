"""A channel's pointer file: a small JSON document published next to the artifacts (at
``mvctl/channels/MODEL/CHANNEL.json`` under the DVC remote) after a channel move was pushed
to git, so that a fleet polls a cheap object store instead of the git server.

A pointer is a hint and nothing more: a host reads it only to learn that *something*
changed, then resolves the alias in git, the source of truth. So the parser is strict
(a forged document is refused whole, never half-read) but nothing trusts what it says."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from mvctl.errors import OperationalError
from mvctl.formats import tags
from mvctl.formats.names import NAME_RE, SEMVER_RE, shown

SCHEMA = "mvctl.pointer/1"
MAX_BYTES = 4096  # a pointer is a few hundred bytes; anything bigger is no publisher's
PREFIX = "mvctl/channels"
_FIELDS = (
    "schema",
    "model",
    "channel",
    "alias",
    "event",
    "commit",
    "version",
    "weights",
    "published",
)
_COMMIT_RE = re.compile(r"\A(?:[0-9a-f]{40}|[0-9a-f]{64})\Z")
_MD5_RE = re.compile(r"\A[0-9a-f]{32}(?:\.dir)?\Z")
_PATH_RE = re.compile(r"\A[^\x00-\x1f\x7f\\]{1,255}\Z")
_TIME_RE = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")
_MAX_WEIGHTS = 16


class BadPointer(OperationalError):
    """A pointer document that is not one mvctl writes (a host takes it as a change hint)."""


@dataclass(frozen=True)
class Pointer:
    model: str
    channel: str
    event: str  # the assignment event tag the move wrote
    commit: str  # the commit the alias names (the version's)
    version: str
    weights: tuple[tuple[str, str], ...]  # (path in the registry, DVC md5), sorted
    published: str  # UTC ISO-8601, when the publisher wrote it

    @property
    def alias(self) -> str:
        return tags.alias_tag(self.model, self.channel)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "channel": self.channel,
            "alias": self.alias,
            "event": self.event,
            "commit": self.commit,
            "version": self.version,
            "weights": dict(self.weights),
            "published": self.published,
        }


def key(model: str, channel: str) -> str:
    """The pointer's key relative to the remote's root (names validated first)."""
    if not NAME_RE.match(model) or not NAME_RE.match(channel):
        raise OperationalError(f"no pointer key for {shown(model)}@{shown(channel)}")
    return f"{PREFIX}/{model}/{channel}.json"


def dumps(pointer: Pointer) -> bytes:
    """The document as it is written: checked by the same parser a host uses."""
    body = (json.dumps(pointer.to_dict(), indent=1, sort_keys=True) + "\n").encode()
    parse(body)
    return body


def parse(body: bytes, model: str | None = None, channel: str | None = None) -> Pointer:
    """A pointer document, every field checked in full; ``model``/``channel``: the ones the
    reader expects (another's pointer is refused). Raises BadPointer."""
    if len(body) > MAX_BYTES:
        raise BadPointer(f"the pointer is larger than {MAX_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadPointer("the pointer is not JSON") from None
    if not isinstance(data, dict):
        raise BadPointer("the pointer is not a JSON object")
    if data.get("schema") != SCHEMA:
        raise BadPointer(f"the pointer's schema is {shown(str(data.get('schema')))}, not {SCHEMA}")
    unknown = set(data) - set(_FIELDS)
    missing = set(_FIELDS) - set(data)
    if unknown or missing:
        which = sorted(unknown) or sorted(missing)
        raise BadPointer(f"the pointer has {'unknown' if unknown else 'no'} {', '.join(which)}")
    pointer = Pointer(
        model=_name(data["model"], "model"),
        channel=_name(data["channel"], "channel"),
        event=_text(data["event"], "event"),
        commit=_match(data["commit"], _COMMIT_RE, "commit"),
        version=_match(data["version"], SEMVER_RE, "version"),
        weights=_weights(data["weights"]),
        published=_match(data["published"], _TIME_RE, "published time"),
    )
    _check_tags(pointer, data["alias"])
    if (model is not None and pointer.model != model) or (
        channel is not None and pointer.channel != channel
    ):
        raise BadPointer(f"the pointer is {pointer.alias}'s, not {model}@{channel}'s")
    return pointer


def _check_tags(pointer: Pointer, alias: object) -> None:
    if alias != pointer.alias:
        raise BadPointer(f"the pointer's alias {shown(str(alias))} is not {pointer.alias}")
    event = tags.parse(pointer.event)
    if (
        event is None
        or str(event) != pointer.event
        or event.kind != "event"
        or event.model != pointer.model
        or event.channel != pointer.channel
    ):
        raise BadPointer(f"the pointer's event {shown(pointer.event)} is not {pointer.alias}'s")


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise BadPointer(f"the pointer's {what} is not a name")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 200:
        raise BadPointer(f"the pointer's {what} is not a tag name")
    return value


def _match(value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise BadPointer(f"the pointer's {what} is not valid")
    return value


def _weights(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not 0 < len(value) <= _MAX_WEIGHTS:
        raise BadPointer("the pointer's weights are not a mapping of path to md5")
    pairs = []
    for path, md5 in value.items():
        pairs.append((_match(path, _PATH_RE, "weights path"), _match(md5, _MD5_RE, "weights md5")))
    return tuple(sorted(pairs))
