"""Reading named tags by exact name, in one ``git cat-file --batch``: a handful of refs read
without listing the thousands of others (``for-each-ref`` walks every ref under its prefix,
each loose ref a file, even for one exact name). A name that does not exist reads as None,
so the same call answers "is there a tag N?" for the names a move must be sure are free."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from mvctl.errors import OperationalError


@dataclass(frozen=True)
class RawTag:
    """An annotated tag object as git stores it; ``target_type`` is what it points at."""

    object: str
    target: str
    target_type: str
    tagger: str  # 'Name <email>'
    date: str  # ISO-8601 with the tagger's offset, as for-each-ref's iso-strict
    message: str


def _iso(stamp: str, offset: str) -> str:
    try:
        seconds = int(stamp)
        sign = -1 if offset.startswith("-") else 1
        tz = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
        when = datetime.fromtimestamp(seconds, UTC).astimezone(tz)
    except (ValueError, IndexError, OverflowError):
        return ""  # a date git can write and no datetime holds (past 9999): undated
    return when.isoformat()


def parse_tag_object(obj: str, raw: bytes) -> RawTag | None:
    """The fields of a raw tag object (None when it is not one git would write)."""
    text = raw.decode("utf-8", "surrogateescape")
    head, sep, message = text.partition("\n\n")
    if not sep and not text.endswith("\n"):
        return None
    fields: dict[str, str] = {}
    for line in head.split("\n"):
        key, _, value = line.partition(" ")
        fields.setdefault(key, value)
    target, kind = fields.get("object", ""), fields.get("type", "")
    if not target or not kind:
        return None
    tagger, date = "", ""
    ident = fields.get("tagger", "")
    if ident:
        parts = ident.rsplit(" ", 2)
        if len(parts) == 3:
            tagger, date = parts[0], _iso(parts[1], parts[2])
    return RawTag(obj, target, kind, tagger, date, message)


def read_named(root: Path, names: Sequence[str]) -> dict[str, tuple[str, str, bytes] | None]:
    """``refs/tags/NAME`` (or any rev) -> (object id, type, raw content), None if absent."""
    if not names:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=root,
        input=("\n".join(names) + "\n").encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise OperationalError("git failed to read tags: " + proc.stderr.decode()[:200])
    out, pos = proc.stdout, 0
    found: dict[str, tuple[str, str, bytes] | None] = {}
    for name in names:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode().split()
        pos = end + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            found[name] = (header[0], header[1], out[pos : pos + size])
            pos += size + 1
        else:
            found[name] = None  # "NAME missing" (or ambiguous): no such tag
    return found
