"""Reading named tags by exact name, in one ``git cat-file --batch``: a handful of refs read
without listing the thousands of others (``for-each-ref`` walks every ref under its prefix,
each loose ref a file, even for one exact name). A name that does not exist reads as None,
so the same call answers "is there a tag N?" for the names a move must be sure are free."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


# How for-each-ref dates a tag (ref-filter.c, grab_date): from the first "> " on (strstr:
# past the tagger line, if need be), strtoumax then strtol, each skipping C spaces and taking
# an optional sign and the digits there are (none: 0); whatever follows is ignored.
_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]*)")


def _tag_date(rest: str) -> str:
    """The date of a tag whose tagger line starts ``rest`` (the tag object's text from there
    on), as ``%(taggerdate:iso-strict)`` prints it: a reader parses the same instant, or
    the same nothing, from either."""
    end = rest.find("> ")
    if end < 0:
        return ""
    stamp = _NUMBER.match(rest, end + 2)
    zone = _NUMBER.match(rest, stamp.end()) if stamp else None
    if stamp is None or zone is None or stamp[1] == "-":
        return ""  # a negative stamp is one git cannot print either
    if len(stamp[2]) > 20 or len(zone[2]) > 18:
        return ""  # past strtoumax's or strtol's range: git prints no date
    # strtol's long goes to show_date as a C int: wrapped to 32 bits.
    wrapped = (int(zone[1] + (zone[2] or "0")) + 2**31) % 2**32 - 2**31
    return _iso(int(stamp[2] or 0), wrapped)


def _iso(stamp: int, zone: int) -> str:
    """git's iso-strict: the local time at ``zone`` read as a number, HH = N/100 and
    MM = N%100 (so ``+0060`` is an hour, printed ``+00:60``). "" where what git prints is
    no date a reader can parse either: a zone of 24 hours or more, a year past 9999."""
    hours, minutes = divmod(abs(zone), 100)
    if hours * 60 + minutes >= 24 * 60:
        return ""
    shift = timedelta(minutes=hours * 60 + minutes) * (1 if zone >= 0 else -1)
    try:
        when = datetime.fromtimestamp(stamp, UTC) + shift
    except (ValueError, OverflowError):
        return ""
    sign = "+" if zone >= 0 else "-"
    return (
        f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
        f"{when.second:02d}{sign}{hours:02d}:{minutes:02d}"
    )


def parse_tag_object(obj: str, raw: bytes) -> RawTag | None:
    """The fields of a raw tag object (None when it is not one git would write)."""
    text = raw.decode("utf-8", "surrogateescape")
    head, sep, _ = text.partition("\n\n")
    if not sep and not text.endswith("\n"):
        return None
    fields: dict[str, str] = {}
    tagged_at = -1  # where the first tagger line's value starts in ``text``
    at = 0
    for line in head.split("\n"):
        key, _, value = line.partition(" ")
        if key == "tagger" and tagged_at < 0:
            tagged_at = at + len("tagger ")
        fields.setdefault(key, value)
        at += len(line) + 1
    target, kind = fields.get("object", ""), fields.get("type", "")
    if not target or not kind:
        return None
    ident = fields.get("tagger", "")
    tagger = ident[: ident.rfind(">") + 1] if ">" in ident else ident
    # What for-each-ref's %(contents) and %(taggerdate) see: C strings, so up to a NUL, and
    # the message from its first non-empty line (find_subpos skips the blank ones).
    cut = text.split("\0", 1)[0]
    date = _tag_date(cut[tagged_at:]) if 0 <= tagged_at <= len(cut) else ""
    message = cut.partition("\n\n")[2].lstrip("\n")
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
