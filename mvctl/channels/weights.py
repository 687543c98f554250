"""Weighted channels: a canary's share of traffic (``mvctl canary weight``) and taking a
channel off (``mvctl canary stop``; ``mvctl unassign``, GTO's unassign, for any channel).

A weight change is an event ``MODEL#CHANNEL#N`` of kind ``weight`` on the commit the channel
already holds, and a new alias object there (same commit, new weight in its body): serving
hosts see the new share on their next poll, GTO sees one more assignment of the same version.
A stop is GTO's unassignment ``MODEL#CHANNEL!#N`` on that commit, and the alias is deleted:
the channel is empty until a promotion starts a new tenure.

How both are written and published is mvctl.channels.moves (one transaction, one leased
push); this module decides which move a command means. Setting the weight the channel has is
nothing to do, unless that change was never published (then it is published now); a stop of
a stopped channel is nothing to do, unless the stop was never (wholly) published: a retry
completes it, never repeats it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.moves import ChannelMove, now
from mvctl.errors import PolicyError, UsageError
from mvctl.formats import tags
from mvctl.formats.names import check_channel, check_model, check_text


def set_weight(
    root: Path,
    model: str,
    weight: float,
    channel: str = "canary",
    *,
    reason: str = "",
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    evidence: dict[str, Any] | None = None,
    expect: Callable[[channels.ModelState], None] | None = None,
) -> ChannelMove:
    """Give ``channel`` (which must hold a version) ``weight`` percent of the traffic;
    ``evidence``: the canary analysis that decided it, recorded in the event; ``expect``
    re-checks the state just fetched (raising to refuse) before anything is decided."""
    check_text(reason, "--reason")
    tags.refuse_weight(channel)
    weight = tags.check_weight(weight)
    ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run)
    if expect is not None:
        expect(ctx.state)
    return weight_on(ctx, channel, weight, reason=reason, dry_run=dry_run, evidence=evidence)


def weight_on(
    ctx: moves.Context,
    channel: str,
    weight: float,
    *,
    reason: str,
    dry_run: bool,
    evidence: dict[str, Any] | None = None,
) -> ChannelMove:
    """:func:`set_weight` on a context the caller opened (and fetched) already."""
    state = ctx.state
    model = state.model
    held = state.holder(channel)
    shown = tags.weight_text(weight)
    if held is None:
        stopped = state.stopped(channel)
        why = f"was stopped ({stopped.name})" if stopped else "holds no version"
        raise PolicyError(
            f"{model}@{channel} {why}: there is no traffic share to change",
            hint=f"promote a version first: 'mvctl promote {model} VERSION --to {channel} "
            f"--weight {shown}'",
        )
    current = state.weight(channel)
    if current == weight:
        if ctx.alias_pending(channel):
            return moves.complete(ctx, channel, f"published the pending move ({shown}%)")
        return _unchanged(ctx, channel, held, weight, f"{model}@{channel} is already at {shown}%")
    move = ChannelMove(
        model=model,
        channel=channel,
        version=held,
        previous=held,
        kind="weight",
        event=tags.event_tag(model, channel, state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=now(ctx.git),
        dry_run=dry_run,
        remote=ctx.remote,
        weight=weight,
        previous_weight=current,
        evidence=evidence,
    )
    if dry_run:
        return move
    return moves.write(ctx, move)


def stop(
    root: Path,
    model: str,
    channel: str = "canary",
    *,
    reason: str,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    evidence: dict[str, Any] | None = None,
    expect: Callable[[channels.ModelState], None] | None = None,
) -> ChannelMove:
    """Take ``channel`` off: its unassignment event, and its alias deleted (``evidence``:
    the canary analysis that decided it, recorded in the event; ``expect`` as for
    :func:`set_weight`)."""
    _check_reason(reason, "a stop")
    if channel == "production":
        raise UsageError(
            "production is never stopped: the fleet would be left with no version to serve",
            hint="roll it back (mvctl rollback) or promote another version",
        )
    ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run)
    if expect is not None:
        expect(ctx.state)
    return stop_on(ctx, channel, reason=reason, dry_run=dry_run, evidence=evidence)


def unassign(
    root: Path,
    model: str,
    channel: str,
    *,
    reason: str,
    force: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> ChannelMove:
    """Clear ``channel`` (any channel of mvctl.yaml), as GTO's ``unassign``: the same move
    as :func:`stop`. Production only with ``force``: the hosts following it keep the
    version they have and get no new one until a promotion."""
    check_model(model)
    check_channel(channel)
    _check_reason(reason, "an unassign")
    if channel == "production" and not force:
        raise PolicyError(
            f"{model}@production is not cleared without --force: the fleet following it "
            "keeps its current weights but gets no new ones until the next promotion",
            hint=f"to put a known good version back, roll back instead: "
            f"'mvctl rollback {model} --reason ...'; to clear it anyway, add --force",
        )
    ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run)
    return stop_on(ctx, channel, reason=reason, dry_run=dry_run)


def _check_reason(reason: str, what: str) -> None:
    check_text(reason, "--reason")
    if not reason.strip():
        raise UsageError(f"{what} needs --reason: it is recorded in the channel history")


def stop_on(
    ctx: moves.Context,
    channel: str,
    *,
    reason: str,
    dry_run: bool,
    evidence: dict[str, Any] | None = None,
) -> ChannelMove:
    """:func:`stop` on a context the caller opened (and fetched) already."""
    state = ctx.state
    model = state.model
    stopped = state.stopped(channel)
    if stopped is not None:
        if ctx.stop_pending(channel):
            return moves.complete(ctx, channel, f"published the pending stop {stopped.name}")
        note = f"{model}@{channel} was stopped already ({stopped.name}): nothing done"
        return replace(moves.move_of(ctx, channel, stopped, note), changed=False)
    held = state.holder(channel)
    if held is None:
        raise PolicyError(
            f"{model}@{channel} holds no version: nothing to stop",
            hint=f"see 'mvctl history {model} --channel {channel}'",
        )
    move = ChannelMove(
        model=model,
        channel=channel,
        version=held,
        previous=held,
        kind="stop",
        event=tags.unassign_tag(model, channel, state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=now(ctx.git),
        dry_run=dry_run,
        remote=ctx.remote,
        previous_weight=state.weight(channel),
        evidence=evidence,
    )
    if dry_run:
        return move
    return moves.write(ctx, move)


def promotion_weight(
    ctx: moves.Context, channel: str, weight: float | None
) -> tuple[float | None, str]:
    """The weight a promotion to ``channel`` records, and a note when it is the default:
    ``weight`` as given (refused for unweighted channels), else the default for canary and
    for a channel that has a weight now, else none."""
    if weight is not None:
        tags.refuse_weight(channel)
        return tags.check_weight(weight), ""
    if channel in tags.DEFAULT_WEIGHTED or ctx.state.weight(channel) is not None:
        shown = tags.weight_text(tags.DEFAULT_WEIGHT)
        return tags.DEFAULT_WEIGHT, (
            f"{channel} gets the default weight, {shown}% of traffic (choose with --weight; "
            f"change it later with 'mvctl canary weight {ctx.state.model} N')"
        )
    return None, ""


def _unchanged(
    ctx: moves.Context, channel: str, held: str, weight: float, note: str
) -> ChannelMove:
    events = ctx.state.channel_events(channel)
    last = events[-1] if events else None
    return ChannelMove(
        model=ctx.state.model,
        channel=channel,
        version=held,
        previous=held,
        kind="weight",
        event=last.name if last else "",
        reason=last.reason if last else "",
        actor=last.actor if last else "",
        time=last.time if last else "",
        changed=False,
        remote=ctx.remote,
        note=note,
        weight=weight,
        previous_weight=weight,
    )
