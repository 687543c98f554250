"""The one place that knows mvctl's tag names and tag messages (GTO-compatible formats).

| tag              | kind        |
|------------------|-------------|
| MODEL@vX.Y.Z     | version     |
| MODEL@vX.Y.Z!    | deregister  |
| MODEL#CHANNEL#N  | event       |
| MODEL#CHANNEL!#N | unassign    |
| MODEL@CHANNEL    | alias       |
| MODEL@vX.Y.Z#gold| gold        |
| MODEL@vX.Y.Z#labels#N | labels  |

The first four are DESIGN.md's (three of them GTO's own formats). An unassignment is GTO's
too (``gto unassign``; mvctl writes it for ``canary stop``): the channel no longer serves the
version on that commit, and its counter N is the one assignment events count with. A gold
mark is mvctl's: a human vouching for a version (`mvctl mark-gold`); GTO and DVC skip tags
they cannot parse. A labels tag is mvctl's too: the labels and description a version has
from its Nth relabelling on (``mvctl label``), the newest N winning over the manifest's; GTO's
tag pattern matches no name with ``#`` after the version but digits, so GTO skips it.

A weighted channel (a canary) carries its share of traffic, a percentage in (0, 100], as
``weight`` in the bodies of its events and of its alias; the field is absent for channels
without one, so tags written before weights existed stay byte-identical.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mvctl.common import yamlio
from mvctl.errors import MvctlError, UsageError
from mvctl.formats.names import NAME_PATTERN, SEMVER_PATTERN, Version

TagKind = Literal["version", "deregister", "event", "unassign", "alias", "gold", "labels"]

TAG_PREFIX = "refs/tags/"
_NAME = NAME_PATTERN
_SEMVER = SEMVER_PATTERN
# \A...\Z, not ^...$: '$' matches before a trailing newline. The counter is capped at 18
# digits so int() of it stays cheap and exact.
_TAG_RE = re.compile(
    rf"\A(?P<model>{_NAME})(?:"
    rf"@(?P<version>{_SEMVER})"
    rf"(?:(?P<cancel>!)|(?P<gold>\#gold)|\#labels\#(?P<relabel>[1-9]\d{{0,17}}))?"
    rf"|#(?P<channel>{_NAME})(?P<unassign>!)?#(?P<counter>[1-9]\d{{0,17}})"
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
        if self.kind == "labels":
            return labels_tag(self.model, self.version, self.counter)
        if self.kind == "event":
            return event_tag(self.model, self.channel, self.counter)
        if self.kind == "unassign":
            return unassign_tag(self.model, self.channel, self.counter)
        return alias_tag(self.model, self.channel)

    @property
    def channel_event(self) -> bool:
        """An assignment or an unassignment: the two kinds that count with N."""
        return self.kind in CHANNEL_EVENT_KINDS


def version_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}"


def deregister_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}!"


def gold_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}#gold"


def labels_tag(model: str, version: str | Version, counter: int) -> str:
    """The ``counter``-th relabelling of a version (``mvctl label``); GTO ignores it."""
    return f"{model}@{version}#labels#{counter}"


def labels_glob(model: str, version: str | Version) -> str:
    """for-each-ref pattern matching a version's labels tags."""
    return f"{TAG_PREFIX}{model}@{version}#labels#*"


def event_tag(model: str, channel: str, counter: int) -> str:
    return f"{model}#{channel}#{counter}"


def unassign_tag(model: str, channel: str, counter: int) -> str:
    """GTO's ``Action.UNASSIGN`` (``{artifact}#{stage}!``) with the shared counter."""
    return f"{model}#{channel}!#{counter}"


CHANNEL_EVENT_KINDS: tuple[TagKind, ...] = ("event", "unassign")


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
        elif match["relabel"]:
            return TagName("labels", model, version=match["version"], counter=int(match["relabel"]))
        return TagName(kind, model, version=match["version"])
    if match["channel"]:
        kind = "unassign" if match["unassign"] else "event"
        return TagName(kind, model, channel=match["channel"], counter=int(match["counter"]))
    alias = match["alias"]
    if Version.is_valid(alias):  # pragma: no cover - the version branch matches first
        return None
    return TagName("alias", model, channel=alias)


def event_counters(model: str, names: Iterable[str]) -> list[tuple[str, str, int]]:
    """(name, channel, counter) of the names among ``names`` that :func:`parse` reads as
    ``model``'s channel events (assignments and unassignments): one pass of one pattern
    over all of them, for the moves that see every name of a model with 10,000 events."""
    names = list(names)
    text = "\n".join(names)  # the pattern picks the model's lines: no filter per name
    if text.count("\n") != max(len(names) - 1, 0):  # a name holding a newline
        prefix = f"{model}#"
        parsed = ((n, parse(n)) for n in names if n.startswith(prefix))
        return [(n, p.channel, p.counter) for n, p in parsed if p is not None and p.channel_event]
    return [(n, c, int(k)) for n, c, k in _event_pattern(model).findall(f"\n{text}\n")]


def _event_pattern(model: str) -> re.Pattern[str]:
    # Each line whole, as _TAG_RE's event branch reads it (no line holds a newline); the
    # leading literal lets the engine skip to each "\nMODEL#" instead of trying every line.
    return re.compile(rf"\n({re.escape(model)}#({_NAME})!?#([1-9]\d{{0,17}}))(?=\n)")


def newest_event(model: str, text: str) -> tuple[str, int] | None:
    """The name and counter of ``model``'s newest channel event (assignment or unassignment)
    among the names of ``text`` (one per line, each between newlines, as
    ``ListedTags.text``): one pattern returning only the digits, then the first name with
    the largest. For the moves, which need only the next counter of a model of 10,000
    events, not each event."""
    counters = _counter_pattern(model).findall(text)
    if not counters:
        return None
    if text.isascii():  # no leading zero: the longest are the largest (no int per event)
        width = max(map(len, counters))
        top = max([c for c in counters if len(c) == width])
    else:  # another script's digits, which parse reads too, by their value
        top = max(counters, key=int)
    event = _event_pattern(model)
    end = text.find(f"#{top}\n")
    while end >= 0:  # the first line ending in it that is one of the model's events
        start = text.rfind("\n", 0, end)
        found = event.match(text, start)
        if found is not None and found.end() == end + len(top) + 1:
            return found[1], int(top)
        end = text.find(f"#{top}\n", end + 1)
    return None  # pragma: no cover - the counter came from such a line


def channel_counters(model: str, channel: str, text: str) -> list[int]:
    """The counters of ``model``'s events on ``channel`` among the names of ``text`` (as
    :func:`newest_event` reads it), assignments and unassignments."""
    pattern = rf"\n{re.escape(model)}#{re.escape(channel)}!?#([1-9]\d{{0,17}})(?=\n)"
    return [int(c) for c in re.findall(pattern, text)]


def _counter_pattern(model: str) -> re.Pattern[str]:
    return re.compile(rf"\n{re.escape(model)}#{_NAME}!?#([1-9]\d{{0,17}})(?=\n)")


def newest_stops(names: Iterable[str]) -> dict[tuple[str, str], int]:
    """(model, channel) -> the number of its newest unassignment (stop) among tag ``names``."""
    found: dict[tuple[str, str], int] = {}
    for name in names:
        if "!#" not in name:
            continue  # most tags: skip the parse (sync reads thousands)
        parsed = parse(name)
        if parsed is not None and parsed.kind == "unassign":
            key = (parsed.model, parsed.channel)
            found[key] = max(found.get(key, 0), parsed.counter)
    return found


def emptied_channels(*groups: Collection[str]) -> dict[tuple[str, str], int]:
    """(model, channel) -> the number of its newest stop, for the channels whose newest
    event among all tag names in ``groups`` (say, a clone's and its remote's) is that stop:
    only their aliases are left over from it. A stop followed by a newer assignment is
    history; the alias then belongs to that assignment, whatever its body says (a
    lightweight alias has none). Only channels with a stop are looked at."""
    stops: dict[tuple[str, str], int] = {}
    for names in groups:
        for key, counter in newest_stops(names).items():
            stops[key] = max(stops.get(key, 0), counter)
    if not stops:
        return stops
    prefixes = {event_tag(model, channel, 1)[:-1]: (model, channel) for model, channel in stops}
    for names in groups:
        for name in names:
            bare = name.removeprefix(TAG_PREFIX)
            stopped = prefixes.get(bare[: bare.rfind("#") + 1])  # "MODEL#CHANNEL#": cheap
            if stopped is None or stopped not in stops:
                continue
            parsed = parse(bare)
            # The same number as the stop is a collision (moves made in two clones), not a
            # stop after it: the remote's alias is then as good as any (sync's rule).
            if parsed is not None and parsed.kind == "event" and parsed.counter >= stops[stopped]:
                del stops[stopped]  # assigned again after its stop
    return stops


def event_glob(model: str) -> str:
    """for-each-ref pattern matching a model's assignment (and unassignment) events."""
    return f"{TAG_PREFIX}{model}#*"


def version_glob(model: str) -> str:
    """for-each-ref pattern matching a model's version and deregistration tags."""
    return f"{TAG_PREFIX}{model}@v*"


ALL_VERSIONS_GLOB = f"{TAG_PREFIX}*@v*"


# --- weights -------------------------------------------------------------------------------

DEFAULT_WEIGHT = 10  # percent a promotion to canary starts at unless --weight says otherwise
DEFAULT_WEIGHTED = ("canary",)  # channels a promotion gives the default weight
UNWEIGHTED = {
    "production": "production has no weight: it serves what the weighted channels leave",
    "shadow": "shadow is a channel with no weight: it gets a copy of all traffic",
}
# Digits, an optional fraction: no sign, exponent, 'nan', 'inf', spaces or anything after.
# ASCII digits only: \d would take any script's digits, and float() reads them.
_WEIGHT_RE = re.compile(r"\A[0-9]{1,3}(?:\.[0-9]{1,6})?\Z")


def _whole(value: float) -> float:
    """An integral weight as an int, so bodies say ``10``, not ``10.0``."""
    return int(value) if float(value).is_integer() else float(value)


def check_weight(value: float, what: str = "the weight") -> float:
    """A weight from Python: a finite number in (0, 100], normalised (10.0 -> 10)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"{what} must be a number of percent, not {value!r}")
    if not math.isfinite(value) or not 0 < value <= 100:
        raise UsageError(
            f"{what} must be a percentage above 0 and at most 100, not {value!r}",
            hint="e.g. --weight 10 sends a tenth of the traffic to the channel",
        )
    return _whole(value)


def parse_weight(text: str, what: str = "the weight") -> float:
    """A weight as a user typed it: ``10``, ``12.5``; anything else is a usage error."""
    if not _WEIGHT_RE.match(text):
        raise UsageError(
            f"{what} must be a percentage such as 10 or 12.5, not {text[:40]!r}",
            hint="a number above 0 and at most 100, digits and one '.' only",
        )
    return check_weight(float(text), what)


def refuse_weight(channel: str) -> None:
    """Production and shadow carry no weight: refuse one for them (a usage error)."""
    if channel in UNWEIGHTED:
        raise UsageError(
            f"{UNWEIGHTED[channel]} (--weight is refused for {channel})",
            hint="weights are for canary channels: mvctl promote MODEL VERSION --to canary "
            "--weight 10",
        )


def read_weight(value: Any) -> float | None:
    """A weight as a tag body holds it; anything but a number in (0, 100] reads as none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 < value <= 100:
        return None
    return _whole(value)


def weight_text(weight: float) -> str:
    """``10``, ``12.5``: a weight as people read it (without the percent sign)."""
    return f"{weight:g}"


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
    """``MODEL@vX.Y.Z``: what `list` and `lineage` read without opening the manifest.
    ``labels``, ``description`` and ``data_window`` are the manifest's, written only when
    set (so tags of versions without them are byte-identical to older mvctl's)."""

    model: str
    version: str
    created: str | None
    author: str | None
    parent: str | None
    metrics: dict[str, Any]
    fingerprint: dict[str, Any]
    labels: tuple[str, ...] = ()
    description: str = ""
    data_window: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "version",
            "model": self.model,
            "version": self.version,
            "created": self.created,
            "author": self.author,
            "parent": self.parent,
            "metrics": self.metrics,
            "fingerprint": self.fingerprint,
        }
        if self.labels:
            body["labels"] = list(self.labels)
        if self.description:
            body["description"] = self.description
        if self.data_window is not None:
            body["data_window"] = self.data_window
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> VersionBody:
        metrics, fingerprint = body.get("metrics"), body.get("fingerprint")
        window = body.get("data_window")
        return cls(
            model=_text(body.get("model")),
            version=_text(body.get("version")),
            created=_text(body.get("created")) or None,
            author=_text(body.get("author")) or None,
            parent=_optional(body.get("parent")) or None,
            metrics=metrics if isinstance(metrics, dict) else {},
            fingerprint=fingerprint if isinstance(fingerprint, dict) else {},
            labels=_strings(body.get("labels")),
            description=_optional(body.get("description")) or "",
            data_window=window if isinstance(window, dict) else None,
        )


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(x for x in value if isinstance(x, str)) if isinstance(value, list) else ()


@dataclass(frozen=True)
class LabelsBody:
    """``MODEL@vX.Y.Z#labels#N``: the whole set of labels and the description the version
    has from this tag on (not a change: the newest N is all a reader needs)."""

    model: str
    version: str
    counter: int
    labels: tuple[str, ...]
    description: str
    actor: str
    time: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "labels",
            "model": self.model,
            "version": self.version,
            "counter": self.counter,
            "labels": list(self.labels),
            "description": self.description,
            "actor": self.actor,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> LabelsBody:
        description = body.get("description")
        return cls(
            model=_text(body.get("model")),
            version=_text(body.get("version")),
            counter=_int(body.get("counter")),
            labels=_strings(body.get("labels")),
            description=description if isinstance(description, str) else "",
            actor=_text(body.get("actor")),
            time=_text(body.get("time")),
        )


@dataclass(frozen=True)
class EventBody:
    """``MODEL#CHANNEL#N``: one assignment (promote, override, rollback or a weight change);
    ``MODEL#CHANNEL!#N``: one unassignment (kind ``stop``). ``weight`` is the channel's
    share of traffic after the event, ``previous_weight`` before it (each written only when
    the channel has one); ``evidence`` is the summary of the canary analysis that decided
    the move (``mvctl canary analyze --apply``), written only then. ``requested_by`` names
    the person who asked for a move through another surface than the command line (``via``,
    e.g. ``"ui"``, the dashboard), both written only when set, so older events stay
    byte-identical."""

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
    weight: float | None = None  # written only when set (weighted channels)
    previous_weight: float | None = None  # written only when set
    # The canary analysis a move was decided on (mvctl.canary): written only when set.
    evidence: dict[str, Any] | None = None
    requested_by: str | None = None  # a human override's requester: written only when set
    via: str | None = None  # the surface it was asked through ("ui"): written only when set

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
        if self.weight is not None:
            body["weight"] = _whole(self.weight)
        if self.previous_weight is not None:
            body["previous_weight"] = _whole(self.previous_weight)
        if self.evidence is not None:
            body["evidence"] = self.evidence
        if self.requested_by is not None:
            body["requested_by"] = self.requested_by
        if self.via is not None:
            body["via"] = self.via
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> EventBody:
        evidence = body.get("evidence")
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
            weight=read_weight(body.get("weight")),
            previous_weight=read_weight(body.get("previous_weight")),
            evidence=evidence if isinstance(evidence, dict) else None,
            requested_by=_optional(body.get("requested_by")),
            via=_optional(body.get("via")),
        )


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


CHAIN_LENGTH = 32  # events of its channel an alias body names: what a rollback walks back


@dataclass(frozen=True)
class AliasBody:
    """``MODEL@CHANNEL``: the event the alias was moved by, so a reader needs no other tag.
    A weighted channel's alias also says its ``weight`` (the one field a serving host needs
    to split traffic); absent for channels without one.

    ``chain`` names the channel's newest events, oldest first, ending with ``event`` (at
    most CHAIN_LENGTH), ``next`` the model's next event counter when it was written and
    ``channels`` the channels the model had events on: what a rollback or a promotion needs
    to read a handful of tags instead of every event. They are hints, never the record: a
    move checks them against the event tags they name before it trusts them, and ``mvctl
    check`` against the whole history. Absent (``()``, 0) in aliases older mvctl wrote."""

    model: str
    channel: str
    version: str
    event: str | None
    counter: int
    weight: float | None = None  # written only when set
    chain: tuple[str, ...] = ()  # written only when set, with next and channels
    next: int = 0
    channels: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "alias",
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "event": self.event,
            "counter": self.counter,
        }
        if self.chain:
            body["chain"] = list(self.chain)
            body["next"] = self.next
            body["channels"] = list(self.channels)
        if self.weight is not None:  # last, as it was before chains
            body["weight"] = _whole(self.weight)
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> AliasBody:
        chain = _items(body.get("chain"))
        channels = _items(body.get("channels"))
        valid = all(isinstance(c, str) for c in chain + channels)
        return cls(
            model=_text(body.get("model")),
            channel=_text(body.get("channel")),
            version=_text(body.get("version")),
            event=_optional(body.get("event")),
            counter=_int(body.get("counter")),
            weight=read_weight(body.get("weight")),
            chain=tuple(chain) if valid else (),
            next=_int(body.get("next")) if valid else 0,
            channels=tuple(channels) if valid else (),
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
    pruned: bool = False  # a deregistration by ``mvctl gc``: the version's artifacts are gone

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "model": self.model,
            "version": self.version,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
        }
        if self.pruned:  # only then: every other mark's tag stays byte-identical
            out["pruned"] = True
        return out

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
            pruned=body.get("pruned") is True,
        )
