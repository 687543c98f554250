"""The fenced code blocks of a Markdown file, with the section they are in and the marker
comment (``<!-- expect-exit: N -->``, ``<!-- no-run: why -->``) on the line before them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>[^`]*)$")
_HEADING = re.compile(r"^(?P<level>#{1,6}) (?P<title>.+)$")
_MARKER = re.compile(r"^<!--\s*(?P<name>[a-z-]+)(?::\s*(?P<value>.*?))?\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its info string (``sh``), text, first line (1-based, the fence's),
    the headings it is under (outermost first) and the marker before it, if any."""

    lang: str
    text: str
    line: int
    headings: tuple[str, ...]
    levels: tuple[int, ...]
    marker: tuple[str, str] | None

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({' > '.join(self.headings)})"


def blocks(text: str) -> list[Block]:
    found: list[Block] = []
    headings: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = _HEADING.match(line)
        if heading:
            level = len(heading["level"])
            headings = [h for h in headings if h[0] < level] + [(level, heading["title"])]
            i += 1
            continue
        fence = _FENCE.match(line)
        if not fence:
            i += 1
            continue
        indent, mark = len(fence["indent"]), fence["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != mark:
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        assert j < len(lines), f"README.md:{i + 1}: a fence that is never closed"
        previous = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = _MARKER.match(previous)
        found.append(
            Block(
                lang=fence["info"].strip(),
                text="\n".join(body) + "\n",
                line=i + 1,
                headings=tuple(title for _, title in headings),
                levels=tuple(level for level, _ in headings),
                marker=(marker["name"], marker["value"] or "") if marker else None,
            )
        )
        i = j + 1
    return found


def shell_blocks(text: str) -> list[Block]:
    return [b for b in blocks(text) if b.lang in ("sh", "bash", "shell", "console")]


def section(found: list[Block], prefix: str) -> list[Block]:
    """The blocks under every level-2 heading that starts with ``prefix``."""
    return [
        b
        for b in found
        if any(lv == 2 and t.startswith(prefix) for lv, t in zip(b.levels, b.headings, strict=True))
    ]


def sections(text: str) -> list[tuple[str, str]]:
    """Each heading's title and its section: the text up to the next heading of its level
    or above (a `# comment` in a fenced block is no heading)."""
    lines = text.splitlines()
    starts: list[tuple[int, int, str]] = []  # (line, level, title)
    fence = None
    for n, line in enumerate(lines):
        marker = _FENCE.match(line)
        if marker and fence is None:
            fence = marker["fence"]
        elif fence is not None:
            fence = None if line.strip() == fence else fence
        elif heading := _HEADING.match(line):
            starts.append((n, len(heading["level"]), heading["title"]))
    found = []
    for i, (n, level, title) in enumerate(starts):
        end = next((m for m, lv, _ in starts[i + 1 :] if lv <= level), len(lines))
        found.append((title, "\n".join(lines[n:end])))
    return found
