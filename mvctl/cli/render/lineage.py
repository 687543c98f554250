"""Text renderings of lineage and diff: rich for terminals, Mermaid/DOT/Markdown for reviews."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from mvctl.cli.output import esc
from mvctl.lineage.diff import VersionDiff
from mvctl.lineage.markdown import delta as _delta
from mvctl.lineage.markdown import num as _num
from mvctl.lineage.markdown import path_detail as _path_detail
from mvctl.lineage.tree import LineageNode, LineageReport


def _metrics_line(metrics: dict[str, Any], limit: int = 2) -> str:
    shown = list(metrics.items())[:limit]
    return ", ".join(f"{k}={_num(v)}" for k, v in shown)


# --- lineage ---------------------------------------------------------------------------


def _node_text(node: LineageNode) -> Text:
    text = Text(node.version, style="bold strike" if node.deregistered else "bold")
    if node.channels:
        text.append(f" [{', '.join(node.channels)}]", style="green")
    metrics = _metrics_line(node.metrics)
    if metrics:
        text.append(f"  {metrics}", style="cyan")
    text.append(f"  {node.summary}", style="dim")
    return text


def lineage_tree(report: LineageReport) -> Tree:
    title = f"{report.model}" + (f" — ancestry of {report.focus}" if report.focus else "")
    tree = Tree(Text(title, style="bold underline"))

    def grow(branch: Tree, version: str) -> None:
        node = report.nodes[version]
        child_branch = branch.add(_node_text(node))
        for child in node.children:
            grow(child_branch, child)

    for root in report.roots:
        grow(tree, root)
    return tree


def _mermaid_id(version: str) -> str:
    return "v_" + re.sub(r"[^A-Za-z0-9]", "_", version.removeprefix("v"))


def _label(node: LineageNode, newline: str) -> str:
    parts = [node.version + (f" ({', '.join(node.channels)})" if node.channels else "")]
    metrics = _metrics_line(node.metrics)
    if metrics:
        parts.append(metrics)
    return newline.join(parts)


def lineage_mermaid(report: LineageReport) -> str:
    lines = ["```mermaid", "graph TD"]
    for node in report.nodes.values():
        label = _label(node, "<br/>").replace('"', "#quot;")
        lines.append(f'  {_mermaid_id(node.version)}["{label}"]')
    for node in report.nodes.values():
        if node.parent and node.parent in report.nodes:
            lines.append(f"  {_mermaid_id(node.parent)} --> {_mermaid_id(node.version)}")
    held = [n for n in report.nodes.values() if n.channels]
    if held:
        lines.append("  classDef held stroke-width:3px")
        lines.append("  class " + ",".join(_mermaid_id(n.version) for n in held) + " held")
    lines.append("```")
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lineage_dot(report: LineageReport) -> str:
    lines = [f"digraph {_dot_quote(report.model + ' lineage')} {{", "  rankdir=TB;"]
    for node in report.nodes.values():
        style = ", penwidth=3" if node.channels else ""
        style += ", style=dashed" if node.deregistered else ""
        label = _dot_quote(_label(node, "\n"))
        lines.append(f"  {_dot_quote(node.version)} [label={label}{style}];")
    for node in report.nodes.values():
        if node.parent and node.parent in report.nodes:
            lines.append(f"  {_dot_quote(node.parent)} -> {_dot_quote(node.version)};")
    lines.append("}")
    return "\n".join(lines)


# --- diff ------------------------------------------------------------------------------


def diff_rich(d: VersionDiff) -> RenderableType:
    title = f"{d.model}: {d.old.version} → {d.new.version}"
    if d.identical:
        return Text(f"{title}: identical", style="bold green")
    parts: list[RenderableType] = [Text(title, style="bold")]

    # Every cell is registry text (paths, param values, metric keys, package names): escaped.
    paths = Table("", "path", "status", "detail", title="artifacts", title_justify="left")
    for kind, group in (("weights", d.weights), ("data", d.dataset)):
        for p in group:
            style = "" if p.status == "same" else "yellow"
            paths.add_row(kind, esc(p.path), Text(p.status, style=style), esc(_path_detail(p)))
    parts.append(paths)
    if d.params:
        table = Table("param", "old", "new", title="params", title_justify="left")
        for c in d.params:
            table.add_row(esc(c.key), esc(_num(c.old)), esc(_num(c.new)))
        parts.append(table)
    if d.environment or d.packages:
        table = Table(
            "environment", "change", "old", "new", title="environment", title_justify="left"
        )
        for c in d.environment:
            table.add_row(esc(c.key), esc(c.status), esc(_num(c.old)), esc(_num(c.new)))
        for pkg in d.packages:
            table.add_row(esc(pkg.name), esc(pkg.change), esc(pkg.old or "-"), esc(pkg.new or "-"))
        parts.append(table)
    if d.metrics:
        table = Table("metric", "old", "new", "Δ", "Δ%", title="metrics", title_justify="left")
        for m in d.metrics:
            table.add_row(
                esc(m.key), esc(_num(m.old)), esc(_num(m.new)), *(esc(x) for x in _delta(m))
            )
        parts.append(table)
    if d.code:
        table = Table("file", "status", "+", "-", title="code", title_justify="left")
        for change in d.code:
            table.add_row(
                esc(change.path), esc(change.status), _num(change.added), _num(change.deleted)
            )
        parts.append(table)
    parts.extend(Text(f"note: {note}", style="dim") for note in d.notes)
    return Group(*parts)
