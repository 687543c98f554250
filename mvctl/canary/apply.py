"""``--apply``: perform a canary report's verdict (STYLE.md: decide, then write).

:func:`plan` turns a report into one :class:`Action` (the dry-run answer): the next weight
(``channels.weights.set_weight``), a promotion to production through production's gates and
review (``channels.promotion.promote``) followed by a stop of the candidate's channel (its
version now serves as production), a stop of the channel (the rollback of a canary or a
shadow), or nothing. :func:`perform` makes its moves; each event records the evidence
summary (``evidence`` in its body) and a one-line reason that `history` shows.

A retry is safe: the moves themselves complete a pending publish instead of repeating it,
and a candidate whose version production already holds (a promotion whose stop did not
happen) is only stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mvctl.canary.analysis import CanaryReport, analyze
from mvctl.channels.moves import ChannelMove
from mvctl.channels.promotion import promote
from mvctl.channels.weights import set_weight, stop

ActionKind = Literal["weight", "promote", "stop", "none"]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    model: str
    channel: str
    version: str  # the candidate's
    weight: float | None  # the next weight (kind weight)
    reason: str
    evidence: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "weight": self.weight,
            "reason": self.reason,
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
    return Action(kind, report.model, report.channel, version, weight, reason, report.evidence())


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
    moves: list[ChannelMove] = []
    if action.kind == "weight" and action.weight is not None:
        moves.append(
            set_weight(
                root, action.model, action.weight, action.channel, reason=action.reason, **common
            )
        )
    elif action.kind == "promote":
        moves.append(
            promote(
                root, action.model, action.version, "production", reason=action.reason, **common
            )
        )
        done = f"promoted {action.version} to production on the {action.channel}'s evidence"
        moves.append(stop(root, action.model, action.channel, reason=done, **common))
    elif action.kind == "stop":
        moves.append(stop(root, action.model, action.channel, reason=action.reason, **common))
    return Applied(action, tuple(moves), dry_run)


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
    ``watch`` does."""
    report = analyze(root, model, logs, outcomes, channel)
    if not apply:
        return Round(report, None)
    action = plan(report)
    return Round(report, perform(root, action, push=push, remote=remote, dry_run=dry_run))
