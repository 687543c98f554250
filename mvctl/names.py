"""Validation of every user-supplied name, and SemVer versions (DESIGN.md vocabulary)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mvctl.errors import UsageError

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$")
_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_RE = re.compile(
    rf"^v(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

Bump = Literal["major", "minor", "patch"]


def check_model(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid model name {name!r}",
            hint="use lowercase letters, digits, '-' and '_' (1-64 chars), "
            "starting and ending with a letter or digit",
        )
    return name


def check_channel(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid channel name {name!r}",
            hint="channel names follow the model name rule, e.g. production",
        )
    return name


@dataclass(frozen=True, order=False)
class Version:
    """A SemVer 2.0 version written with a leading 'v' (v1.4.0)."""

    major: int
    minor: int
    patch: int
    pre: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        match = SEMVER_RE.match(text)
        if not match:
            raise UsageError(
                f"invalid version {text!r}", hint="versions are 'v' + SemVer, e.g. v1.4.0"
            )
        return cls(
            int(match["major"]),
            int(match["minor"]),
            int(match["patch"]),
            match["pre"] or "",
            match["build"] or "",
        )

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return SEMVER_RE.match(text) is not None

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.build:
            text += f"+{self.build}"
        return text

    def sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # SemVer precedence: a pre-release sorts before its release; numeric
        # identifiers sort before alphanumeric ones; build metadata is ignored.
        pre_ids: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in self.pre.split(".")
        )
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_ids)

    def bump(self, part: Bump) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        # A patch bump of a pre-release releases it, as SemVer tools do.
        if self.pre:
            return Version(self.major, self.minor, self.patch)
        return Version(self.major, self.minor, self.patch + 1)


FIRST_VERSION = Version(0, 1, 0)


def latest(versions: list[Version]) -> Version | None:
    return max(versions, key=Version.sort_key, default=None)


def next_version(existing: list[Version], bump: Bump) -> Version:
    top = latest(existing)
    if top is None:
        return FIRST_VERSION
    candidate = top.bump(bump)
    # A patch bump of the newest pre-release might land on a released version
    # already taken; versions are never reused, so keep bumping.
    taken = {v.sort_key() for v in existing}
    while candidate.sort_key() in taken:
        candidate = candidate.bump("patch")
    return candidate
