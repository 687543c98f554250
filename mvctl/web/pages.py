"""The dashboard's pages, rendered from the core's dataclasses (mvctl.web.ui gathers them).

Every value is written through mvctl.web.html, which escapes it; nothing here decides
anything about a registry (gold/bad, targets, diffs, what a host serves are the core's)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from mvctl.channels.state import Event, ModelState
from mvctl.formats.rules import Rule
from mvctl.lineage.diff import VersionDiff
from mvctl.lineage.tree import LineageReport
from mvctl.registry.read import ModelSummary, VersionInfo
from mvctl.serving.layout import ChannelServed
from mvctl.web.html import Html, document, h, join

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header{background:#1f3b57;color:#fff;padding:.6em 1.5em;display:flex;gap:1.5em;
align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
header .who{margin-left:auto;white-space:nowrap}
header form.out{display:inline}
header button{background:#36597c;padding:.2em .8em;margin-left:.6em}
main{padding:1em 1.5em 3em;max-width:1400px}
h1{font-size:1.5em;margin:.4em 0}h2{font-size:1.15em;margin:1.6em 0 .5em}
table{border-collapse:collapse;background:#fff;margin:.3em 0 1em;min-width:40%}
th,td{border:1px solid #d5dae1;padding:.35em .75em;text-align:left;vertical-align:top;
white-space:nowrap}
td.wrap{white-space:normal;max-width:38em}th{background:#e9edf2;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.gold{color:#8a6100;font-weight:600}.bad{color:#b3261e;font-weight:600}
.muted{color:#667085}.msg{padding:.6em 1em;border-radius:4px;margin:1em 0}
.error{background:#fde8e7;border:1px solid #e4a19c}.ok{background:#e6f4ea;border:1px solid #9ccfa8}
form.inline{display:flex;gap:.6em;align-items:center;flex-wrap:wrap}
input,select,button{font:inherit;padding:.3em .5em}
button{background:#1f3b57;color:#fff;border:0;border-radius:4px;padding:.4em 1em;cursor:pointer}
button.danger{background:#b3261e}nav.sub a{margin-right:1.2em}
.card{background:#fff;border:1px solid #d5dae1;border-radius:6px;padding:1em 1.4em;
max-width:44em}label{display:block;margin:.6em 0 .2em;font-weight:600}
"""


MAX_METRIC_COLUMNS = 8  # the versions table's; every metric is on the diff page


@dataclass(frozen=True)
class Viewer:
    """Who looks at the page, and what the page may offer them."""

    name: str
    csrf: str
    read_only: bool


def page(title: str, viewer: Viewer | None, *body: object) -> Html:
    bar: list[object] = [h("a", "mvctl", attrs={"href": "/"})]
    if viewer is not None:
        bar += [
            h("a", "models", attrs={"href": "/"}),
            h("a", "hosts", attrs={"href": "/hosts"}),
            h(
                "span",
                f"signed in as {viewer.name}",
                " (read-only)" if viewer.read_only else "",
                " ",
                _form(
                    "/logout", viewer, h("button", "log out", attrs={"type": "submit"}), cls="out"
                ),
                attrs={"class": "who"},
            ),
        ]
    return document(f"{title} · mvctl", STYLE, h("header", *bar), h("main", *body))


def _form(action: str, viewer: Viewer, *fields: object, cls: str = "inline") -> Html:
    hidden = h("input", attrs={"type": "hidden", "name": "csrf", "value": viewer.csrf})
    return h("form", hidden, *fields, attrs={"method": "post", "action": action, "class": cls})


def message(text: str | None, kind: str = "error") -> Html:
    return h("div", text, attrs={"class": f"msg {kind}", "role": "alert"}) if text else Html("")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: int = 0,
    empty: str = "none yet",
    numbers: frozenset[int] = frozenset(),
    wrap: frozenset[int] = frozenset(),
) -> Html:
    """A table; the last ``numeric`` columns (and those in ``numbers``) are right-aligned,
    long text in the columns in ``wrap`` wraps (every other cell stays on one line)."""
    first_num = len(headers) - numeric
    body = [
        h(
            "tr",
            *(
                h("td", c, attrs={"class": _cls(i, first_num, numbers, wrap)})
                for i, c in enumerate(r)
            ),
        )
        for r in rows
    ]
    if not body:
        return h("p", empty, attrs={"class": "muted"})
    return h("table", h("thead", h("tr", *(h("th", t) for t in headers))), h("tbody", *body))


def _cls(i: int, first_num: int, numbers: frozenset[int], wrap: frozenset[int]) -> str | None:
    if i >= first_num or i in numbers:
        return "num"
    return "wrap" if i in wrap else None


def _metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def metrics_text(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_metric(v)}" for k, v in _flat(metrics)) or "-"


def _flat(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def weight_text(weight: float | None) -> str:
    return "-" if weight is None else f"{weight:g}%"


def login(error: str | None = None) -> Html:
    form = h(
        "form",
        h("label", "Your name (recorded with any rollback you make)", attrs={"for": "name"}),
        h("input", attrs={"id": "name", "name": "name", "required": True, "maxlength": 100}),
        h("label", "Dashboard token", attrs={"for": "token"}),
        h("input", attrs={"id": "token", "name": "token", "type": "password", "required": True}),
        h("p", h("button", "Log in", attrs={"type": "submit", "id": "login"})),
        attrs={"method": "post", "action": "/login"},
    )
    return page(
        "Log in", None, h("h1", "Log in"), message(error), h("div", form, attrs={"class": "card"})
    )


def models(viewer: Viewer, summaries: Sequence[ModelSummary], stale: str | None = None) -> Html:
    rows = [
        (
            h("a", s.model, attrs={"href": f"/models/{s.model}"}),
            s.latest or "-",
            s.count,
            join(_sep(f"{c}: {v}" + _share(s.weights.get(c)) for c, v in s.channels.items())),
        )
        for s in summaries
    ]
    return page(
        "Models",
        viewer,
        h("h1", "Models"),
        message(stale),
        table(("model", "newest version", "versions", "channels"), rows),
    )


def _share(weight: float | None) -> str:
    return "" if weight is None else f" ({weight:g}%)"


def _sep(items: Iterable[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        if out:
            out.append(h("br"))
        out.append(item)
    return out or ["-"]


def _subnav(model: str) -> Html:
    links = [("overview", ""), ("history", "/history"), ("lineage", "/lineage"), ("diff", "/diff")]
    return h(
        "nav",
        *(h("a", t, attrs={"href": f"/models/{model}{p}"}) for t, p in links),
        attrs={"class": "sub"},
    )


@dataclass(frozen=True)
class ChannelView:
    """One channel as the model page shows it: what the core says about it."""

    channel: str
    version: str | None
    weight: float | None
    metrics: Mapping[str, Any]
    monitors: Sequence[Rule]
    last_automatic: Event | None  # the newest event an alert or monitor caused
    last_event: Event | None
    targets: Sequence[str]  # what `mvctl rollback --to` accepts


def rule_text(rule: Rule) -> str:
    given = [(f.name, getattr(rule, f.name)) for f in fields(rule)]
    defaults = {f.name: f.default for f in fields(rule)}
    written = ", ".join(f"{k}: {_metric(v)}" for k, v in given if v != defaults[k])
    return f"{rule.kind} {{{written}}}"


def model(
    viewer: Viewer,
    name: str,
    channels: Sequence[ChannelView],
    versions: Sequence[VersionInfo],
    state: ModelState,
    stale: str | None = None,
) -> Html:
    rows = []
    for c in channels:
        auto = c.last_automatic
        rows.append(
            (
                c.channel,
                c.version or "-",
                weight_text(c.weight),
                h("span", metrics_text(c.metrics)),
                join(_sep(rule_text(r) for r in c.monitors)) if c.monitors else "none",
                f"{auto.kind} {auto.previous or '-'} → {auto.version} at {auto.time}: {auto.reason}"
                if auto
                else "-",
            )
        )
    standing = {c.channel: state.standing(c.channel) for c in channels}
    keys = list(dict.fromkeys(k for v in versions for k, _ in _flat(v.metrics)))[
        :MAX_METRIC_COLUMNS
    ]
    version_rows = []
    for v in reversed(versions):
        marks = [f"{ch}: {s[v.version]}" for ch, s in standing.items() if v.version in s]
        flat = dict(_flat(v.metrics))
        version_rows.append(
            (
                v.version,
                v.created.replace("T", " ")[:19],
                v.author.split(" <")[0],
                *(_metric(flat[k]) if k in flat else "-" for k in keys),
                join(_sep(h("span", m, attrs={"class": m.split(": ")[1]}) for m in marks))
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
        _subnav(name),
        message(stale),
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


def _canary(c: ChannelView) -> Html:
    event = c.last_event
    evidence = event.evidence if event else None
    rows = [
        (k, _metric(v) if not isinstance(v, dict | list) else str(v))
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
            _form(
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
            _form(
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


def failed(viewer: Viewer, name: str, text: str, hint: str | None, kind: str = "error") -> Html:
    return page(
        "Refused" if kind == "error" else "Nothing done",
        viewer,
        h("h1", f"Model {name}" if name else "mvctl"),
        message(text, kind),
        h("p", hint or "", attrs={"class": "muted"}),
        h("p", h("a", "back to the model", attrs={"href": f"/models/{name}"})),
    )


def history(
    viewer: Viewer,
    name: str,
    events: Sequence[Event],
    done: Event | None = None,
    stale: str | None = None,
) -> Html:
    notice = (
        f"Done: {done.name}: {name}@{done.channel} moved from {done.previous} to {done.version}."
        if done
        else None
    )
    rows = [
        (
            e.counter,
            e.time.replace("T", " ")[:19].rstrip("Z"),
            e.channel,
            e.kind,
            f"{e.previous or '-'} → {e.version or '?'}"
            if e.kind != "stop"
            else f"{e.version} → (stopped)",
            weight_text(e.weight),
            e.actor.split(" <")[0],
            f"{e.requested_by} (via {e.via})" if e.requested_by else "-",
            h("span", e.reason),
        )
        for e in reversed(events)
    ]
    return page(
        f"{name} history",
        viewer,
        h("h1", f"History of {name}"),
        _subnav(name),
        message(notice, "ok"),
        message(stale),
        table(
            (
                "#",
                "time (UTC)",
                "channel",
                "kind",
                "from → to",
                "weight",
                "actor",
                "requested by",
                "reason",
            ),
            rows,
            numbers=frozenset({0}),
            wrap=frozenset({8}),
        ),
    )


def lineage(viewer: Viewer, report: LineageReport) -> Html:
    rows: list[tuple[object, ...]] = []

    def walk(version: str, depth: int) -> None:
        node = report.nodes[version]
        rows.append(
            (
                h("span", "\u2003" * depth + ("└ " if depth else "") + version),
                node.parent or "-",
                ", ".join(node.channels) or "-",
                metrics_text(node.metrics),
                h("span", node.summary),
            )
        )
        for child in node.children:
            walk(child, depth + 1)

    for root in report.roots:
        walk(root, 0)
    return page(
        f"{report.model} lineage",
        viewer,
        h("h1", f"Lineage of {report.model}"),
        _subnav(report.model),
        table(
            ("version", "parent", "serving", "metrics", "changed from parent"),
            rows,
            wrap=frozenset({4}),
        ),
    )


def diff(
    viewer: Viewer,
    name: str,
    versions: Sequence[str],
    old: str | None,
    new: str | None,
    result: VersionDiff | None,
    error: str | None = None,
) -> Html:
    def pick(field: str, chosen: str | None) -> Html:
        return h(
            "select",
            *(h("option", v, attrs={"value": v, "selected": v == chosen}) for v in versions),
            attrs={"name": field, "id": field},
        )

    chooser = h(
        "form",
        h("span", "old"),
        pick("old", old),
        h("span", "new"),
        pick("new", new),
        h("button", "Compare", attrs={"type": "submit"}),
        attrs={"method": "get", "action": f"/models/{name}/diff", "class": "inline"},
    )
    body: list[object] = [h("h1", f"Diff of {name}"), _subnav(name), chooser, message(error)]
    if result is not None:
        body += _diff_tables(result)
    return page(f"{name} diff", viewer, *body)


def _diff_tables(d: VersionDiff) -> list[object]:
    out: list[object] = [h("h2", f"{d.old.version} → {d.new.version}")]
    if d.identical:
        out.append(h("p", "identical"))
    out += [
        h("h2", "Metrics"),
        table(
            ("metric", "old", "new", "delta", "relative"),
            [(m.key, _num(m.old), _num(m.new), _num(m.delta), _pct(m.relative)) for m in d.metrics],
            numeric=4,
            empty="no metric changed",
        ),
        h("h2", "Weights and data"),
        table(
            ("path", "status", "old hash", "new hash", "old size", "new size"),
            [
                (
                    p.path,
                    p.status,
                    (p.old_hash or "-")[:12],
                    (p.new_hash or "-")[:12],
                    _num(p.old_size),
                    _num(p.new_size),
                )
                for p in (*d.weights, *d.dataset)
            ],
            numeric=2,
            empty="no weights or data recorded",
        ),
        h("h2", "Params and environment"),
        table(
            ("key", "status", "old", "new"),
            [(c.key, c.status, str(c.old), str(c.new)) for c in (*d.params, *d.environment)],
            empty="no param or environment changed",
        ),
        h("h2", "Packages"),
        table(
            ("package", "change", "old", "new"),
            [(p.name, p.change, p.old or "-", p.new or "-") for p in d.packages],
            empty="no package changed",
        ),
        h("h2", "Code"),
        table(
            ("path", "status", "added", "deleted"),
            [(c.path, c.status, _num(c.added), _num(c.deleted)) for c in d.code],
            numeric=2,
            empty="no code file changed",
        ),
    ]
    out += [h("p", n, attrs={"class": "muted"}) for n in d.notes]
    return out


def _num(value: float | int | None) -> str:
    return "-" if value is None else _metric(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"


@dataclass(frozen=True)
class HostView:
    """One ``--hosts DIR`` (its state files) or one ``--server URL`` (its /metrics)."""

    where: str
    served: Mapping[str, ChannelServed]  # from the directory's files
    gauges: Sequence[tuple[str, str]] = ()  # (channel, version) from a server's /metrics
    error: str | None = None


def hosts(viewer: Viewer, views: Sequence[HostView]) -> Html:
    rows: list[tuple[object, ...]] = []
    for v in views:
        for channel, s in v.served.items():
            rows.append(
                (v.where, channel, s.version, s.since.replace("T", " ")[:19], weight_text(s.weight))
            )
        for channel, version in v.gauges:
            rows.append((v.where, channel, version, "-", "-"))
        if v.error or not (v.served or v.gauges):
            rows.append((v.where, "-", "-", "-", v.error or "serves nothing yet"))
    body: list[object] = [h("h1", "Hosts")]
    if not views:
        body.append(
            h(
                "p",
                "Start the dashboard with --hosts DIR or --server URL to see what hosts serve.",
                attrs={"class": "muted"},
            )
        )
    else:
        body.append(table(("host", "channel", "version", "since (UTC)", "weight / note"), rows))
    return page("Hosts", viewer, *body)
