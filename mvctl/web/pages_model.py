"""The model page (channels, canary evidence, the rollback forms, versions) and the
rollback's confirmation, rendered from what mvctl.web.views gathered."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from mvctl.channels.state import Event, ModelState
from mvctl.formats.rules import Rule
from mvctl.registry.read import VersionInfo
from mvctl.web.html import Html, h, join
from mvctl.web.pages import (
    Viewer,
    flat,
    form,
    message,
    metric,
    metrics_text,
    page,
    sep,
    subnav,
    table,
    unpublished_mark,
    weight_text,
)

MAX_METRIC_COLUMNS = 8  # the versions table's; every metric is on the diff page


@dataclass(frozen=True)
class ChannelView:
    """One channel as the model page shows it: what the core says about it."""

    channel: str
    version: str | None
    weight: float | None
    metrics: Mapping[str, Any]
    monitors: Sequence[Rule] | None  # None: mvctl.yaml cannot be read
    last_automatic: Event | None  # the newest event an alert or monitor caused
    last_event: Event | None
    targets: Sequence[str]  # what `mvctl rollback --to` accepts
    unpublished: bool = False  # the alias here is not the remote's: the fleet lacks it
    fleet: str | None = None  # then, the version the remote's alias names


def rule_text(rule: Rule) -> str:
    given = [(f.name, getattr(rule, f.name)) for f in fields(rule)]
    defaults = {f.name: f.default for f in fields(rule)}
    written = ", ".join(f"{k}: {metric(v)}" for k, v in given if v != defaults[k])
    return f"{rule.kind} {{{written}}}"


def model(
    viewer: Viewer,
    name: str,
    channels: Sequence[ChannelView],
    versions: Sequence[VersionInfo],
    state: ModelState,
    stale: str | None = None,
    config_error: str | None = None,
    remote: str = "origin",
) -> Html:
    rows = []
    for c in channels:
        auto = c.last_automatic
        rows.append(
            (
                c.channel,
                join([c.version or "-", " ", unpublished_mark(remote, c.fleet or "nothing")])
                if c.unpublished
                else c.version or "-",
                weight_text(c.weight),
                h("span", metrics_text(c.metrics)),
                _monitors_text(c.monitors),
                f"{auto.kind} {auto.previous or '-'} → {auto.version} at {auto.time}: {auto.reason}"
                if auto
                else "-",
            )
        )
    standing = {c.channel: state.standing(c.channel) for c in channels}
    keys = list(dict.fromkeys(k for v in versions for k, _ in flat(v.metrics)))[:MAX_METRIC_COLUMNS]
    version_rows = []
    for v in reversed(versions):
        marks = [f"{ch}: {s[v.version]}" for ch, s in standing.items() if v.version in s]
        values = dict(flat(v.metrics))
        version_rows.append(
            (
                v.version,
                v.created.replace("T", " ")[:19],
                v.author.split(" <")[0],
                *(metric(values[k]) if k in values else "-" for k in keys),
                join(sep(h("span", m, attrs={"class": m.split(": ")[1]}) for m in marks))
                if marks
                else "-",
                ", ".join(v.channels) or "-",
                "deregistered" if v.deregistered else "live",
            )
        )
    canary = [c for c in channels if c.weight is not None]
    return page(
        name,
        viewer,
        h("h1", f"Model {name}"),
        subnav(name),
        message(stale),
        message(
            f"mvctl.yaml cannot be read ({config_error}): channels, versions and rollbacks are "
            "shown from the tags; the monitors are not."
            if config_error
            else None
        ),
        *(_unpublished_banner(viewer, name, c, remote) for c in channels if c.unpublished),
        h("h2", "Channels"),
        table(
            ("channel", "version", "weight", "metrics", "monitors", "last automatic event"),
            rows,
            wrap=frozenset({5}),
        ),
        *(_canary(c) for c in canary),
        h("h2", "Force a rollback"),
        _rollback_forms(viewer, name, channels),
        h("h2", "Versions"),
        table(
            ("version", "created (UTC)", "author", *keys, "gold / bad", "serving", "status"),
            version_rows,
            numbers=frozenset(range(3, 3 + len(keys))),
        ),
    )


def _monitors_text(monitors: Sequence[Rule] | None) -> object:
    if monitors is None:
        return h("span", "config unreadable", attrs={"class": "bad"})
    return join(sep(rule_text(r) for r in monitors)) if monitors else "none"


def _unpublished_banner(viewer: Viewer, name: str, c: ChannelView, remote: str) -> Html:
    """A move made here that the remote lacks: the fleet still follows the remote's alias.
    Publishing it is what finishes it (the core's push, as 'mvctl push' does)."""
    fleet = c.fleet or "nothing"
    text = (
        f"{name}@{c.channel} is {c.version or 'nothing'} here but {remote} has {fleet}: a move "
        f"made here is not published, so the fleet still follows {fleet}."
    )
    if viewer.read_only:
        return message(text + " Publish it with 'mvctl push'.")
    button = form(
        f"/models/{name}/publish",
        viewer,
        h("input", attrs={"type": "hidden", "name": "channel", "value": c.channel}),
        h(
            "button",
            f"Publish {c.version or 'it'} to {remote}",
            attrs={"type": "submit", "class": "danger", "id": f"publish-{c.channel}"},
        ),
    )
    return h("div", h("p", text), button, attrs={"class": "msg error", "role": "alert"})


def _canary(c: ChannelView) -> Html:
    event = c.last_event
    evidence = event.evidence if event else None
    rows = [
        (k, metric(v) if not isinstance(v, dict | list) else str(v))
        for k, v in (evidence or {}).items()
    ]
    return join(
        [
            h("h2", f"{c.channel}: {weight_text(c.weight)} of traffic"),
            h(
                "p",
                f"latest event {event.name}: {event.kind}"
                + (f" ({event.reason})" if event.reason else "")
                if event
                else "-",
                attrs={"class": "muted"},
            ),
            table(("analysis", "value"), rows) if rows else h("p", "no analysis recorded yet"),
        ]
    )


def _rollback_forms(viewer: Viewer, name: str, channels: Sequence[ChannelView]) -> Html:
    if viewer.read_only:
        return h("p", "This dashboard is read-only.", attrs={"class": "muted"})
    forms = []
    for c in channels:
        if c.version is None:
            continue
        if not c.targets:
            forms.append(h("p", f"{c.channel} ({c.version}): no version to roll back to"))
            continue
        options = [h("option", t, attrs={"value": t}) for t in c.targets]
        forms.append(
            form(
                f"/models/{name}/rollback",
                viewer,
                h("input", attrs={"type": "hidden", "name": "channel", "value": c.channel}),
                h("strong", f"{c.channel} ({c.version}) back to"),
                h("select", *options, attrs={"name": "to", "id": f"to-{c.channel}"}),
                h(
                    "input",
                    attrs={
                        "name": "reason",
                        "id": f"reason-{c.channel}",
                        "placeholder": "reason (required)",
                        "required": True,
                        "size": 40,
                        "maxlength": 500,
                    },
                ),
                h("button", "Roll back…", attrs={"type": "submit", "id": f"rollback-{c.channel}"}),
            )
        )
    return join(forms) if forms else h("p", "No channel holds a version.", attrs={"class": "muted"})


def confirm(viewer: Viewer, name: str, channel: str, current: str, to: str, reason: str) -> Html:
    return page(
        "Confirm rollback",
        viewer,
        h("h1", "Confirm the rollback"),
        h(
            "div",
            h("p", h("strong", f"Roll {name}@{channel} back from {current} to {to}?")),
            h("p", "Reason: ", h("em", reason)),
            h(
                "p",
                f"Recorded as requested by {viewer.name}. Serving hosts follow on their next poll.",
            ),
            form(
                f"/models/{name}/rollback",
                viewer,
                *(
                    h("input", attrs={"type": "hidden", "name": k, "value": v})
                    for k, v in (
                        ("channel", channel),
                        ("to", to),
                        ("reason", reason),
                        ("current", current),
                        ("confirm", "yes"),
                    )
                ),
                h(
                    "button",
                    "Confirm rollback",
                    attrs={"type": "submit", "class": "danger", "id": "confirm"},
                ),
                h("a", "cancel", attrs={"href": f"/models/{name}"}),
            ),
            attrs={"class": "card"},
        ),
    )
