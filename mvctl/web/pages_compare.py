"""The lineage and diff pages of a model, rendered from the core's reports."""

from __future__ import annotations

from collections.abc import Sequence

from mvctl.lineage.diff import VersionDiff
from mvctl.lineage.tree import LineageReport
from mvctl.web.html import Html, h
from mvctl.web.pages import Viewer, message, metric, metrics_text, page, subnav, table


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
        subnav(report.model),
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
    body: list[object] = [h("h1", f"Diff of {name}"), subnav(name), chooser, message(error)]
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
    return "-" if value is None else metric(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"
