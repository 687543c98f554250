"""Deciding a hot swap from a host directory: which channels need a load, and what serves
next. Loads happen before anything is swapped; a channel whose new model fails to load
keeps its old one, and the failed directory is not tried again until the channel names
another (a poll every half second must not reload a broken model every half second)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from mvctl.errors import MvctlError
from mvctl.serving.errors import ModelLoadError
from mvctl.serving.layout import ChannelServed
from mvctl.serving.loaders import LoadedModel
from mvctl.serving.routing import Loaded, roles

# Logged as the router's own: a server that reports load errors through follow's on_error
# filters this logger by that name.
_log = logging.getLogger("mvctl.serving.router")
_UNREADABLE = ""  # the failed "directory" of a primary that state.json names but lacks


class Reloader:
    """Remembers, per channel, the last load error and the directory that caused it."""

    def __init__(self) -> None:
        self.errors: dict[str, MvctlError] = {}
        self._failed: dict[str, str] = {}

    def next_channels(
        self,
        wanted: dict[str, ChannelServed],
        have: Sequence[Loaded],
        load: Callable[[Path], LoadedModel],
        primary: str | None = None,
    ) -> list[Loaded] | None:
        """What serves next (primary first), or None to keep what serves: nothing
        changed, or the primary has no model to serve (or nothing is readable).

        ``primary`` is the channel state.json names as the primary: when ``wanted`` lacks it
        (its version directory or record cannot be read), the next channel must not take
        its place, or a 10% canary would answer every request while production is still
        loaded here."""
        if primary is not None and primary not in wanted:
            if self._failed.get(primary) != _UNREADABLE:
                self._failed[primary] = _UNREADABLE
                self.errors[primary] = ModelLoadError(
                    f"{primary}: its version directory or record cannot be read",
                    hint="pull again (mvctl pull rewrites what is missing);"
                    " what was serving keeps serving",
                )
                _log.warning("%s cannot be read, serving what was loaded", primary)
            return None
        for gone in set(self._failed) - set(wanted):
            self._forget(gone)
        current = {item.channel: item for item in have}
        by_dir = {item.dir: item.model for item in have}
        entries = list(wanted.items())
        new: list[Loaded] = []
        for i in roles([(channel, entry.weight) for channel, entry in entries]):
            channel, entry = entries[i]
            item = self._channel(channel, entry, current.get(channel), by_dir, load)
            if item is not None:
                new.append(item)
            elif not new:
                return None  # no primary: a canary must never become it
        if not new or [i.identity() for i in new] == [i.identity() for i in have]:
            return None  # nothing readable serves: keep what does
        return new

    def _channel(
        self,
        channel: str,
        entry: ChannelServed,
        old: Loaded | None,
        by_dir: dict[str, LoadedModel],
        load: Callable[[Path], LoadedModel],
    ) -> Loaded | None:
        if old is not None and old.dir == entry.dir:
            self._forget(channel)
            return dataclasses.replace(old, weight=entry.weight)
        model = by_dir.get(entry.dir)  # another channel serves that directory: no load
        if model is None:
            if self._failed.get(channel) == entry.dir:
                return old
            try:
                model = load(entry.path)
            except MvctlError as exc:
                self._failed[channel], self.errors[channel] = entry.dir, exc
                still = old.version if old else "nothing"
                _log.warning(
                    "%s %s not loaded, serving %s: %s", channel, entry.version, still, exc.message
                )
                return old
        self._forget(channel)
        return Loaded(channel, entry.version, model, entry.weight, entry.dir)

    def _forget(self, channel: str) -> None:
        self.errors.pop(channel, None)
        self._failed.pop(channel, None)


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a pull replaces state.json (by rename: a new inode)."""
    try:
        info = path.lstat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)
