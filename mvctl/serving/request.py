"""What a host is asked to do (PullRequest) and what a pull did (PullResult for the primary
channel, ChannelsResult for every channel followed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl.errors import MvctlError
from mvctl.serving.layout import ChannelServed, Served


@dataclass(frozen=True)
class HookResult:
    argv: tuple[str, ...]
    returncode: int

    def to_dict(self) -> dict[str, Any]:
        return {"argv": list(self.argv), "returncode": self.returncode}


@dataclass(frozen=True)
class PullResult:
    served: Served
    previous: str | None
    changed: bool
    downloaded: bool
    hook: HookResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.served.to_dict(),
            "previous": self.previous,
            "changed": self.changed,
            "downloaded": self.downloaded,
            "hook": self.hook.to_dict() if self.hook else None,
        }


@dataclass(frozen=True)
class ChannelOutcome:
    """What one poll did to one channel. ``served`` is what the channel holds after it
    (None: nothing, or the channel was removed); on ``error``, and when the primary
    channel is ``empty`` (cleared), the channel keeps what it held; ``skipped``: its alias
    still is the tag refused before, not fetched again."""

    channel: str
    served: ChannelServed | None
    previous: str | None = None  # the version before the poll
    previous_weight: float | None = None
    changed: bool = False  # version, weight or presence changed
    downloaded: bool = False
    removed: bool = False  # the alias is gone from the remote (a canary stopped)
    empty: bool = False  # the primary's alias is gone (unassigned): it keeps what it has
    skipped: bool = False
    error: MvctlError | None = None
    hook: HookResult | None = None
    # The alias as this poll's ls-remote saw it: its commit, and the version on that
    # commit when the host knows it (what it swapped in, or a kept version's record).
    alias_commit: str | None = None
    alias_version: str | None = None

    @property
    def version(self) -> str | None:
        return self.served.version if self.served else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "version": self.version,
            "weight": self.served.weight if self.served else None,
            "since": self.served.since if self.served else None,
            "path": str(self.served.path) if self.served else None,
            "previous": self.previous,
            "previous_weight": self.previous_weight,
            "changed": self.changed,
            "downloaded": self.downloaded,
            "removed": self.removed,
            "empty": self.empty,
            "error": self.error.message if self.error else None,
            "hook": self.hook.to_dict() if self.hook else None,
        }


@dataclass(frozen=True)
class ChannelsResult:
    """One poll of every channel followed, the primary first."""

    primary: Served | None  # what ``current`` serves after the poll
    outcomes: tuple[ChannelOutcome, ...]
    elapsed: float = 0.0  # seconds the poll took (ls-remote, downloads, swaps, hooks)

    @property
    def errors(self) -> tuple[tuple[str, MvctlError], ...]:
        return tuple((o.channel, o.error) for o in self.outcomes if o.error is not None)

    def outcome(self, channel: str) -> ChannelOutcome | None:
        return next((o for o in self.outcomes if o.channel == channel), None)

    def to_dict(self) -> dict[str, Any]:
        return {o.channel: o.to_dict() for o in self.outcomes}


@dataclass(frozen=True)
class PullRequest:
    """``channel`` is the primary; ``channels`` every channel followed, the primary first
    (empty: ``channel`` alone). See :meth:`following`."""

    repo: str
    model: str
    channel: str
    dest: Path
    keep: int = 3
    dvc_remote: str | None = None
    on_change: tuple[str, ...] = ()  # argv; run after a swap
    shell: bool = False  # run on_change[0] through /bin/sh -c
    hook_env: dict[str, str] = field(default_factory=dict)
    channels: tuple[str, ...] = ()

    @property
    def followed(self) -> tuple[str, ...]:
        return self.channels or (self.channel,)

    @classmethod
    def following(
        cls, repo: str, model: str, channels: tuple[str, ...], dest: Path, **options: Any
    ) -> PullRequest:
        """A request following ``channels``, the first the primary. A registry given as a
        relative local path is made absolute here: git runs in the host's cache, not in
        the directory the path was given from."""
        primary = channels[0] if channels else ""
        repo = absolute_repo(repo, Path.cwd())
        return cls(repo, model, primary, dest, channels=tuple(channels), **options)


def absolute_repo(repo: str, cwd: Path) -> str:
    """``repo`` as an absolute path when it names a local directory relative to ``cwd``;
    anything else (a URL, ``host:path``, an absolute path, a string that is no path) as is."""
    if "://" in repo or repo.startswith("-") or Path(repo).is_absolute():
        return repo
    try:
        local = cwd / repo
        if not local.is_dir():
            return repo
    except (OSError, ValueError):
        return repo
    return str(local.resolve())


Refused = Mapping[str, str]  # channel -> the alias tag object refused, skipped until it moves
