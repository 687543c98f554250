"""The one place that knows mvctl's tag names and tag messages (GTO-compatible formats).

| tag              | kind        |
|------------------|-------------|
| MODEL@vX.Y.Z     | version     |
| MODEL@vX.Y.Z!    | deregister  |
| MODEL#CHANNEL#N  | event       |
| MODEL@CHANNEL    | alias       |
| MODEL@vX.Y.Z#gold| gold        |

The first four are DESIGN.md's (three of them GTO's own formats). A gold mark is mvctl's: a
human vouching for a version (`mvctl mark-gold`); GTO and DVC skip tags they cannot parse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from mvctl.common import yamlio
from mvctl.errors import MvctlError
from mvctl.formats.names import NAME_PATTERN, SEMVER_PATTERN, Version

TagKind = Literal["version", "deregister", "event", "alias", "gold"]

TAG_PREFIX = "refs/tags/"
_NAME = NAME_PATTERN
_SEMVER = SEMVER_PATTERN
# \A...\Z, not ^...$: '$' matches before a trailing newline. The counter is capped at 18
# digits so int() of it stays cheap and exact.
_TAG_RE = re.compile(
    rf"\A(?P<model>{_NAME})(?:"
    rf"@(?P<version>{_SEMVER})(?:(?P<cancel>!)|(?P<gold>\#gold))?"
    rf"|#(?P<channel>{_NAME})#(?P<counter>[1-9]\d{{0,17}})"
    rf"|@(?P<alias>{_NAME})"
    r")\Z"
)


@dataclass(frozen=True)
class TagName:
    kind: TagKind
    model: str
    version: str = ""
    channel: str = ""
    counter: int = 0

    def __str__(self) -> str:
        if self.kind == "version":
            return version_tag(self.model, self.version)
        if self.kind == "deregister":
            return deregister_tag(self.model, self.version)
        if self.kind == "gold":
            return gold_tag(self.model, self.version)
        if self.kind == "event":
            return event_tag(self.model, self.channel, self.counter)
        return alias_tag(self.model, self.channel)


def version_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}"


def deregister_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}!"


def gold_tag(model: str, version: str | Version) -> str:
    return f"{model}@{version}#gold"


def event_tag(model: str, channel: str, counter: int) -> str:
    return f"{model}#{channel}#{counter}"


def alias_tag(model: str, channel: str) -> str:
    return f"{model}@{channel}"


def parse(name: str) -> TagName | None:
    """Parse a tag name (with or without refs/tags/); None for tags that are not mvctl's."""
    name = name.removeprefix(TAG_PREFIX)
    match = _TAG_RE.match(name)
    if not match:
        return None
    model = match["model"]
    # The SemVer pattern's own 'v' prefix lives inside the version group.
    if match["version"]:
        kind: TagKind = "version"
        if match["cancel"]:
            kind = "deregister"
        elif match["gold"]:
            kind = "gold"
        return TagName(kind, model, version=match["version"])
    if match["channel"]:
        return TagName("event", model, channel=match["channel"], counter=int(match["counter"]))
    alias = match["alias"]
    if Version.is_valid(alias):  # pragma: no cover - the version branch matches first
        return None
    return TagName("alias", model, channel=alias)


def event_glob(model: str) -> str:
    """for-each-ref pattern matching a model's assignment events."""
    return f"{TAG_PREFIX}{model}#*"


def version_glob(model: str) -> str:
    """for-each-ref pattern matching a model's version and deregistration tags."""
    return f"{TAG_PREFIX}{model}@v*"


ALL_VERSIONS_GLOB = f"{TAG_PREFIX}*@v*"


def format_message(title: str, body: dict[str, Any]) -> str:
    """Tag messages: a human-readable first line, a blank line, then a YAML body.

    The body is written in YAML's JSON-compatible flow style, one field per line: any YAML
    reader gets the same mapping, and mvctl reads a thousand of them with the JSON parser
    in a few milliseconds (a block-style YAML parse costs ~0.2 ms each).
    """
    return f"{title}\n\n{json.dumps(body, indent=1, ensure_ascii=False)}\n"


def parse_message(message: str) -> tuple[str, dict[str, Any]]:
    title, _, rest = message.partition("\n")
    body: Any = None
    if rest.strip():
        try:
            body = json.loads(rest)
        except RecursionError:
            body = None  # a body nested thousands deep is no body of ours (nor a crash)
        except ValueError:
            # A hand-written (or block-style) body: read it as the YAML it is, and never
            # reject a tag message that is not ours.
            try:
                body = yamlio.loads(rest, "tag message")
            except (MvctlError, RecursionError):
                body = None
    return title.strip(), body if isinstance(body, dict) else {}
