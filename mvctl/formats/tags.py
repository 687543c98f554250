"""The one place that knows mvctl's tag names and tag messages (GTO-compatible formats).

| tag              | kind        |
|------------------|-------------|
| MODEL@vX.Y.Z     | version     |
| MODEL@vX.Y.Z!    | deregister  |
| MODEL#CHANNEL#N  | event       |
| MODEL@CHANNEL    | alias       |
| MODEL@vX.Y.Z#gold| gold        |

The first four are DESIGN.md's (three of them GTO's own formats). A gold mark is mvctl's: a
human vouching for a version (`mvctl mark-gold`); GTO and DVC skip tags they cannot parse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mvctl.common import yamlio
from mvctl.errors import MvctlError
from mvctl.formats.names import NAME_PATTERN, SEMVER_PATTERN, Version

TagKind = Literal["version", "deregister", "event", "alias", "gold"]

TAG_PREFIX = "refs/tags/"
_NAME = NAME_PATTERN
_SEMVER = SEMVER_PATTERN
# \A...\Z, not ^...$: '$' matches before a trailing newline. The counter is capped at 18
# digits so int() of it stays cheap and exact.
_TAG_RE = re.compile(
    rf"\A(?P<model>{_NAME})(?:"
    rf"@(?P<version>{_SEMVER})(?:(?P<cancel>!)|(?P<gold>\#gold))?"
    rf"|#(?P<channel>{_NAME})#(?P<counter>[1-9]\d{{0,17}})"
    rf"|@(?P<alias>{_NAME})"
    r")\Z"
)


@dataclass(frozen=True)
class TagName:
    kind: TagKind
    model: str
    version: str = ""
    channel: str = ""
    counter: int = 0

    def __str__(self) -> str:
        if self.kind == "version":
            return version_tag(self.model, self.version)
        if self.kind == "deregister":
            return deregister_tag(self.model, self.version)
        if self.kind == "gold":
            return gold_tag(self.model, self.version)
        if self.kind == "event":
            return event_tag(self.model, self.channel, self.counter)
        return alias_tag(self.model, self.channel)


def version_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}"


def deregister_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}!"


def gold_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}#gold"


def event_tag(model: str, channel: str, counter: int) -> str:
    return f"{model}#{channel}#{counter}"


def alias_tag(model: str, channel: str) -> str:
    return f"{model}@{channel}"


def parse(name: str) -> TagName | None:
    """Parse a tag name (with or without refs/tags/); None for tags that are not mvctl's."""
    name = name.removeprefix(TAG_PREFIX)
    match = _TAG_RE.match(name)
    if not match:
        return None
    model = match["model"]
    # The SemVer pattern's own 'v' prefix lives inside the version group.
    if match["version"]:
        kind: TagKind = "version"
        if match["cancel"]:
            kind = "deregister"
        elif match["gold"]:
            kind = "gold"
        return TagName(kind, model, version=match["version"])
    if match["channel"]:
        return TagName("event", model, channel=match["channel"], counter=int(match["counter"]))
    alias = match["alias"]
    if Version.is_valid(alias):  # pragma: no cover - the version branch matches first
        return None
    return TagName("alias", model, channel=alias)


def event_glob(model: str) -> str:
    """for-each-ref pattern matching a model's assignment events."""
    return f"{TAG_PREFIX}{model}#*"


def version_glob(model: str) -> str:
    """for-each-ref pattern matching a model's version and deregistration tags."""
    return f"{TAG_PREFIX}{model}@v*"


ALL_VERSIONS_GLOB = f"{TAG_PREFIX}*@v*"


def format_message(title: str, body: dict[str, Any]) -> str:
    """Tag messages: a human-readable first line, a blank line, then a YAML body.

    The body is written in YAML's JSON-compatible flow style, one field per line: any YAML
    reader gets the same mapping, and mvctl reads a thousand of them with the JSON parser
    in a few milliseconds (a block-style YAML parse costs ~0.2 ms each).
    """
    return f"{title}\n\n{json.dumps(body, indent=1, ensure_ascii=False)}\n"


def parse_message(message: str) -> tuple[str, dict[str, Any]]:
    title, _, rest = message.partition("\n")
    body: Any = None
    if rest.strip():
        try:
            body = json.loads(rest)
        except RecursionError:
            body = None  # a body nested thousands deep is no body of ours (nor a crash)
        except ValueError:
            # A hand-written (or block-style) body: read it as the YAML it is, and never
            # reject a tag message that is not ours.
            try:
                body = yamlio.loads(rest, "tag message")
            except (MvctlError, RecursionError):
                body = None
    return title.strip(), body if isinstance(body, dict) else {}


# Tag bodies. Writers build one of these and write ``to_dict()``, field for field in the order
# below (tests compare tags byte for byte). Readers take any mapping: a field of the wrong type
# reads as absent, since a tag written by hand or by another tool is no reason to fail.


def _text(value: Any) -> str:
    """A field read as text: absent, empty or null is ``""``."""
    return str(value) if value else ""


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


@dataclass(frozen=True)
class VersionBody:
    """``MODEL@vX.Y.Z``: what `list` and `lineage` read without opening the manifest."""

    model: str
    version: str
    created: str | None
    author: str | None
    parent: str | None
    metrics: dict[str, Any]
    fingerprint: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "version",
            "model": self.model,
            "version": self.version,
            "created": self.created,
            "author": self.author,
            "parent": self.parent,
            "metrics": self.metrics,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> VersionBody:
        metrics, fingerprint = body.get("metrics"), body.get("fingerprint")
        return cls(
            model=_text(body.get("model")),
            version=_text(body.get("version")),
            created=_text(body.get("created")) or None,
            author=_text(body.get("author")) or None,
            parent=_optional(body.get("parent")) or None,
            metrics=metrics if isinstance(metrics, dict) else {},
            fingerprint=fingerprint if isinstance(fingerprint, dict) else {},
        )


@dataclass(frozen=True)
class EventBody:
    """``MODEL#CHANNEL#N``: one assignment (promote, override or rollback)."""

    kind: str
    model: str
    channel: str
    version: str
    previous: str | None
    counter: int
    reason: str
    actor: str
    time: str
    gates: tuple[dict[str, Any], ...] = ()
    request: str | None = None
    incident: str | None = None
    alerts: tuple[str, ...] = ()  # written only when there are some

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "previous": self.previous,
            "counter": self.counter,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
            "gates": list(self.gates),
            "request": self.request,
            "incident": self.incident,
        }
        if self.alerts:
            body["alerts"] = list(self.alerts)
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> EventBody:
        return cls(
            kind=_text(body.get("kind")),
            model=_text(body.get("model")),
            channel=_text(body.get("channel")),
            version=_text(body.get("version")),
            previous=_optional(body.get("previous")),
            counter=_int(body.get("counter")),
            reason=_text(body.get("reason")),
            actor=_text(body.get("actor")),
            time=_text(body.get("time")),
            gates=tuple(g for g in _items(body.get("gates")) if isinstance(g, dict)),
            request=_optional(body.get("request")),
            incident=_optional(body.get("incident")),
            alerts=tuple(a for a in _items(body.get("alerts")) if isinstance(a, str)),
        )


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class AliasBody:
    """``MODEL@CHANNEL``: the event the alias was moved by, so a reader needs no other tag."""

    model: str
    channel: str
    version: str
    event: str | None
    counter: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "alias",
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "event": self.event,
            "counter": self.counter,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> AliasBody:
        return cls(
            model=_text(body.get("model")),
            channel=_text(body.get("channel")),
            version=_text(body.get("version")),
            event=_optional(body.get("event")),
            counter=_int(body.get("counter")),
        )


@dataclass(frozen=True)
class MarkBody:
    """``MODEL@vX.Y.Z#gold`` and ``MODEL@vX.Y.Z!``: a human's word on a version."""

    kind: Literal["gold", "deregister"]
    model: str
    version: str
    reason: str
    actor: str
    time: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> MarkBody:
        kind: Literal["gold", "deregister"] = (
            "deregister" if body.get("kind") == "deregister" else "gold"
        )
        return cls(
            kind=kind,
            model=_text(body.get("model")),
            version=_text(body.get("version")),
            reason=_text(body.get("reason")),
            actor=_text(body.get("actor")),
            time=_text(body.get("time")),
        )
