"""Writing a channel move: an assignment event ``MODEL#CHANNEL#N`` and the alias
``MODEL@CHANNEL``, locally in one ``git update-ref --stdin`` transaction (the event is created
only if its name is free, the alias moves only if it still points where we read it) and, when
publishing, in one atomic push leased on the remote's alias, together with everything of the
model still pending. The loser of any race gets ConflictError (exit 4) and nothing it wrote
remains. A stop is the same move with an unassignment ``MODEL#CHANNEL!#N`` for its event and
the alias deleted (``delete REF OLD`` in the transaction; ``:REF`` leased on OLD in the push).

Decisions are taken on the remote's state as fetched just now: ``open_channel`` fetches the
model's tags first, so a stale clone or a restarted replica decides like everyone else, and
the push is leased on exactly what it fetched. A move interrupted between its local write and
its push is *pending*; the retry publishes it (``complete``) instead of taking another step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels import state as channels
from mvctl.channels.gates import GateReport
from mvctl.channels.quick import quick_state
from mvctl.common import interrupts
from mvctl.errors import (
    ConflictError,
    Interrupted,
    MvctlError,
    PolicyError,
    unknown_channel,
    unknown_model,
)
from mvctl.formats import config, tags
from mvctl.formats.names import check_channel, check_model
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult, sync_git

if TYPE_CHECKING:
    from mvctl.publishing import pointers

MoveKind = Literal["promote", "rollback", "override", "weight", "stop"]
MOVE_KINDS: tuple[MoveKind, ...] = ("promote", "rollback", "override", "weight", "stop")


@dataclass(frozen=True)
class ChannelMove:
    model: str
    channel: str
    version: str
    previous: str | None
    kind: MoveKind
    event: str  # the event tag written (or that would be written, or completed)
    reason: str
    actor: str
    time: str
    gates: GateReport | None = None
    request: str | None = None
    pushed: bool = False
    dry_run: bool = False
    changed: bool = True  # False when nothing moved (already there, or a retry of a done move)
    incident: str | None = None
    remote: str | None = None  # where it was (or will be) published; None: kept local
    completed: bool = False  # this call published an earlier, interrupted move
    published: tuple[str, ...] = ()  # every tag the push carried
    note: str = ""  # why nothing moved, or what else happened
    alerts: tuple[str, ...] = ()  # alert instances an automatic rollback acts on
    weight: float | None = None  # the channel's share of traffic after the move (weighted)
    previous_weight: float | None = None  # ... and before it
    evidence: dict[str, Any] | None = None  # the canary analysis that decided it (if any)
    requested_by: str | None = None  # the person who asked for it through `via` (the UI)
    via: str | None = None
    pointers: pointers.PointerReport | None = None  # pointer files written after the push
    selected: tuple[str, ...] = ()  # promote --select: the selectors that chose the version

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "previous": self.previous,
            "kind": self.kind,
            "event": self.event,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
            "gates": self.gates.to_dict() if self.gates else None,
            "request": self.request,
            "incident": self.incident,
            "pushed": self.pushed,
            "remote": self.remote,
            "completed": self.completed,
            "published": list(self.published),
            "dry_run": self.dry_run,
            "changed": self.changed,
            "note": self.note,
            "alerts": list(self.alerts),
            "weight": self.weight,
            "previous_weight": self.previous_weight,
        }
        if self.evidence is not None:  # only then: other moves' JSON stays as it was
            out["evidence"] = self.evidence
        if self.requested_by is not None:
            out["requested_by"] = self.requested_by
            out["via"] = self.via
        if self.pointers is not None:  # only with `pointers: true`
            out["pointers"] = self.pointers.to_dict()
        if self.selected:  # only for promote --select
            out["selected"] = list(self.selected)
        return out


@dataclass(frozen=True)
class Context:
    git: GitRepo
    state: channels.ModelState
    remote: str | None  # where moves are published; None keeps them local
    synced: SyncResult | None  # the remote's tags, fetched just now

    def config(self) -> config.RegistryConfig:
        return config.load(self.git.root)

    def unpublished(self, channel: str) -> list[channels.Event]:
        """``channel``'s events the remote lacks, oldest first (none when keeping local)."""
        if self.synced is None:
            return []
        known = self.synced.remote_objects
        return [e for e in self.state.channel_events(channel) if e.name not in known]

    def alias_pending(self, channel: str) -> bool:
        if self.synced is None:
            return False
        alias = self.state.alias(channel)
        theirs = self.synced.remote_objects.get(tags.alias_tag(self.state.model, channel))
        return alias is not None and alias.object != theirs

    def stop_pending(self, channel: str) -> bool:
        """The channel was stopped here and the remote does not have all of it yet (the
        unassignment, or the alias's deletion)."""
        stop = self.state.stopped(channel)
        if self.synced is None or stop is None:
            return False
        known = self.synced.remote_objects
        return stop.name not in known or tags.alias_tag(self.state.model, channel) in known

    def published_alias(self, channel: str) -> TagRecord | None:
        """The alias as the fleet sees it: the remote's when publishing, else the local one."""
        if self.synced is None:
            return self.state.alias(channel)
        return self.synced.remote_records.get(tags.alias_tag(self.state.model, channel))


def known_channel(git: GitRepo, channel: str) -> config.RegistryConfig:
    cfg = config.load(git.root)
    if channel not in cfg.channels:
        raise unknown_channel(channel, cfg.channels)
    return cfg


def open_channel(
    root: Path,
    model: str,
    channel: str,
    push: bool | None,
    remote: str,
    *,
    need_config: bool = True,
    dry_run: bool = False,
    quick: Sequence[str] | None = None,
) -> Context:
    """The channel's context: its remote's tags fetched first when publishing. ``quick``
    (the versions the move names) reads a local move's state from the channel's alias
    chain when that checks out (mvctl.channels.quick), else every tag of the model."""
    check_model(model)
    check_channel(channel)
    git = GitRepo.open(root)
    if need_config:
        known_channel(git, channel)
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where and not dry_run else None
    state = None
    if quick is not None and synced is None:
        state = quick_state(git, model, channel, quick)
    if state is None:
        state = channels.load(git, model)
    if not state.tags.versions:
        raise unknown_model(model)
    return Context(git, state, where, synced)


def full(ctx: Context) -> Context:
    """``ctx`` with every tag of the model read: for a decision a quick state cannot take."""
    if not ctx.state.partial:
        return ctx
    return replace(ctx, state=channels.load(ctx.git, ctx.state.model))


def now(git: GitRepo) -> str:
    """The time of the acting identity, as git records it on the tags (GIT_COMMITTER_DATE
    included), so event bodies and tag dates never disagree."""
    stamp = git.committer().rsplit(" ", 2)[1]
    when = datetime.fromtimestamp(int(stamp), UTC) if stamp.isdigit() else datetime.now(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


_TITLES = {
    "promote": "Promote {m.model} {m.version} to {m.channel}",
    "override": "Promote {m.model} {m.version} to {m.channel} (gates overridden)",
    "rollback": "Roll back {m.model} {m.channel} from {m.previous} to {m.version}",
    "weight": "Set {m.model} {m.channel} ({m.version}) to {weight}% of traffic",
    "stop": "Stop {m.model} {m.channel} ({m.version})",
}


def _title(move: ChannelMove) -> str:
    weight = tags.weight_text(move.weight) if move.weight is not None else "?"
    title = _TITLES[move.kind].format(m=move, weight=weight)
    if move.weight is not None and move.kind in ("promote", "override", "rollback"):
        title += f" at {weight}%"
    if move.requested_by is not None:
        title += f" (requested by {move.requested_by} via {move.via or '?'})"
    return title


def _tag_objects(ctx: Context, move: ChannelMove) -> tuple[str, str | None]:
    """The event's tag object and the alias's (None for a stop: the alias goes)."""
    commit = ctx.state.tags.versions[move.version].commit
    counter = tags.parse(move.event)
    if counter is None:  # built by tags.event_tag / unassign_tag: a counter past 18 digits
        raise PolicyError(
            f"{move.model}'s event counter is used up: the next event would be {move.event},"
            " and a tag name's counter holds at most 18 digits",
            hint="an event numbered that high was pushed by hand (`mvctl check` lists the events)",
        )
    body = tags.EventBody(
        kind=move.kind,
        model=move.model,
        channel=move.channel,
        version=move.version,
        previous=move.previous,
        counter=counter.counter,
        reason=move.reason,
        actor=move.actor,
        time=move.time,
        gates=tuple(r.to_dict() for r in move.gates.results) if move.gates else (),
        request=move.request,
        incident=move.incident,
        alerts=move.alerts,
        weight=move.weight,
        previous_weight=move.previous_weight,
        evidence=move.evidence,
        requested_by=move.requested_by,
        via=move.via,
    )
    event_message = tags.format_message(_title(move), body.to_dict())
    if move.kind == "stop":
        [event_obj] = ctx.git.make_tags([(move.event, commit, event_message)])
        return event_obj, None
    alias = tags.alias_tag(move.model, move.channel)
    chain = [e.name for e in ctx.state.channel_events(move.channel)]
    chain = [*chain[-(tags.CHAIN_LENGTH - 1) :], move.event]
    alias_body = tags.AliasBody(
        move.model,
        move.channel,
        move.version,
        event=move.event,
        counter=counter.counter,
        weight=move.weight,
        chain=tuple(chain),
        next=max(counter.counter + 1, ctx.state.next_counter()),
        channels=tuple(sorted(ctx.state.known_channels() | {move.channel})),
    )
    alias_message = tags.format_message(f"{alias} -> {move.version}", alias_body.to_dict())
    event_obj, alias_obj = ctx.git.make_tags(
        [(move.event, commit, event_message), (alias, commit, alias_message)]
    )
    return event_obj, alias_obj


def write(ctx: Context, move: ChannelMove) -> ChannelMove:
    """The event and the alias, locally by CAS and, when publishing, by an atomic leased push
    that also carries everything of the model still pending. Interrupted (SIGINT/SIGTERM) at
    any point, it leaves the old state or the new one on both sides, and says which."""
    git = ctx.git
    alias = tags.alias_tag(move.model, move.channel)
    event_obj, alias_obj = _tag_objects(ctx, move)
    old = ctx.state.alias(move.channel)
    alias_cmd, undo_alias = _alias_commands(alias, alias_obj, old)
    undo = [f"delete refs/tags/{move.event} {event_obj}", undo_alias]
    move = replace(move, remote=ctx.remote)
    skipped = _refuse_own_conflicts(ctx, move.channel)
    # Undo only what this call wrote: a racer's byte-identical tags (the same move, made in
    # the same second) look exactly like ours, and are theirs to keep.
    wrote: list[str] = []
    try:
        git.update_refs([f"create refs/tags/{move.event} {event_obj}", alias_cmd], what=alias)
        wrote = undo
        if ctx.remote is None or ctx.synced is None:
            interrupts.settle()
            return move
        found = publish.pending_objects(_model_objects(ctx), ctx.synced)
        try:
            names = publish.push_refs(git, found, skip_conflicted=True)
        except publish.Unsettled as unsettled:
            names = publish.settle(unsettled, lambda: _undo(git, undo, alias))
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except KeyboardInterrupt:
        raise _interrupted(ctx, move, alias, event_obj, wrote) from None
    except BaseException:
        _undo(git, wrote, alias)
        raise
    note = "; ".join(n for n in (move.note, skipped) if n)
    report = _pointers_after(git, names)  # git first: only now may a pointer say so
    return replace(move, pushed=True, published=tuple(names), note=note, pointers=report)


def _pointers_after(git: GitRepo, names: list[str]) -> pointers.PointerReport | None:
    """mvctl.publishing.pointers.after_push, imported only once a push landed (the pointer
    store's modules are ~6 ms of every move's start-up otherwise)."""
    from mvctl.publishing import pointers

    return pointers.after_push(git, names)


def _alias_commands(alias: str, new: str | None, old: TagRecord | None) -> tuple[str, str]:
    """The alias's compare-and-swap and its undo: moved (or created) to ``new``, or, for a
    stop (``new`` None), deleted only if it still is ``old``."""
    ref = f"refs/tags/{alias}"
    if new is None:
        assert old is not None  # noqa: S101 - a stop is decided on a channel that holds one
        return f"delete {ref} {old.object}", f"create {ref} {old.object}"
    if old is None:
        return f"create {ref} {new}", f"delete {ref} {new}"
    return f"update {ref} {new} {old.object}", f"update {ref} {old.object} {new}"


def _refuse_own_conflicts(ctx: Context, channel: str) -> str:
    """A move cannot be published over a conflict on its own channel (refused, exit 4);
    conflicts on other channels are left out of the push, and named in the note."""
    if ctx.synced is None:
        return ""
    found = publish.pending(list(ctx.state.records), ctx.synced)
    own = [n for n in found.conflicts if (p := tags.parse(n)) is not None and p.channel == channel]
    if own:
        publish.refuse_conflicts(replace(found, conflicts=tuple(own)))
    if not found.conflicts:
        return ""
    return (
        f"not published: {', '.join(found.conflicts)} (conflicting with {ctx.remote}'s; "
        "'mvctl sync --discard-local' drops them)"
    )


def _undo(git: GitRepo, undo: list[str], alias: str) -> None:
    """Take the local event and alias back; nothing to do when they were never written."""
    if not undo:
        return
    with interrupts.shielded(), contextlib.suppress(ConflictError):
        git.update_refs(undo, what=alias)


def _model_objects(ctx: Context) -> dict[str, str]:
    """Every tag of the model by name, to its object (what is pending is decided on these):
    one listing of names and objects, no tag object opened."""
    model = ctx.state.model
    found = ctx.git.ref_objects(f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*")
    return dict(found)


def _interrupted(
    ctx: Context, move: ChannelMove, alias: str, event_obj: str, undo: list[str]
) -> Interrupted:
    """SIGINT/SIGTERM during the move: find out whether the push landed, and leave both sides
    in the same state (the new one if it landed, the old one if not). The event is the
    witness (the push is atomic): for a stop the alias is gone either way."""
    remote = ctx.remote
    theirs: dict[str, str] | None = {}
    ref = f"refs/tags/{move.event}"
    with interrupts.shielded():
        if remote is not None:
            try:
                theirs = ctx.git.remote_objects(remote, [ref], timeout=15)
            except MvctlError:
                theirs = None
        if remote is not None and theirs is not None and theirs.get(ref) == event_obj:
            now_is = "stopped" if move.kind == "stop" else move.version
            return Interrupted(
                f"interrupted after the push landed: {move.model}@{move.channel} is "
                f"{now_is} locally and on {remote} ({move.event})",
                hint="nothing to do: the move is complete",
            )
        _undo(ctx.git, undo, alias)
    if theirs is None:
        return Interrupted(
            f"interrupted during the push; {remote} did not answer, so it is not known "
            f"whether {move.event} landed there (the local move was undone)",
            hint=f"run 'mvctl status {move.model}' to see, then retry: a retry never takes "
            "a further step",
        )
    where = f"locally or on {remote}" if remote else "locally"
    return Interrupted(
        f"interrupted before the move was made: nothing changed, {where}",
        hint="run the command again",
    )


def complete(ctx: Context, channel: str, note: str) -> ChannelMove:
    """Publish ``channel``'s pending move (a move whose push never happened) as it is."""
    assert ctx.remote is not None and ctx.synced is not None  # noqa: S101 - publishing only
    events = ctx.unpublished(channel)
    state = ctx.state
    event = events[-1] if events else state.channel_events(channel)[-1]
    version = state.holder(channel) or event.version or "?"
    _refuse_own_conflicts(ctx, channel)
    found = publish.pending(list(state.records), ctx.synced)
    try:
        names = publish.push_refs(ctx.git, found, skip_conflicted=True)
        interrupts.settle()
    except KeyboardInterrupt:
        with interrupts.shielded():
            landed = _published_now(ctx, channel, event)
        if landed:
            raise Interrupted(
                f"interrupted after the push landed: {event.name} is published on {ctx.remote}",
                hint="nothing to do: the move is complete",
            ) from None
        raise Interrupted(
            f"interrupted: {event.name} is still only local ({ctx.remote} did not take it)",
            hint="run the command again: it publishes the move, never a further one",
        ) from None
    return replace(
        move_of(ctx, channel, event, note),
        version=version,
        pushed=True,
        completed=True,
        published=tuple(names),
        pointers=_pointers_after(ctx.git, names),
    )


def _published_now(ctx: Context, channel: str, event: channels.Event) -> bool:
    """Whether the remote now has ``channel`` as it is here: its alias, or, stopped, the
    stop and no alias (False also when the remote cannot be asked)."""
    assert ctx.remote is not None  # noqa: S101 - publishing only
    alias = ctx.state.alias(channel)
    alias_ref = f"refs/tags/{tags.alias_tag(ctx.state.model, channel)}"
    event_ref = f"refs/tags/{event.name}"
    try:
        theirs = ctx.git.remote_objects(ctx.remote, [alias_ref, event_ref], timeout=15)
    except MvctlError:
        return False
    if alias is not None:
        return theirs.get(alias_ref) == alias.object
    return theirs.get(event_ref) == event.object and alias_ref not in theirs


def move_of(ctx: Context, channel: str, event: channels.Event, note: str) -> ChannelMove:
    """The move an existing event made, as the answer to a command that made none itself
    (a retry that found it done, or published it)."""
    return ChannelMove(
        model=ctx.state.model,
        channel=channel,
        version=ctx.state.holder(channel) or event.version or "?",
        previous=event.previous,
        kind=_move_kind(event.kind),
        event=event.name,
        reason=event.reason,
        actor=event.actor,
        time=event.time,
        incident=event.incident,
        request=event.request,
        remote=ctx.remote,
        note=note,
        weight=event.weight,
        previous_weight=event.previous_weight,
    )


def _move_kind(kind: str) -> MoveKind:
    for known in MOVE_KINDS:
        if known == kind:
            return known
    return "promote"  # an assignment another tool wrote
