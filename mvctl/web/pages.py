"""The dashboard's pages, rendered from the core's dataclasses (mvctl.web.views gathers
them): the layout every page shares, login, the models list, history and refusals. The
model page is pages_model, lineage and diff pages_compare, hosts pages_hosts.

Every value is written through mvctl.web.html, which escapes it; nothing here decides
anything about a registry (gold/bad, targets, diffs, what a host serves are the core's)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mvctl.channels.state import Event
from mvctl.registry.read import ModelSummary
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
                form(
                    "/logout", viewer, h("button", "log out", attrs={"type": "submit"}), cls="out"
                ),
                attrs={"class": "who"},
            ),
        ]
    return document(f"{title} · mvctl", STYLE, h("header", *bar), h("main", *body))


def form(action: str, viewer: Viewer, *fields: object, cls: str = "inline") -> Html:
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


def metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def metrics_text(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={metric(v)}" for k, v in flat(metrics)) or "-"


def flat(metrics: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            yield from flat(value, f"{prefix}{key}.")
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


def models(
    viewer: Viewer,
    summaries: Sequence[ModelSummary],
    stale: str | None = None,
    unpublished: Mapping[str, Mapping[str, str | None]] | None = None,
    remote: str = "origin",
) -> Html:
    """``unpublished``: model -> channel -> the version ``remote``'s alias names, for the
    channels whose alias here the remote does not have."""
    pending = unpublished or {}
    rows = [
        (
            h("a", s.model, attrs={"href": f"/models/{s.model}"}),
            s.latest or "-",
            s.count,
            join(
                sep(
                    _channel_text(c, v, s.weights.get(c), pending.get(s.model, {}), remote)
                    for c, v in s.channels.items()
                )
            ),
        )
        for s in summaries
    ]
    count = sum(len(v) for v in pending.values())
    warning = (
        f"{count} channel(s) here differ from {remote}, which the fleet follows: moves not "
        "published yet. Open the model to publish them."
        if count
        else None
    )
    return page(
        "Models",
        viewer,
        h("h1", "Models"),
        message(stale),
        message(warning),
        table(("model", "newest version", "versions", "channels"), rows),
    )


def _channel_text(
    channel: str,
    version: str,
    weight: float | None,
    pending: Mapping[str, str | None],
    remote: str,
) -> Html:
    text = f"{channel}: {version}{_share(weight)}"
    if channel not in pending:
        return h("span", text)
    fleet = pending[channel] or "nothing"
    return h("span", text, " ", unpublished_mark(remote, fleet))


def unpublished_mark(remote: str, fleet: str | None = None) -> Html:
    said = f": {remote} has {fleet}" if fleet else f" to {remote}"
    return h("strong", f"(not published{said})", attrs={"class": "bad"})


def _share(weight: float | None) -> str:
    return "" if weight is None else f" ({weight:g}%)"


def sep(items: Iterable[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        if out:
            out.append(h("br"))
        out.append(item)
    return out or ["-"]


def subnav(model: str) -> Html:
    links = [("overview", ""), ("history", "/history"), ("lineage", "/lineage"), ("diff", "/diff")]
    return h(
        "nav",
        *(h("a", t, attrs={"href": f"/models/{model}{p}"}) for t, p in links),
        attrs={"class": "sub"},
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
    local_only: frozenset[str] = frozenset(),
    remote: str = "origin",
) -> Html:
    """``local_only``: the events here that ``remote`` lacks (never shown as done)."""
    notice = (
        f"Done: {done.name}: {name}@{done.channel} moved from {done.previous} to {done.version}."
        if done and done.name not in local_only
        else None
    )
    unpublished = [e.name for e in events if e.name in local_only]
    warning = (
        f"{', '.join(unpublished)} exist(s) only here: not published to {remote}, so the fleet "
        "does not follow them. Publish them from the model page."
        if unpublished
        else None
    )
    rows = [
        (
            e.counter,
            e.time.replace("T", " ")[:19].rstrip("Z"),
            e.channel,
            join([e.kind, " ", unpublished_mark(remote)]) if e.name in local_only else e.kind,
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
        subnav(name),
        message(notice, "ok"),
        message(stale),
        message(warning),
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
