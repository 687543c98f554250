"""Rolling a channel back: the panic button.

How a move is written and published is mvctl.channels.moves; this module decides which
rollback a command means, idempotently by intent, never by local state alone: a retry of an
interrupted rollback completes it (publishes it as it is) instead of taking a further step,
a plain rollback right after another is a retry of it, an automatic one acts once per
release it is about, and ``--to`` only goes back. A weight change is no move: it neither
starts nor ends the retry window. A stopped channel holds nothing to roll back; a rollback
of a weighted channel keeps its weight.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.moves import ChannelMove, now
from mvctl.errors import (
    ConflictError,
    PolicyError,
    UsageError,
)
from mvctl.formats import tags
from mvctl.formats.names import check_text

# A plain rollback this soon after the channel's last rollback is taken as a retry of it:
# the panic button never rolls back further than asked (say --to VERSION to go further).
RETRY_WINDOW_S = 600
CLOCK_SKEW_S = 60  # a last rollback stamped further ahead than this is no reason to wait


def _seconds_between(then: str, until: str) -> float:
    try:
        start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (then, until))
    except ValueError:
        return float("inf")
    if start.tzinfo is None or end.tzinfo is None:
        return float("inf")
    return (end - start).total_seconds()


def _retry_of(ctx: moves.Context, channel: str, incident: str | None) -> ChannelMove | None:
    """When a plain rollback is a retry of one already made, the answer to it: publish the
    earlier one if the remote does not have it, else nothing. None: it is a new rollback.
    A plain rollback is about what the fleet serves, so a channel whose local alias is ahead
    of the remote's by anything but a rollback is refused: that decision is the user's."""
    state = ctx.state
    pending = ctx.unpublished(channel)
    events = state.channel_events(channel)
    last = events[-1] if events else None
    moved = [e for e in events if e.moves]
    last_move = moved[-1] if moved else None  # weight changes keep the version: not moves
    if incident is not None:
        done = [e for e in events if e.incident == incident]
        if done and (done[-1] in pending or (ctx.alias_pending(channel) and done[-1] == last)):
            return moves.complete(ctx, channel, f"published the pending rollback {done[-1].name}")
        if done:
            return _no_move(ctx, channel, done[-1], f"incident already handled by {done[-1].name}")
    elif ctx.alias_pending(channel) and last is not None and last.kind == "rollback":
        # Its push never happened, or the remote's alias was put back since: either way the
        # fleet does not have this rollback; publishing it is the retry.
        return moves.complete(ctx, channel, f"published the pending rollback {last.name}")
    if ctx.alias_pending(channel):
        _refuse_unpublished(ctx, channel, pending)
    if incident is None and last_move is not None and last_move.kind == "rollback":
        age = _seconds_between(last_move.time, now(ctx.git))
        if -CLOCK_SKEW_S <= age < RETRY_WINDOW_S:
            return _no_move(
                ctx,
                channel,
                last_move,
                f"{state.model}@{channel} was rolled back from {last_move.previous} to "
                f"{last_move.version} {max(age, 0):.0f} s ago ({last_move.name}); taken as a "
                "retry: nothing done. To roll back further, say --to VERSION",
            )
    return None


def _refuse_unpublished(ctx: moves.Context, channel: str, pending: list[channels.Event]) -> None:
    alias = ctx.published_alias(channel)
    fleet = ctx.state.version_at(alias.commit) if alias else None
    here = ctx.state.holder(channel)
    made = ", ".join(f"{e.kind} {e.version} ({e.name})" for e in pending) or "an alias move"
    raise PolicyError(
        f"{ctx.state.model}@{channel} is {here} here but {fleet or 'nothing'} on {ctx.remote}: "
        f"this clone has unpublished moves ({made}), so a rollback from here would not be "
        "about what the fleet serves",
        hint="drop them and roll back the fleet: 'mvctl sync --discard-local', then the "
        "rollback again; or publish them first with 'mvctl push'",
    )


def _no_move(ctx: moves.Context, channel: str, event: channels.Event, note: str) -> ChannelMove:
    return replace(moves.move_of(ctx, channel, event, note), kind="rollback", changed=False)


def _explicit_target(state: channels.ModelState, channel: str, to: str) -> None:
    """``rollback --to`` goes back: to a version the channel served before and that was not
    rolled back away from there. Anything else (a version it never served, or undoing a
    rollback) is a forward move: a promotion, with its gates, which clears a bad mark."""
    channels.require_version(state, to)
    refusal = _target_refusal(state, channel, to)
    if refusal is not None:
        raise refusal


def _target_refusal(state: channels.ModelState, channel: str, to: str) -> PolicyError | None:
    """Why ``rollback --to`` refuses ``to`` (a live version), or None: it would go there."""
    model, current = state.model, state.holder(channel)
    if to == current:
        return None
    promote_hint = f"run 'mvctl promote {model} {to} --to {channel}' (gates run; --force --reason)"
    if to not in state.held_before(channel):
        return PolicyError(
            f"{model}@{channel} never served {to}: a rollback returns to a version the "
            "channel served before",
            hint=promote_hint,
        )
    if state.standing(channel).get(to) == "bad":
        return PolicyError(
            f"{model}@{channel} was rolled back away from {to}: going back to it is a "
            "forward move, a promotion (which clears its bad mark)",
            hint=promote_hint,
        )
    return None


def trusted_target(state: channels.ModelState, channel: str, found: str) -> bool:
    """Whether ``found``, the target a partial state's walk gave, is the one every event
    gives. Within the chain a version's standing is exact when a move ended its newest
    tenure there (that move makes it gold or bad, whatever came before; gold marks are read
    by name); it is unknown only for a version left by a stop or never left. So the walk
    is exact when every version it passed before ``found`` was passed for a reason the
    chain proves (deregistered, or rolled back away from), and ``found`` is gold there."""
    current = state.holder(channel)
    standing = state.standing(channel)
    seen: set[str] = set()
    events = state.channel_events(channel)
    for i in range(len(events) - 1, -1, -1):
        version = events[i].version
        if version is None or version == current or version in seen:
            continue
        seen.add(version)
        left = next(
            (e for e in events[i + 1 :] if e.kind == "stop" or (e.moves and e.version != version)),
            None,
        )
        if left is None or left.kind == "stop":
            return False  # its standing comes from before the chain
        if version == found:
            return standing.get(version) == "gold"
        if state.is_live(version) and standing.get(version) != "bad":
            return False
    return False


def rollback_targets(state: channels.ModelState, channel: str) -> tuple[str, ...]:
    """The versions ``rollback --to`` would move ``channel`` to (its current one aside),
    newest tenure first: the very check ``--to`` runs, so a list offered to a person (the
    dashboard's) and the rollback can never disagree. Empty for a stopped channel."""
    if state.stopped(channel) is not None:
        return ()
    current = state.holder(channel)
    found: dict[str, None] = {}
    for event in reversed(state.channel_events(channel)):
        version = event.version
        if version is None or version == current or version in found:
            continue
        if state.is_live(version) and _target_refusal(state, channel, version) is None:
            found[version] = None
    return tuple(found)


def rollback(
    root: Path,
    model: str,
    channel: str = "production",
    *,
    reason: str,
    to: str | None = None,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    incident: str | None = None,
    requested_by: str | None = None,
    via: str | None = None,
    expect: str | None = None,
) -> ChannelMove:
    """Move ``channel`` back: to ``to``, or to the last gold version it held before. Never
    runs gates and never waits for review: the panic button must work. ``incident`` names
    what caused it (recorded: the same incident never rolls back twice). A retry of an
    interrupted rollback publishes it; a plain rollback right after another is a retry.
    ``requested_by`` (with ``via``, e.g. ``"ui"``) records the person who asked for it
    through another surface than the command line (the git identity stays the actor).
    ``expect``: the version the caller saw the channel hold; if the freshly fetched channel
    holds another, the move asked for is no longer the one that would happen (ConflictError,
    nothing written)."""
    check_text(reason, "--reason")
    if requested_by is not None:
        check_text(requested_by, "the requester's name", limit=100)
    if via is not None:
        check_text(via, "via", limit=20)
    if not reason.strip():
        raise UsageError("a rollback needs --reason: it is recorded in the channel history")
    # The panic button reads no config on its way: a channel with an alias is a channel.
    # A plain rollback reads the channel's alias chain, not every event (mvctl.channels.quick).
    quick = () if to is None and incident is None else None
    ctx = moves.open_channel(
        root, model, channel, push, remote, need_config=False, dry_run=dry_run, quick=quick
    )
    return rollback_on(
        ctx,
        channel,
        reason=reason,
        to=to,
        dry_run=dry_run,
        incident=incident,
        requested_by=requested_by,
        via=via,
        expect=expect,
    )


def rollback_on(
    ctx: moves.Context,
    channel: str,
    *,
    reason: str,
    to: str | None = None,
    dry_run: bool = False,
    incident: str | None = None,
    alerts: tuple[str, ...] = (),
    requested_by: str | None = None,
    via: str | None = None,
    expect: str | None = None,
) -> ChannelMove:
    """``rollback`` on a context the caller opened (and fetched) already; ``alerts`` names
    the alert instances it acts on (recorded, so a repeat of them never acts again)."""
    if ctx.state.partial and (
        to is not None or incident is not None or not any(e.moves for e in ctx.state.events)
    ):
        ctx = moves.full(ctx)  # decisions a channel's newest events alone cannot take
    state = ctx.state
    model = state.model
    current = state.holder(channel)
    if expect is not None and current != expect:
        raise ConflictError(
            f"{model}@{channel} holds {current or 'no version'} now, not {expect}: it moved "
            "since you looked: nothing done",
            hint="look at the channel again, then decide",
        )
    stopped = state.stopped(channel)
    if stopped is not None:
        raise PolicyError(
            f"{model}@{channel} was stopped ({stopped.name}) and holds no version: nothing to "
            "roll back",
            hint=f"to put a version on {channel} again, promote it (a new tenure)",
        )
    if current is None and not (to is not None and state.held_before(channel)):
        moves.known_channel(ctx.git, channel)
        raise PolicyError(
            f"{model}@{channel} holds no version: nothing to roll back",
            hint=f"to put a version on {channel}, promote it",
        )
    if to is not None:
        _explicit_target(state, channel, to)
        if to == current:
            if ctx.alias_pending(channel):
                return moves.complete(ctx, channel, f"published the pending move to {to}")
            target = to
        else:
            target = to
    else:
        retried = _retry_of(ctx, channel, incident)
        if retried is not None:
            return retried
        found, why = state.rollback_target(channel)
        if state.partial and (found is None or not trusted_target(state, channel, found)):
            return rollback_on(
                moves.full(ctx),
                channel,
                reason=reason,
                dry_run=dry_run,
                alerts=alerts,
                requested_by=requested_by,
                via=via,
            )
        if found is None:
            raise PolicyError(
                f"no version to roll {model}@{channel} back to: {why}",
                hint="choose one with --to VERSION",
            )
        target = found
    move = ChannelMove(
        model=model,
        channel=channel,
        version=target,
        previous=current,
        kind="rollback",
        event=tags.event_tag(model, channel, state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=now(ctx.git),
        dry_run=dry_run,
        changed=target != current,
        incident=incident,
        remote=ctx.remote,
        alerts=alerts,
        weight=state.weight(channel),  # the version changes, the share of traffic does not
        requested_by=requested_by,
        via=via,
    )
    if dry_run or target == current:
        return move  # already there: idempotent, so a repeated alert or retry is harmless
    return moves.write(ctx, move)
