"""Channel state, read from tags: assignment events, aliases, gold and bad versions.

Events (``MODEL#CHANNEL#N``, and the unassignments ``MODEL#CHANNEL!#N`` that ``canary stop``
writes) never move and are totally ordered by N, a counter shared by all channels of a model.
The alias (``MODEL@CHANNEL``) is what a serving host reads; it must agree with the newest
event of its channel (``mvctl check``): it points where that event does, or, after a stop,
does not exist. A version becomes *gold* on a channel when a promotion replaces it there (it
served and was not rolled back away from), or by ``mvctl mark-gold``; it becomes *bad* when
a rollback moves the channel away from it. A weight change is no move: the same version keeps
serving, with another share of traffic. A stop empties the channel; it says nothing about the
version it took off (neither gold nor bad), and the next promotion starts a new tenure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.errors import deregistered, unknown_model, unknown_version
from mvctl.formats import tags
from mvctl.formats.names import Version, check_channel, check_model
from mvctl.registry import index
from mvctl.registry.read import ModelTags, group_tags, open_registry

EventKind = Literal["promote", "rollback", "override", "weight", "stop", "assign"]
Standing = Literal["gold", "bad"]


@dataclass(frozen=True)
class Event:
    name: str
    counter: int
    channel: str
    kind: EventKind  # "assign": an event mvctl did not write (e.g. `gto assign`)
    version: str | None  # the version registered on the event's commit (for a stop: taken off)
    previous: str | None
    reason: str
    actor: str
    time: str
    commit: str
    object: str
    gates: tuple[dict[str, Any], ...] = ()
    request: str | None = None
    incident: str | None = None  # set by automatic rollbacks (webhook alerts)
    alerts: tuple[str, ...] = ()  # the alert instances an automatic rollback acted on
    weight: float | None = None  # the channel's share of traffic after the event (weighted)
    previous_weight: float | None = None
    evidence: dict[str, Any] | None = None  # the canary analysis that decided the event
    requested_by: str | None = None  # who asked for it through another surface (`via`)
    via: str | None = None  # that surface: "ui" (the dashboard)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.name,
            "counter": self.counter,
            "channel": self.channel,
            "kind": self.kind,
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
            "commit": self.commit,
            "gates": list(self.gates),
            "request": self.request,
            "incident": self.incident,
            "alerts": list(self.alerts),
            "weight": self.weight,
            "previous_weight": self.previous_weight,
        }
        if self.evidence is not None:  # only then: other events' JSON stays as it was
            out["evidence"] = self.evidence
        if self.requested_by is not None:  # likewise: only events a person asked for
            out["requested_by"] = self.requested_by
            out["via"] = self.via
        return out

    def to_row(self) -> list[Any]:
        """Every field in order, as the index (mvctl.registry.index) keeps it."""
        return [
            self.name,
            self.counter,
            self.channel,
            self.kind,
            self.version,
            self.previous,
            self.reason,
            self.actor,
            self.time,
            self.commit,
            self.object,
            list(self.gates),
            self.request,
            self.incident,
            list(self.alerts),
            self.weight,
            self.previous_weight,
            self.evidence,
            self.requested_by,
            self.via,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> Event:
        (name, counter, channel, kind, version, previous, reason, actor, time, commit, obj) = row[
            :11
        ]
        gates, request, incident, alerts, weight, previous_weight = row[11:17]
        evidence, requested_by, via = row[17:]
        return cls(
            name,
            counter,
            channel,
            kind,
            version,
            previous,
            reason,
            actor,
            time,
            commit,
            obj,
            tuple(gates),
            request,
            incident,
            tuple(alerts),
            weight,
            previous_weight,
            evidence,
            requested_by,
            via,
        )

    @property
    def moves(self) -> bool:
        """Whether the event moved the channel (a weight change keeps its version)."""
        return self.kind != "weight"


_EVENT_ROWS = index.rows_of(Event, Event.to_row, Event.from_row)


@dataclass(frozen=True)
class ModelState:
    model: str
    tags: ModelTags
    events: tuple[Event, ...]  # every channel, by counter
    _versions_at: dict[str, str] = field(default_factory=dict, repr=False)
    records: tuple[TagRecord, ...] = field(default=(), repr=False)  # every tag, as read
    # A state read from one channel's alias (mvctl.channels.quick): ``events`` are that
    # channel's newest only, ``tags`` the versions they name; ``next_free`` is the model's
    # next counter and ``known`` the channels it has events on, as probed.
    partial: bool = False
    next_free: int = 0
    known: frozenset[str] = frozenset()

    def version_at(self, commit: str) -> str | None:
        return self._versions_at.get(commit)

    def holder(self, channel: str) -> str | None:
        alias = self.tags.aliases.get(channel)
        return self.version_at(alias.commit) if alias else None

    def alias(self, channel: str) -> TagRecord | None:
        return self.tags.aliases.get(channel)

    def weight(self, channel: str) -> float | None:
        """The share of traffic the alias gives ``channel`` (None: not a weighted channel)."""
        alias = self.tags.aliases.get(channel)
        if alias is None:
            return None
        return tags.AliasBody.from_dict(tags.parse_message(alias.message)[1]).weight

    def channel_events(self, channel: str) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.channel == channel)

    def stopped(self, channel: str) -> Event | None:
        """The stop that emptied ``channel``, when its newest event is one."""
        events = self.channel_events(channel)
        return events[-1] if events and events[-1].kind == "stop" else None

    def arrival(self, channel: str, event: Event) -> Event:
        """The event that brought ``event``'s version to ``channel`` for the tenure ``event``
        belongs to: weight changes after it are the same tenure, not a new arrival."""
        events = self.channel_events(channel)
        if event not in events:
            return event
        i = events.index(event)
        while (
            i > 0
            and events[i].kind == "weight"
            and events[i - 1].kind != "stop"
            and events[i - 1].version == events[i].version
        ):
            i -= 1
        return events[i]

    def next_counter(self) -> int:
        return max(max((e.counter for e in self.events), default=0) + 1, self.next_free)

    def known_channels(self) -> frozenset[str]:
        """The channels the model has events on (as far as this state read)."""
        return frozenset(e.channel for e in self.events) | self.known

    def is_live(self, version: str) -> bool:
        return version in self.tags.versions and version not in self.tags.deregistered

    def standing(self, channel: str) -> dict[str, Standing]:
        """Gold or bad, per version, on ``channel`` (absent: neither)."""
        events = self.channel_events(channel)
        # Events keep their counter order; a gold mark slots in after the events before it.
        timeline: list[tuple[float, Event | str]] = [(float(i), e) for i, e in enumerate(events)]
        times = [time_of(e.time) for e in events] if self.tags.gold else []
        for version, record in self.tags.gold.items():
            marked = time_of(record.date)
            timeline.append((sum(1 for t in times if t <= marked) - 0.5, version))
        timeline.sort(key=lambda item: item[0])
        result: dict[str, Standing] = {}
        held: str | None = None
        for _, item in timeline:
            if isinstance(item, str):
                result[item] = "gold"
                continue
            if item.kind == "stop":
                held = None  # emptied: its version was neither replaced nor rolled back from
                continue
            if item.kind == "weight" and item.version == held:
                continue  # the same version, another share of traffic
            if held is not None and held != item.version:
                result[held] = "bad" if item.kind == "rollback" else "gold"
            # Promoting a version again is a human's word that it is fit to serve.
            if (
                item.kind not in ("rollback", "weight")
                and item.version
                and result.get(item.version) == "bad"
            ):
                del result[item.version]
            held = item.version
        return result

    def held_before(self, channel: str) -> set[str]:
        """Versions ``channel`` served at some point, other than the one it holds now."""
        current = self.holder(channel)
        return {
            e.version
            for e in self.channel_events(channel)
            if e.version is not None and e.version != current
        }

    def rollback_target(self, channel: str) -> tuple[str | None, str]:
        """The last gold version the channel held before its current one, and why."""
        current = self.holder(channel)
        standing = self.standing(channel)
        seen: set[str] = set()
        skipped: list[str] = []
        for event in reversed(self.channel_events(channel)):
            version = event.version
            if version is None or version == current or version in seen:
                continue
            seen.add(version)
            if not self.is_live(version):
                skipped.append(f"{version} is deregistered")
            elif standing.get(version) == "bad":
                skipped.append(f"{version} was rolled back away from")
            elif standing.get(version) == "gold":
                return version, f"last gold version {channel} held before {current}"
            else:
                skipped.append(f"{version} is not gold")
        why = "; ".join(skipped) if skipped else f"{channel} held no other version"
        return None, why


def time_of(text: str) -> datetime:
    """A tag's or event's time; the earliest there is when it reads as none."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


_WRITTEN_KINDS: dict[str, EventKind] = {k: k for k in ("promote", "rollback", "override", "weight")}


def event_of(record: TagRecord, versions_at: dict[str, str]) -> Event | None:
    """The event an event (or unassignment) tag records; None for any other tag."""
    parsed = tags.parse(record.name)
    if parsed is None or not parsed.channel_event:
        return None
    body = tags.EventBody.from_dict(tags.parse_message(record.message)[1])
    # The tag's name says what it is: an unassignment is a stop whoever wrote it (`gto
    # unassign` too), and a body claiming "stop" does not make an assignment one.
    kind: EventKind = (
        "stop" if parsed.kind == "unassign" else _WRITTEN_KINDS.get(body.kind, "assign")
    )
    return Event(
        name=record.name,
        counter=parsed.counter,
        channel=parsed.channel,
        kind=kind,
        version=versions_at.get(record.commit),
        previous=body.previous,
        reason=body.reason,
        actor=body.actor or record.tagger,
        time=body.time or record.date,
        commit=record.commit,
        object=record.object,
        gates=body.gates,
        request=body.request,
        incident=body.incident,
        alerts=body.alerts,
        weight=body.weight,
        previous_weight=body.previous_weight,
        evidence=body.evidence,
        requested_by=body.requested_by,
        via=body.via,
    )


def _patterns(model: str) -> list[str]:
    return [tags.version_glob(model).replace("@v*", "@*"), tags.event_glob(model)]


def load(git: GitRepo, model: str) -> ModelState:
    """Every tag of ``model`` from one for-each-ref."""
    return _state(model, git.tags(*_patterns(model)))


def from_records(model: str, records: list[TagRecord]) -> ModelState:
    """``model``'s state from its tags as listed already (those :func:`load` reads)."""
    return _state(model, records)


def _state(model: str, records: list[TagRecord]) -> ModelState:
    model_tags = group_tags(records).get(model) or ModelTags({}, frozenset(), {})
    versions_at = {r.commit: v for v, r in model_tags.versions.items()}
    events = [e for r in records if (e := event_of(r, versions_at)) is not None]
    events.sort(key=lambda e: e.counter)
    return ModelState(model, model_tags, tuple(events), versions_at, tuple(records))


def require_version(state: ModelState, version: str) -> None:
    """Refuse a version the model does not have, or one that was deregistered."""
    Version.parse(version)
    if version not in state.tags.versions:
        raise unknown_version(state.model, version)
    if version in state.tags.deregistered:
        raise deregistered(state.model, version, pruned=was_pruned(state, version))


def was_pruned(state: ModelState, version: str) -> bool:
    """Whether ``version``'s deregistration tag says ``mvctl gc`` pruned its artifacts."""
    name = tags.deregister_tag(state.model, version)
    for record in state.records:
        if record.name == name:
            body = tags.MarkBody.from_dict(tags.parse_message(record.message)[1])
            return body.pruned
    return False


def history(root: Path, model: str, channel: str | None = None) -> list[Event]:
    check_model(model)
    if channel is not None:
        check_channel(channel)

    def build(records: list[TagRecord]) -> list[Event]:
        state = _state(model, records)
        if not state.tags.versions:
            raise unknown_model(model)
        return list(state.events)

    git = open_registry(root)
    events = index.cached(git, "history", model, _patterns(model), build, _EVENT_ROWS)
    return [e for e in events if channel is None or e.channel == channel]
