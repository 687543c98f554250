"""The host directory: what mvctl keeps under DIR, and reading what it serves.

A host knows a git URL, a model and a channel. Its directory holds:

    DIR/current -> versions/NAME        a symlink, replaced by rename (atomic)
    DIR/versions/NAME/                  complete, verified versions: the weights (file or
                                        directory) and a copy of manifest.yaml
    DIR/versions/.tmp-*                 downloads in progress; removed by the next run
    DIR/state.json                      what is served, from which commit, since when;
                                        ``channels``: one entry per followed channel
    DIR/channels/CHANNEL -> ../versions/NAME
                                        a symlink per followed channel that holds a
                                        version (for servers of the user's own)
    DIR/.mvctl/                         lock file, records/NAME.json (what each version
                                        directory holds), repo.git: a scratch bare git repo
                                        for one depth-1 fetch, emptied around it

NAME is the version (v1.4.0), or VERSION@COMMIT12 when a rewritten history re-uses the name
of the version being served: what `current` names is never replaced or deleted.

A host may follow several channels of its model (production first, the primary: what
``current`` and the top-level fields of state.json describe; canary, shadow). A poll is one
`git ls-remote` of all their alias tags; nothing more happens for a channel whose alias is
the tag object already served (or one already refused). A moved alias is fetched: its tag
object alone for a version kept under versions/ (swapped in without a download: a rollback,
a weight change), else a depth-1 fetch of it for the manifest and .dvc files, the weights
straight from the DVC remote, verified against the manifest's sha256 and sizes, and only
then made current. On any failure a channel keeps serving what it served.

Everything read from a registry commit is untrusted: whoever can push to the git remote
must not make the host read or write outside DIR. Object ids, sizes, paths and file kinds
are validated before use, only the remote URL is taken from the committed DVC config, a
download stops at the declared size, and no symlink under DIR is followed unless mvctl
made it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mvctl.errors import ConflictError, OperationalError
from mvctl.formats.names import NAME_RE, Version, redacted_url

STATE = "state.json"
CURRENT = "current"
VERSIONS = "versions"
CHANNELS = "channels"
META = ".mvctl"  # the host's own bookkeeping, apart from the weights
RECORDS = "records"
MANIFEST_COPY = "manifest.yaml"
TMP_PREFIX = ".tmp-"
_JSON_CAP = 1 << 20
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Served:
    """What a host directory serves."""

    model: str
    channel: str
    version: str
    commit: str
    path: Path  # the weights (file or directory), inside versions/VERSION
    since: str  # UTC ISO-8601 time of the swap
    repo: str
    kept: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "commit": self.commit,
            "path": str(self.path),
            "since": self.since,
            "repo": self.repo,
            "kept": list(self.kept),
        }


@dataclass(frozen=True)
class ChannelServed:
    """One channel a host directory follows: what it serves and, for a canary, its share
    of traffic in percent (None: not a weighted channel)."""

    channel: str
    version: str
    commit: str
    dir: str  # NAME under versions/
    path: Path  # the weights (file or directory), inside versions/NAME
    since: str
    weight: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "version": self.version,
            "commit": self.commit,
            "dir": self.dir,
            "path": str(self.path),
            "since": self.since,
            "weight": self.weight,
        }


def served_channels(dest: Path) -> dict[str, ChannelServed]:
    """Every channel ``dest`` serves, read from ``state.json`` alone (one rename replaces
    it, so a reader sees one consistent set). The primary channel (the top-level fields,
    what ``current`` names) comes first. A directory written before hosts followed several
    channels has no ``channels`` entry: its one channel is the primary. An entry whose
    version directory or record is missing or malformed is left out."""
    state = read_json(dest / STATE)
    if state is None:
        return {}
    root = dest.resolve()
    entries = state.get("channels")
    if not isinstance(entries, dict):
        primary = status(dest)
        if primary is None:
            return {}
        entries = {
            primary.channel: {
                "version": primary.version,
                "dir": current_name(dest),
                "commit": primary.commit,
                "since": primary.since,
            }
        }
    out: dict[str, ChannelServed] = {}
    for channel, entry in entries.items():
        if not isinstance(channel, str) or not isinstance(entry, dict):
            continue
        name = entry.get("dir")
        if not isinstance(name, str) or not valid_name(name):
            continue
        record = read_record(dest, name)
        if record is None or file_kind(dest / VERSIONS / name) != stat.S_IFDIR:
            continue
        weight = entry.get("weight")
        out[channel] = ChannelServed(
            channel=channel,
            version=record["version"],
            commit=record["commit"],
            dir=name,
            path=root / VERSIONS / name / record["weights"],
            since=str(entry.get("since", "")),
            weight=float(weight)
            if isinstance(weight, int | float)
            and not isinstance(weight, bool)
            and 0 < weight <= 100
            else None,
        )
    primary_name = state.get("channel")
    if primary_name in out:
        out = {primary_name: out[primary_name]} | {
            k: v for k, v in out.items() if k != primary_name
        }
    return out


def file_kind(path: Path) -> int | None:
    """The file type of ``path`` itself (a symlink is never followed); None when absent."""
    try:
        return stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        return None
    except OSError:
        return -1


def planted(path: Path) -> OperationalError:
    what = "a symlink" if file_kind(path) == stat.S_IFLNK else "not what mvctl made there"
    return OperationalError(
        f"{path} is {what}: refusing to follow or replace it",
        hint="remove it; mvctl creates what it needs under DIR itself",
    )


def real_dir(path: Path, *, create: bool = False) -> None:
    kind = file_kind(path)
    if kind is None and create:
        path.mkdir(exist_ok=True)
        kind = file_kind(path)
    if kind not in (None, stat.S_IFDIR):
        raise planted(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON file mvctl wrote; None for anything else (a symlink, a FIFO, a huge file)."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _JSON_CAP:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = json.loads(handle.read(_JSON_CAP + 1).decode("utf-8"))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # never written through: a planted symlink is removed, not followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)  # rename(2) replaces a symlink at ``path`` itself, never its target


def valid_name(name: str) -> bool:
    """A version directory's name: VERSION, or VERSION@COMMIT12."""
    version, _, suffix = name.partition("@")
    return Version.is_valid(version) and (
        not suffix or re.fullmatch(r"[0-9a-f]{12}", suffix) is not None
    )


def read_record(dest: Path, name: str) -> dict[str, Any] | None:
    """What ``versions/NAME`` holds, from mvctl's own record of it (validated)."""
    meta = dest / META
    if file_kind(meta) != stat.S_IFDIR or file_kind(meta / RECORDS) != stat.S_IFDIR:
        return None
    record = read_json(meta / RECORDS / f"{name}.json")
    if (
        record is None
        or record.get("dir") != name
        or not isinstance(record.get("model"), str)
        or not Version.is_valid(str(record.get("version")))
        or not _COMMIT_RE.fullmatch(str(record.get("commit")))
        or not _simple_name(record.get("weights"))
        or not isinstance(record.get("sizes"), dict)
        or not record["sizes"]
    ):
        return None
    return record


def _simple_name(value: object) -> bool:
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value


def status(dest: Path) -> Served | None:
    """What ``dest`` serves now (None if nothing yet). Reads only local files."""
    state = read_json(dest / STATE)
    name = current_name(dest)
    record = read_record(dest, name) if name else None
    if state is None or name is None or record is None:
        return None
    served = state.get("dir", state.get("version")) == name
    return Served(
        model=record["model"],
        channel=str(state.get("channel", "")),
        version=record["version"],
        commit=record["commit"],
        path=dest.resolve() / VERSIONS / name / record["weights"],
        since=str(state.get("since", "")) if served else "",
        repo=redacted_url(str(state.get("repo", ""))),
        kept=tuple(kept_versions(dest)),
    )


def _link_target(dest: Path) -> str | None:
    """The NAME in ``current -> versions/NAME`` (the form mvctl writes), else None."""
    try:
        target = (dest / CURRENT).readlink()
    except OSError:
        return None
    parts = PurePosixPath(target).parts
    if len(parts) != 2 or parts[0] != VERSIONS or not valid_name(parts[1]):
        return None
    return parts[1]


def channel_target(link: Path) -> str | None:
    """The NAME in ``channels/CHANNEL -> ../versions/NAME`` (the form mvctl writes), else None."""
    try:
        target = link.readlink()
    except OSError:
        return None
    parts = PurePosixPath(target).parts
    if len(parts) != 3 or parts[:2] != ("..", VERSIONS) or not valid_name(parts[2]):
        return None
    return parts[2]


def channel_links(dest: Path) -> dict[str, str]:
    """channel -> NAME of every ``channels/CHANNEL`` link of mvctl's form."""
    root = dest / CHANNELS
    if file_kind(root) != stat.S_IFDIR:
        return {}
    links = {}
    for entry in root.iterdir():
        name = channel_target(entry) if NAME_RE.match(entry.name) else None
        if name is not None and file_kind(entry) == stat.S_IFLNK:
            links[entry.name] = name
    return links


def _link_tmp(name: str) -> bool:
    """A link being made (``channels/.CHANNEL.tmp``), left by a killed run: never read."""
    return name.startswith(".") and name.endswith(".tmp")


def current_name(dest: Path) -> str | None:
    """The version directory ``current`` names, if it is one mvctl made."""
    name = _link_target(dest)
    if name is None or file_kind(dest / VERSIONS) != stat.S_IFDIR:
        return None
    return name if file_kind(dest / VERSIONS / name) == stat.S_IFDIR else None


def kept_versions(dest: Path) -> list[str]:
    root = dest / VERSIONS
    if file_kind(root) != stat.S_IFDIR:
        return []
    kept: list[tuple[tuple[Any, ...], str]] = []
    for entry in root.iterdir():
        name = entry.name
        if name.startswith(".") or not valid_name(name) or file_kind(entry) != stat.S_IFDIR:
            continue
        record = read_record(dest, name)
        if record is not None:
            kept.append((Version.parse(record["version"]).sort_key(), name))
    return [name for _, name in sorted(kept)]


def on_change(
    dest: Path,
    callback: Callable[[Served], None],
    *,
    stop: threading.Event,
    interval: float = 1.0,
) -> None:
    """Call ``callback`` whenever what ``dest`` serves changes, until ``stop`` is set: the hook
    for a model server whose weights are pulled by another process (``mvctl pull --watch``).
    Polls two small local files; call it in a thread of its own."""
    seen = status(dest)
    while not stop.wait(interval):
        now = status(dest)
        if now is not None and (
            seen is None or (now.version, now.commit) != (seen.version, seen.commit)
        ):
            callback(now)
        seen = now


@contextlib.contextmanager
def locked(dest: Path) -> Iterator[None]:
    import fcntl

    lock = dest / META / "lock"
    if file_kind(lock) not in (None, stat.S_IFREG):
        raise planted(lock)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConflictError(
                f"another mvctl pull is working in {dest}", hint="let it finish, then retry"
            ) from exc
        yield


def check_layout(dest: Path, model: str) -> None:
    """Refuse a DIR where something mvctl did not make sits at one of its paths (a planted
    symlink above all: following it would read or write outside DIR), or that serves
    another model."""
    for sub in (
        dest / META / RECORDS,
        dest / META / "repo.git",
        dest / META / "aliases.git",
        dest / CHANNELS,
    ):
        real_dir(sub)
    if file_kind(dest / STATE) not in (None, stat.S_IFREG):
        raise planted(dest / STATE)
    link = dest / CURRENT
    if file_kind(link) is not None and _link_target(dest) is None:
        raise planted(link)  # a dangling link of mvctl's form is fine: the swap replaces it
    for entry in (dest / VERSIONS).iterdir():
        if not entry.name.startswith(TMP_PREFIX) and file_kind(entry) == stat.S_IFLNK:
            raise planted(entry)
    if file_kind(dest / CHANNELS) == stat.S_IFDIR:
        # Only links of mvctl's form, named like channels: a link elsewhere (or a file, a
        # directory) is not mvctl's, and replacing or reading through it is refused.
        for entry in (dest / CHANNELS).iterdir():
            if _link_tmp(entry.name):
                continue
            if (
                not NAME_RE.match(entry.name)
                or file_kind(entry) != stat.S_IFLNK
                or channel_target(entry) is None
            ):
                raise planted(entry)
    state = read_json(dest / STATE)
    if state is not None and state.get("model", model) != model:
        raise OperationalError(
            f"{dest} serves {state.get('model')}, not {model}",
            hint="give each model a --dest of its own",
        )


def discard(path: Path) -> None:
    """Remove a file, a symlink (never its target) or a whole tree."""
    if file_kind(path) == stat.S_IFDIR:
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def clean_partial(dest: Path) -> None:
    """Leftovers of a run that was killed: never part of what is served."""
    for leftover in (dest / VERSIONS).iterdir():
        if leftover.name.startswith(TMP_PREFIX):
            discard(leftover)
    for tmp in (dest / f".{CURRENT}.tmp", dest / f".{STATE}.tmp"):
        discard(tmp)
    records = dest / META / RECORDS
    if file_kind(records) == stat.S_IFDIR:
        for leftover in records.glob(".*.tmp"):
            discard(leftover)
    if file_kind(dest / CHANNELS) == stat.S_IFDIR:
        for leftover in (dest / CHANNELS).iterdir():
            if _link_tmp(leftover.name):
                discard(leftover)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def remove_version(dest: Path, name: str) -> None:
    """Record first, then the directory out of sight by rename: a kill at any instant
    leaves no version directory whose record vouches for a partial tree."""
    discard(dest / META / RECORDS / f"{name}.json")
    aside = dest / VERSIONS / f"{TMP_PREFIX}gone-{name}-{os.getpid()}"
    (dest / VERSIONS / name).rename(aside)
    discard(aside)


def fsync_path(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fsync_tree(root: Path) -> None:
    """Data on disk before the rename that makes it a version (a crash leaves no torn file)."""
    for path in [*root.rglob("*"), root]:
        fsync_path(path)
