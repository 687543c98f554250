"""An Alertmanager receiver that rolls channels back (webhook payload version 4).

    POST /alerts   Authorization: Bearer <token>; a firing alert whose labels name
                   ``mvctl_model`` (and ``mvctl_channel``, default production) rolls that
                   channel back to its last gold version
    GET  /healthz  liveness probe, no authentication

An alert is about the *release* the channel served when it started: it rolls a channel back
only away from that version, and is skipped when the channel moved after the alert's
``startsAt`` (the alert is then about an earlier version, or was handled already). Each
release gets one rollback, whatever the alert group, the alerts' start times or the replica:
the incident id is derived from the channel and the event that put its version there, and is
recorded in the rollback event. Decisions are taken on the remote's tags, fetched first, and
published in a push leased on them, so a stale replica decides like a fresh one.
Requests without the bearer token get 401, bodies over the size limit 413, anything that is
not a version-4 payload 400; none of them changes anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.rollback import rollback_on
from mvctl.errors import (
    ConflictError,
    MvctlError,
    NotFoundError,
    OperationalError,
)
from mvctl.formats import tags
from mvctl.formats.names import NAME_RE

DEFAULT_PORT = 9465

Action = Literal["rolled_back", "would_roll_back", "already", "ignored", "failed"]
ATTEMPTS = 3  # a lost race is decided again on the remote's new state, this many times


@dataclass(frozen=True)
class Decision:
    model: str
    channel: str
    incident: str
    action: Action
    detail: str
    retry: bool = False  # a transient failure: the sender should try again (HTTP 503)

    def to_dict(self) -> dict[str, str | bool]:
        return {
            "model": self.model,
            "channel": self.channel,
            "incident": self.incident,
            "action": self.action,
            "detail": self.detail,
            "retry": self.retry,
        }


class BadPayload(ValueError):
    """Not an Alertmanager version-4 webhook payload."""


def _firing(payload: Any) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """(model, channel) -> its firing alerts, from a validated payload."""
    if not isinstance(payload, dict) or str(payload.get("version")) != "4":
        raise BadPayload("not an Alertmanager webhook payload of version 4")
    alerts = payload.get("alerts")
    if not isinstance(alerts, list) or not isinstance(payload.get("groupKey"), str):
        raise BadPayload("payload needs groupKey and a list of alerts")
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for alert in alerts:
        if not isinstance(alert, dict) or not isinstance(alert.get("labels"), dict):
            raise BadPayload("every alert needs a labels mapping")
        if alert.get("status") not in ("firing", "resolved"):
            raise BadPayload("alert status must be firing or resolved")
        if alert["status"] != "firing" or "mvctl_model" not in alert["labels"]:
            continue
        labels = alert["labels"]
        key = (str(labels["mvctl_model"]), str(labels.get("mvctl_channel", "production")))
        grouped.setdefault(key, []).append(alert)
    return grouped


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 time (Alertmanager's nanosecond fractions accepted), as UTC."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(_FRACTION.sub(r"\1", text.replace("Z", "+00:00"), 1))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def alert_id(alert: Mapping[str, Any]) -> str:
    """An alert instance, as Alertmanager keeps it: its labels and when it started. The
    same alert repeated (or re-sent after a restart) has the same id."""
    labels = alert.get("labels") or {}
    raw = json.dumps([sorted((str(k), str(v)) for k, v in labels.items()), alert.get("startsAt")])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _latest_start(alerts: list[Mapping[str, Any]]) -> datetime | None:
    """The newest ``startsAt``: the strongest evidence against the version serving now."""
    starts = [t for a in alerts if (t := parse_time(a.get("startsAt"))) is not None]
    return max(starts, default=None)


def _reason(alerts: list[Mapping[str, Any]], incident: str) -> str:
    first = alerts[0]
    name = first["labels"].get("alertname", "alert")
    raw = first.get("annotations")
    annotations: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    summary = annotations.get("summary") or annotations.get("description") or ""
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    return f"alert {name}{more}: {summary} [incident {incident}]".replace(": [", " [")


def _tenure(ctx: moves.Context, channel: str) -> tuple[str, channels.Event | None]:
    """The version the fleet is served on ``channel`` and the event that put it there (a
    stopped channel serves nothing: its alias is gone)."""
    model = ctx.state.model
    alias = ctx.published_alias(channel)
    held = ctx.state.version_at(alias.commit) if alias else None
    if alias is None or held is None:
        raise NoRelease(f"{model}@{channel} serves no version: nothing to roll back")
    named = tags.AliasBody.from_dict(tags.parse_message(alias.message)[1]).event
    events = ctx.state.channel_events(channel)
    by_name = [e for e in events if e.name == named]
    by_commit = [e for e in events if e.commit == alias.commit]
    found = by_name or by_commit
    # A weight change is no arrival: the release is the one the move before it brought.
    return held, ctx.state.arrival(channel, found[-1]) if found else None


class NoRelease(MvctlError):
    """The channel serves nothing an alert could be about (not worth a retry)."""

    exit_code = 1


def incident_id(model: str, channel: str, version: str, event: str) -> str:
    """One id per release on a channel: every alert, group and replica derives the same."""
    raw = f"{model}\n{channel}\n{version}\n{event}".encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _decide(
    root: Path,
    model: str,
    channel: str,
    alerts: list[Mapping[str, Any]],
    *,
    dry_run: bool,
    push: bool | None,
    remote: str,
) -> Decision:
    ctx = moves.open_channel(root, model, channel, push, remote, need_config=False, dry_run=dry_run)
    held, event = _tenure(ctx, channel)
    incident = incident_id(model, channel, held, event.name if event else "")
    ids = tuple(sorted({alert_id(a) for a in alerts}))
    acted = {a: e.name for e in ctx.state.channel_events(channel) for a in e.alerts}
    if all(i in acted for i in ids) and not ctx.alias_pending(channel):
        # Repeats of alerts a rollback already acted on, whatever their start times say.
        detail = f"these alerts were acted on by {acted[ids[0]]}"
        return Decision(model, channel, incident, "already", detail)
    started = _latest_start(alerts)
    since = parse_time(event.time) if event else None
    # Event times have whole seconds: an alert that started within the second the channel
    # moved counts as older (Prometheus needs evaluations after a deploy to fire anyway).
    if started is not None and since is not None and started < since + timedelta(seconds=1):
        detail = (
            f"{model}@{channel} moved to {held} at {event.time if event else '?'}, after the "
            f"alert started ({started:%Y-%m-%dT%H:%M:%SZ}): the alert is about an earlier "
            "version, or was handled already"
        )
        return Decision(model, channel, incident, "already", detail)
    move = rollback_on(
        ctx,
        channel,
        reason=_reason(alerts, incident),
        dry_run=dry_run,
        incident=incident,
        alerts=ids,
    )
    if not move.changed:
        return Decision(model, channel, incident, "already", move.note or "nothing to do")
    if move.pushed and move.event not in move.published:
        # Another replica made the byte-identical rollback and published it first.
        return Decision(model, channel, incident, "already", f"rolled back by {move.event}")
    action: Action = "would_roll_back" if dry_run else "rolled_back"
    detail = f"{move.previous} -> {move.version} ({move.event})"
    if move.completed:
        detail += f"; {move.note}"
    return Decision(model, channel, incident, action, detail)


def handle(
    root: Path,
    payload: Any,
    *,
    dry_run: bool = False,
    push: bool | None = None,
    remote: str = "origin",
) -> list[Decision]:
    """Decide on (and perform) the rollbacks a payload asks for; raises BadPayload."""
    decisions = []
    for (model, channel), alerts in sorted(_firing(payload).items()):
        if not NAME_RE.match(model) or not NAME_RE.match(channel):
            decisions.append(Decision(model, channel, "", "ignored", "invalid name"))
            continue
        for attempt in range(1, ATTEMPTS + 1):
            try:
                decision = _decide(
                    root, model, channel, alerts, dry_run=dry_run, push=push, remote=remote
                )
            except ConflictError as exc:
                if attempt < ATTEMPTS:
                    continue  # someone moved the channel first: decide again on their state
                decision = Decision(model, channel, "", "failed", exc.message, retry=True)
            except NotFoundError as exc:  # a typo in mvctl_model: no retry will find it
                decision = Decision(model, channel, "", "ignored", exc.message)
            except MvctlError as exc:
                transient = isinstance(exc, OperationalError | ConflictError)
                decision = Decision(model, channel, "", "failed", exc.message, retry=transient)
            break
        decisions.append(decision)
    return decisions
