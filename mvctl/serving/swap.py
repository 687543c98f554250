"""Making a version what a channel serves: the links (``current`` for the primary,
``channels/CHANNEL`` for every channel), each replaced by rename, then state.json in one
rename, then pruning what no channel needs any more.

state.json keeps, beside what ``served_channels`` reads (the top-level fields for the
primary, ``channels`` for each channel), ``history``: per channel, the version directories
it served, newest first, that pruning keeps ``keep`` of."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from mvctl.errors import OperationalError
from mvctl.formats.names import NAME_RE, redacted_url
from mvctl.serving.download import AliasRead
from mvctl.serving.layout import (
    CHANNELS,
    CURRENT,
    META,
    RECORDS,
    STATE,
    VERSIONS,
    ChannelServed,
    channel_links,
    current_name,
    discard,
    file_kind,
    fsync_path,
    read_json,
    read_record,
    real_dir,
    remove_version,
    served_channels,
    utc_now,
    valid_name,
    write_json,
)
from mvctl.serving.request import PullRequest


def read_state(dest: Path) -> dict[str, Any]:
    return read_json(dest / STATE) or {}


def entries_of(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each channel's entry; a state written before hosts followed several channels has
    one, its primary's, from the top-level fields."""
    entries = state.get("channels")
    if isinstance(entries, dict):
        return {
            k: dict(v)
            for k, v in entries.items()
            if isinstance(k, str) and NAME_RE.match(k) and isinstance(v, dict)
        }
    channel, name = state.get("channel"), state.get("dir", state.get("version"))
    if isinstance(channel, str) and isinstance(name, str) and valid_name(name):
        return {
            channel: {
                "version": state.get("version"),
                "dir": name,
                "commit": state.get("commit"),
                "since": state.get("since", ""),
            }
        }
    return {}


def _histories(state: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    history = state.get("history")
    if isinstance(history, dict):
        for channel, names in history.items():
            if isinstance(channel, str) and isinstance(names, list):
                out[channel] = [n for n in names if isinstance(n, str) and valid_name(n)]
    primary, recent = state.get("channel"), state.get("recent")
    if isinstance(primary, str) and primary not in out and isinstance(recent, list):
        out[primary] = [n for n in recent if isinstance(n, str) and valid_name(n)]
    return out


def relink(link: Path, target: str) -> None:
    """``link -> target``, replaced by rename(2): readers see the old or the new, never
    neither (and a symlink in the way is replaced, never followed)."""
    tmp = link.with_name(f".{link.name}.tmp")
    discard(tmp)
    tmp.symlink_to(target)
    tmp.replace(link)
    fsync_path(link.parent)


def swap(req: PullRequest, dest: Path, channel: str, name: str, alias: AliasRead) -> ChannelServed:
    """Make ``versions/NAME`` what ``channel`` serves, with the alias's weight."""
    primary = channel == req.channel
    if primary:
        relink(dest / CURRENT, f"{VERSIONS}/{name}")
    real_dir(dest / CHANNELS, create=True)
    relink(dest / CHANNELS / channel, f"../{VERSIONS}/{name}")
    state = read_state(dest)
    entries = entries_of(state)
    old = entries.get(channel) or {}
    kept_since = old.get("since") if old.get("dir") == name else None
    since = kept_since if isinstance(kept_since, str) and kept_since else utc_now()
    record = read_record(dest, name) or {}
    entries[channel] = {
        "version": record.get("version"),
        "dir": name,
        "commit": record.get("commit"),
        "since": since,
        "weight": alias.weight,
        "alias": alias.object,
    }
    history = {ch: names for ch, names in _histories(state).items() if ch in req.followed}
    history[channel] = [name] + [n for n in history.get(channel, []) if n != name]
    new = {**state, "model": req.model, "repo": redacted_url(req.repo)}  # never a password
    new.setdefault("channel", req.channel)
    if primary:
        new |= {
            "channel": channel,
            "version": record.get("version"),
            "dir": name,
            "commit": record.get("commit"),
            "since": since,
        }
    new["channels"] = entries
    new["history"] = history
    new["recent"] = history.get(str(new["channel"]), [])
    write_json(dest / STATE, new)
    _prune(dest, req.keep)
    served = served_channels(dest).get(channel)
    if served is None:  # pragma: no cover - just written
        raise OperationalError(f"{dest} lost what {channel} serves")
    return served


def unlink_channel(dest: Path, channel: str) -> bool:
    """Take ``channel`` out of state.json and channels/; whether it was there. Its
    versions stay (its history is kept while the channel is followed)."""
    link = dest / CHANNELS / channel
    present = file_kind(link) == stat.S_IFLNK
    state = read_state(dest)
    entries = entries_of(state)
    if channel in entries:
        present = True
        del entries[channel]
        write_json(dest / STATE, {**state, "channels": entries})
    if present:
        discard(link)  # a symlink: unlinked, never followed
        fsync_path(link.parent)
    return present


def _prune(dest: Path, keep: int) -> None:
    """Keep what any channel (or ``current``) names, and each channel's ``keep`` most
    recently served versions; history lists what is left."""
    state = read_state(dest)
    histories = _histories(state)
    keepers = {current_name(dest), *channel_links(dest).values()}
    keepers |= {str(e.get("dir")) for e in entries_of(state).values()}
    for names in histories.values():
        keepers |= set(names[:keep])
    for entry in (dest / VERSIONS).iterdir():
        name = entry.name
        if name in keepers or not valid_name(name) or file_kind(entry) != stat.S_IFDIR:
            continue
        remove_version(dest, name)
    for record in (dest / META / RECORDS).glob("*.json"):
        if not (dest / VERSIONS / record.stem).is_dir():
            discard(record)
    trimmed = {
        ch: [n for n in names if file_kind(dest / VERSIONS / n) == stat.S_IFDIR]
        for ch, names in histories.items()
    }
    if trimmed != histories:
        primary = state.get("channel")
        write_json(
            dest / STATE,
            state | {"history": trimmed, "recent": trimmed.get(str(primary), [])},
        )
