"""Moving channels: promote (through gates), roll back, mark gold, retire.

How a move is written and published is mvctl.moves; this module decides *which* move a
command means. Decisions are idempotent by intent, never by local state alone: a retry of an
interrupted move completes it (publishes it as it is) instead of taking a further step, and
an automatic rollback acts once per release it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo
from mvctl.analysis import rules
from mvctl.analysis.tables import load_live
from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.gates import DataCheck, GateReport, GateResult, evaluate
from mvctl.channels.moves import ChannelMove, MoveKind, now
from mvctl.common import interrupts
from mvctl.errors import (
    Interrupted,
    PolicyError,
    UsageError,
    deregistered,
    unknown_model,
    unknown_version,
)
from mvctl.formats import config, tags
from mvctl.formats.names import Version, check_channel, check_model, check_text
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry.read import read_manifest, read_profile

__all__ = ["ChannelMove", "MoveKind", "promote", "rollback", "validate"]

# A plain rollback this soon after the channel's last rollback is taken as a retry of it:
# the panic button never rolls back further than asked (say --to VERSION to go further).
RETRY_WINDOW_S = 600
CLOCK_SKEW_S = 60  # a last rollback stamped further ahead than this is no reason to wait


def _require_version(state: channels.ModelState, version: str) -> None:
    Version.parse(version)
    if version not in state.tags.versions:
        raise unknown_version(state.model, version)
    if version in state.tags.deregistered:
        raise deregistered(state.model, version)


def gate_report(
    git: GitRepo,
    cfg: config.RegistryConfig,
    state: channels.ModelState,
    version: str,
    channel: str,
    eval_data: Path | None = None,
) -> GateReport:
    model = state.model
    holder = state.holder(channel)
    commit = state.tags.versions[version].commit
    candidate = read_manifest(git, model, version, commit)
    current = None
    if holder is not None:
        current = read_manifest(git, model, holder, state.tags.versions[holder].commit)
    check = _data_check(git, cfg, model, commit, eval_data) if eval_data else None
    rules = cfg.rules_for(model, "gates", channel, lambda m: bool(git.tags(tags.version_glob(m))))
    results = evaluate(rules, candidate, current, check)
    return GateReport(model, version, channel, holder, results)


def _data_check(
    git: GitRepo, cfg: config.RegistryConfig, model: str, commit: str, eval_data: Path
) -> DataCheck:
    """Drift and bias gates: the monitors' rules, on validation data, against the candidate's
    own reference profile; a rule that cannot be evaluated fails closed."""
    frame = load_live(eval_data, None)
    reference = read_profile(git, model, commit)
    roles = rules.Roles.from_config(cfg.model(model).raw)

    def check(rule: Mapping[str, Any]) -> GateResult:
        [result] = rules.evaluate([rule], reference, frame, None, roles).results
        return GateResult(result.rule, result.level in ("ok", "warn"), result.detail)

    return check


def validate(
    root: Path, model: str, version: str, channel: str, eval_data: Path | None = None
) -> GateReport:
    """Run ``channel``'s gates for ``version`` without moving anything."""
    ctx = moves.open_channel(root, model, channel, push=False, remote="origin")
    _require_version(ctx.state, version)
    return gate_report(ctx.git, ctx.config(), ctx.state, version, channel, eval_data)


def promote(
    root: Path,
    model: str,
    version: str,
    channel: str,
    *,
    reason: str = "",
    force: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    request: str | None = None,
    eval_data: Path | None = None,
) -> ChannelMove:
    """Move ``channel`` to ``version`` if the gates pass (or ``force`` with a reason).
    ``push``: True publishes (an error without the remote), False keeps the move local, None
    follows the registry's rule (publish when the remote exists, unless ``push: never``)."""
    check_text(reason, "--reason")
    ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run)
    cfg = ctx.config()
    if channel in cfg.model(model).review and request is None:
        raise PolicyError(
            f"promotions to {channel} need a reviewed request",
            hint=f"run 'mvctl propose {model} {version} --to {channel}' and merge its PR",
        )
    _require_version(ctx.state, version)
    holder = ctx.state.holder(channel)
    if holder == version and ctx.alias_pending(channel):
        return moves.complete(ctx, channel, f"published the pending move to {version}")
    report = gate_report(ctx.git, cfg, ctx.state, version, channel, eval_data)
    kind: MoveKind = "promote"
    if not report.passed:
        if not force:
            failed = "; ".join(f"{r.gate} ({r.detail})" for r in report.failures())
            raise PolicyError(
                f"{model} {version} failed the {channel} gates: {failed}",
                hint="fix the model, or override with --force --reason TEXT",
            )
        if not reason.strip():
            raise UsageError("--force needs --reason: an override is recorded with its reason")
        kind = "override"
    move = ChannelMove(
        model=model,
        channel=channel,
        version=version,
        previous=holder,
        kind=kind,
        event=tags.event_tag(model, channel, ctx.state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=now(ctx.git),
        gates=report,
        request=request,
        dry_run=dry_run,
        changed=holder != version,
        remote=ctx.remote,
    )
    if dry_run or holder == version:
        return move
    return moves.write(ctx, move)


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
    if incident is None and last is not None and last.kind == "rollback":
        age = _seconds_between(last.time, now(ctx.git))
        if -CLOCK_SKEW_S <= age < RETRY_WINDOW_S:
            return _no_move(
                ctx,
                channel,
                last,
                f"{state.model}@{channel} was rolled back from {last.previous} to "
                f"{last.version} {max(age, 0):.0f} s ago ({last.name}); taken as a retry: "
                "nothing done. To roll back further, say --to VERSION",
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
    return ChannelMove(
        model=ctx.state.model,
        channel=channel,
        version=ctx.state.holder(channel) or event.version or "?",
        previous=event.previous,
        kind="rollback",
        event=event.name,
        reason=event.reason,
        actor=event.actor,
        time=event.time,
        incident=event.incident,
        changed=False,
        remote=ctx.remote,
        note=note,
    )


def _explicit_target(state: channels.ModelState, channel: str, to: str) -> None:
    """``rollback --to`` goes back: to a version the channel served before and that was not
    rolled back away from there. Anything else (a version it never served, or undoing a
    rollback) is a forward move: a promotion, with its gates, which clears a bad mark."""
    _require_version(state, to)
    model, current = state.model, state.holder(channel)
    if to == current:
        return
    promote_hint = f"run 'mvctl promote {model} {to} --to {channel}' (gates run; --force --reason)"
    if to not in state.held_before(channel):
        raise PolicyError(
            f"{model}@{channel} never served {to}: a rollback returns to a version the "
            "channel served before",
            hint=promote_hint,
        )
    if state.standing(channel).get(to) == "bad":
        raise PolicyError(
            f"{model}@{channel} was rolled back away from {to}: going back to it is a "
            "forward move, a promotion (which clears its bad mark)",
            hint=promote_hint,
        )


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
) -> ChannelMove:
    """Move ``channel`` back: to ``to``, or to the last gold version it held before. Never
    runs gates and never waits for review: the panic button must work. ``incident`` names
    what caused it (recorded: the same incident never rolls back twice). A retry of an
    interrupted rollback publishes it; a plain rollback right after another is a retry."""
    check_text(reason, "--reason")
    if not reason.strip():
        raise UsageError("a rollback needs --reason: it is recorded in the channel history")
    # The panic button reads no config on its way: a channel with an alias is a channel.
    ctx = moves.open_channel(root, model, channel, push, remote, need_config=False, dry_run=dry_run)
    return rollback_on(ctx, channel, reason=reason, to=to, dry_run=dry_run, incident=incident)


def rollback_on(
    ctx: moves.Context,
    channel: str,
    *,
    reason: str,
    to: str | None = None,
    dry_run: bool = False,
    incident: str | None = None,
    alerts: tuple[str, ...] = (),
) -> ChannelMove:
    """``rollback`` on a context the caller opened (and fetched) already; ``alerts`` names
    the alert instances it acts on (recorded, so a repeat of them never acts again)."""
    state = ctx.state
    model = state.model
    current = state.holder(channel)
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
    )
    if dry_run or target == current:
        return move  # already there: idempotent, so a repeated alert or retry is harmless
    return moves.write(ctx, move)


@dataclass(frozen=True)
class VersionMark:
    model: str
    version: str
    tag: str
    reason: str
    pushed: bool = False
    dry_run: bool = False
    remote: str | None = None
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tag": self.tag,
            "reason": self.reason,
            "pushed": self.pushed,
            "remote": self.remote,
            "published": list(self.published),
            "dry_run": self.dry_run,
        }


def _mark(
    root: Path,
    model: str,
    version: str,
    kind: Literal["gold", "deregister"],
    reason: str,
    push: bool | None,
    remote: str,
    dry_run: bool,
) -> VersionMark:
    check_model(model)
    check_text(reason, "--reason")
    git = GitRepo.open(root)
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where and not dry_run else None
    state = channels.load(git, model)
    _require_version(state, version)
    name = tags.gold_tag(model, version) if kind == "gold" else tags.deregister_tag(model, version)
    if kind == "deregister":
        holders = [c for c in state.tags.aliases if state.holder(c) == version]
        if holders:
            raise PolicyError(
                f"{model} {version} is held by {', '.join(sorted(holders))}",
                hint="promote or roll back those channels to another version first",
            )
    mark = VersionMark(model, version, name, reason, dry_run=dry_run, remote=where)
    already = version in (state.tags.gold if kind == "gold" else state.tags.deregistered)
    if dry_run or (already and synced is None):
        return mark
    obj = None
    if not already:
        title = f"{'Mark' if kind == 'gold' else 'Deregister'} {model} {version}"
        body = tags.MarkBody(kind, model, version, reason, actor=git.ident(), time=now(git))
        obj = git.create_annotated_tag(
            name, state.tags.versions[version].commit, tags.format_message(title, body.to_dict())
        )
    if synced is None:
        return mark

    def undo() -> None:
        if obj is not None:
            with interrupts.shielded():
                git.update_refs([f"delete refs/tags/{name} {obj}"], what=name)

    try:
        records = git.tags(f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*")
        try:
            names = publish.push_refs(git, publish.pending(records, synced))
        except publish.Unsettled as unsettled:
            names = publish.settle(unsettled, undo)
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except BaseException:
        undo()
        raise
    return replace(mark, pushed=True, published=tuple(names))


def mark_gold(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Vouch for a version: rollbacks may choose it (unless later rolled back from)."""
    return _mark(root, model, version, "gold", reason, push, remote, dry_run)


def retire(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Deregister a version (GTO's ``MODEL@vX.Y.Z!``); refused while any channel holds it."""
    return _mark(root, model, version, "deregister", reason, push, remote, dry_run)


def history(root: Path, model: str, channel: str | None = None) -> list[channels.Event]:
    check_model(model)
    if channel is not None:
        check_channel(channel)
    state = channels.load(GitRepo.open(root), model)
    if not state.tags.versions:
        raise unknown_model(model)
    return [e for e in state.events if channel is None or e.channel == channel]
