"""``--apply``: perform a canary report's verdict (STYLE.md: decide, then write).

:func:`plan` turns a report into one :class:`Action` (the dry-run answer): the next weight
(``channels.weights.set_weight``), a promotion to production through production's gates and
review (``channels.promotion.promote``) followed by a stop of the candidate's channel (its
version now serves as production), a stop of the channel (the rollback of a canary or a
shadow), or nothing. :func:`perform` makes its moves; each event records the evidence
summary (``evidence`` in its body) and a one-line reason that `history` shows.

A report may be stale by the time it is acted on (another clone promoted a new canary, or
shipped a new production, while the logs were read). So :func:`analyze_round` fetches the
model's tags before analysing, the :class:`Action` carries what was analysed
(:class:`Expected`: production's and the candidate's versions, the weight, each channel's
newest event) and every move re-checks it on the state it has just fetched, inside the
move that then makes one leased push: a difference refuses (ConflictError, exit 4) with
nothing changed, and the next analysis judges the new state.

A retry is safe: the moves themselves complete a pending publish instead of repeating it,
and a candidate whose version production already holds (a promotion whose stop did not
happen) is only stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mvctl.canary.analysis import CanaryReport, analyze
from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.moves import ChannelMove
from mvctl.channels.promotion import promote
from mvctl.channels.weights import set_weight, stop
from mvctl.errors import ConflictError, PolicyError

ActionKind = Literal["weight", "promote", "stop", "none"]


@dataclass(frozen=True)
class Expected:
    """What the analysis saw in the registry, re-checked before each move."""

    baseline: str  # the version production held
    weight: float | None  # the candidate channel's weight (None: a shadow)
    events: dict[str, str | None]  # the newest event per channel (production, candidate)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "weight": self.weight, "events": dict(self.events)}


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    model: str
    channel: str
    version: str  # the candidate's
    weight: float | None  # the next weight (kind weight)
    reason: str
    evidence: dict[str, Any]
    expected: Expected | None = None  # None: act on whatever the registry holds

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "weight": self.weight,
            "reason": self.reason,
            "expected": self.expected.to_dict() if self.expected else None,
        }


@dataclass(frozen=True)
class Applied:
    action: Action
    moves: tuple[ChannelMove, ...]
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.to_dict(),
            "moves": [m.to_dict() for m in self.moves],
            "dry_run": self.dry_run,
        }


def plan(report: CanaryReport) -> Action:
    """The action ``report``'s verdict means."""
    version = str(report.candidate["version"])
    kind: ActionKind = "none"
    weight = None
    reason = report.reason()
    if report.baseline["version"] == version:
        kind = "stop"
        reason = f"{version} serves production already: the {report.channel} is done"
    elif report.verdict.kind == "rollback":
        kind = "stop"
    elif report.verdict.kind == "next_step":
        kind, weight = "weight", report.verdict.next_weight
    elif report.verdict.kind == "promote":
        kind = "promote"
    expected = Expected(str(report.baseline["version"]), report.weight, dict(report.events))
    return Action(
        kind, report.model, report.channel, version, weight, reason, report.evidence(), expected
    )


def _check(
    action: Action, *, production: str | None = None, production_moved: bool = False
) -> Callable[[channels.ModelState], None]:
    """The ``expect`` of a move: refuse (ConflictError) when the fetched state is not what
    ``action``'s analysis saw. ``production``: the version production must hold (default:
    the analysed baseline); ``production_moved``: production's newest event is ours (the
    promotion just made), not the analysed one."""
    expected = action.expected

    def expect(state: channels.ModelState) -> None:
        if expected is None:
            return
        diffs: list[str] = []
        want = {"production": production or expected.baseline, action.channel: action.version}
        for channel, version in want.items():
            held = state.holder(channel)
            if held != version:
                diffs.append(f"{channel} holds {held or 'no version'}, not {version}")
        if action.channel != "shadow" and state.weight(action.channel) != expected.weight:
            diffs.append(f"{action.channel}'s weight is {state.weight(action.channel)}")
        for channel, name in expected.events.items():
            if channel == "production" and production_moved:
                continue
            events = state.channel_events(channel)
            newest = events[-1].name if events else None
            if newest != name:
                diffs.append(f"{channel}'s newest event is {newest or 'none'}, not {name}")
        if diffs:
            raise ConflictError(
                f"{action.model} changed since the canary analysis: "
                + "; ".join(diffs)
                + ": nothing done",
                hint="analyze again: the verdict was about what the registry held then "
                "('mvctl canary watch' does on its next round)",
            )

    return expect


def perform(
    root: Path,
    action: Action,
    *,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> Applied:
    """Make ``action``'s moves (none for ``none``); ``dry_run`` decides them unperformed."""
    common: dict[str, Any] = {
        "push": push,
        "remote": remote,
        "dry_run": dry_run,
        "evidence": action.evidence,
    }
    made: list[ChannelMove] = []
    expect = _check(action)
    if action.kind == "weight" and action.weight is not None:
        made.append(
            set_weight(
                root,
                action.model,
                action.weight,
                action.channel,
                reason=action.reason,
                expect=expect,
                **common,
            )
        )
    elif action.kind == "promote":
        made.append(
            promote(
                root,
                action.model,
                action.version,
                "production",
                reason=action.reason,
                expect=expect,
                **common,
            )
        )
        done = f"promoted {action.version} to production on the {action.channel}'s evidence"
        after = expect
        if not dry_run:  # production holds the candidate now, by our event
            after = _check(action, production=action.version, production_moved=True)
        made.append(stop(root, action.model, action.channel, reason=done, expect=after, **common))
    elif action.kind == "stop":
        made.append(
            stop(root, action.model, action.channel, reason=action.reason, expect=expect, **common)
        )
    return Applied(action, tuple(made), dry_run)


@dataclass(frozen=True)
class Round:
    """One analysis, and what ``--apply`` did with it (None without --apply)."""

    report: CanaryReport
    applied: Applied | None

    @property
    def final(self) -> bool:
        """A promotion or a rollback ends a canary (``watch`` stops after one)."""
        return self.report.verdict.kind in ("promote", "rollback") or (
            self.applied is not None and self.applied.action.kind == "stop"
        )

    def to_dict(self) -> dict[str, Any]:
        return self.report.to_dict() | {"applied": self.applied.to_dict() if self.applied else None}


def analyze_round(
    root: Path,
    model: str,
    logs: Sequence[Path],
    outcomes: Sequence[Path] = (),
    channel: str = "canary",
    *,
    apply: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> Round:
    """Analyze, then (``apply``) perform the verdict: what one ``analyze`` or one round of
    ``watch`` does. With ``apply`` the model's tags are fetched first (as each move does),
    so the verdict is about what the remote holds."""
    if apply:
        ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run)
        if not dry_run and ctx.stop_pending(channel):
            # An earlier --apply stopped the channel here and was interrupted before its push:
            # the fleet still routes to the candidate. The retry publishes that stop (it
            # never decides again on a channel that, here, holds nothing).
            done = moves.complete(ctx, channel, "published the pending stop")
            raise PolicyError(
                f"{model}@{channel} was stopped by an interrupted --apply: {done.event} is "
                f"published now, so there is nothing left to analyze",
                hint=f"see 'mvctl history {model} --channel {channel}'",
            )
    report = analyze(root, model, logs, outcomes, channel)
    if not apply:
        return Round(report, None)
    action = plan(report)
    return Round(report, perform(root, action, push=push, remote=remote, dry_run=dry_run))
