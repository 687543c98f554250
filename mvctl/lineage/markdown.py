"""Markdown for reviewers: diff sections and gate reports that paste into a pull request."""

from __future__ import annotations

from typing import Any

from mvctl.lineage.diff import MetricDelta, PathDiff, VersionDiff


def num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def size(amount_bytes: int | None) -> str:
    if amount_bytes is None:
        return "-"
    amount = float(amount_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount_bytes} B"  # pragma: no cover


def path_detail(p: PathDiff) -> str:
    if p.status == "same":
        return (p.new_hash or "")[:12]
    if p.status == "added":
        return f"new {(p.new_hash or '')[:12]} ({size(p.new_size)})"
    if p.status == "removed":
        return f"was {(p.old_hash or '')[:12]} ({size(p.old_size)})"
    detail = f"{(p.old_hash or '')[:12]} → {(p.new_hash or '')[:12]}"
    detail += f" ({size(p.old_size)} → {size(p.new_size)})"
    inner = [
        *(f"+{f}" for f in p.files_added),
        *(f"-{f}" for f in p.files_removed),
        *(f"~{f}" for f in p.files_modified),
    ]
    if inner:
        more = f" …+{len(inner) - 8}" if len(inner) > 8 else ""
        detail += "; files: " + " ".join(inner[:8]) + more
    return detail


def delta(m: MetricDelta) -> tuple[str, str]:
    delta = "-" if m.delta is None else f"{m.delta:+.4g}"
    rel = "-" if m.relative is None else f"{m.relative:+.2%}"
    return delta, rel


def cell(value: Any) -> str:
    """A value fit for a Markdown table cell."""
    return num(value).replace("|", "\\|")


def diff_markdown(d: VersionDiff) -> str:
    lines = [f"### {d.model}: `{d.old.version}` → `{d.new.version}`", ""]
    if d.identical:
        return "\n".join([*lines, "Identical: nothing changed.", ""])
    lines += ["| artifact | path | status | detail |", "|---|---|---|---|"]
    for kind, group in (("weights", d.weights), ("data", d.dataset)):
        for p in group:
            lines.append(f"| {kind} | `{p.path}` | {p.status} | {cell(path_detail(p))} |")
    if d.params:
        lines += ["", "**Params**", "", "| param | old | new |", "|---|---|---|"]
        lines += [f"| `{c.key}` | {cell(c.old)} | {cell(c.new)} |" for c in d.params]
    if d.environment or d.packages:
        lines += ["", "**Environment**", "", "| name | change | old | new |", "|---|---|---|---|"]
        lines += [
            f"| {c.key} | {c.status} | {cell(c.old)} | {cell(c.new)} |" for c in d.environment
        ]
        lines += [
            f"| `{p.name}` | {p.change} | {p.old or '-'} | {p.new or '-'} |" for p in d.packages
        ]
    if d.metrics:
        lines += ["", "**Metrics**", "", "| metric | old | new | Δ | Δ% |", "|---|---|---|---|---|"]
        for m in d.metrics:
            change, rel = delta(m)
            lines.append(f"| `{m.key}` | {cell(m.old)} | {cell(m.new)} | {change} | {rel} |")
    if d.code:
        lines += ["", f"**Code** ({len(d.code)} files)", "", "| file | status | + | - |"]
        lines += ["|---|---|---|---|"]
        lines += [
            f"| `{c.path}` | {c.status} | {cell(c.added)} | {cell(c.deleted)} |" for c in d.code
        ]
    lines += ["", *(f"> {note}" for note in d.notes)] if d.notes else []
    return "\n".join([*lines, ""])
