"""One poll: resolve every followed channel's alias with one ``git ls-remote``; for each
that moved, swap in a kept version (a rollback, a weight change) or a fresh download,
atomically, then run the --on-change hook once per changed channel."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mvctl._adapters import dvcfiles
from mvctl._adapters.gitdir import RemoteRef, check_url
from mvctl.common.progress import ProgressSink
from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.formats import tags
from mvctl.formats.names import check_channel, check_model, redacted_url
from mvctl.serving.aliases import AliasSource, LsRemote
from mvctl.serving.commit import RefusedCommit
from mvctl.serving.download import AliasRead, download
from mvctl.serving.layout import (
    META,
    VERSIONS,
    ChannelServed,
    channel_links,
    check_layout,
    clean_partial,
    current_name,
    file_kind,
    kept_versions,
    locked,
    read_record,
    real_dir,
    served_channels,
    status,
)
from mvctl.serving.request import (
    ChannelOutcome,
    ChannelsResult,
    HookResult,
    PullRequest,
    PullResult,
    Refused,
)
from mvctl.serving.swap import entries_of, read_state, swap, unlink_channel


def pull(req: PullRequest, progress: ProgressSink | None = None) -> PullResult:
    """One poll of every channel ``req`` follows; returns the primary's outcome. A
    channel's failure never stops the others: once every channel had its turn, the first
    error (the primary's before any other) is raised."""
    result = pull_channels(req, progress)
    for _, error in result.errors:
        raise error
    primary = primary_result(result)
    if primary is None:  # pragma: no cover - no error and no refusal to skip
        raise OperationalError("nothing pulled")
    return primary


def primary_result(result: ChannelsResult) -> PullResult | None:
    """The primary channel's outcome as a PullResult; None when it failed or was skipped."""
    first = result.outcomes[0]
    if first.error is not None or first.skipped or result.primary is None:
        return None
    return PullResult(result.primary, first.previous, first.changed, first.downloaded, first.hook)


def pull_channels(
    req: PullRequest,
    progress: ProgressSink | None = None,
    refused: Refused | None = None,
    source: AliasSource | None = None,
) -> ChannelsResult:
    """One poll of every channel ``req`` follows. A channel whose alias is still the tag
    object in ``refused`` is skipped (not fetched again). Errors that concern one channel
    are in its outcome; what concerns them all (the remote unreachable, the primary's
    alias missing, DIR unusable) is raised. ``source`` says how the aliases are read from
    git (default: ``git ls-remote``; see mvctl.serving.aliases)."""
    started = time.monotonic()
    try:
        result = _pull(req, progress, refused or {}, source or LsRemote())
    except OSError as exc:  # disk full, permissions: what is served stays as it was
        raise _write_error(req, exc) from exc
    return replace(result, elapsed=time.monotonic() - started)


def _write_error(req: PullRequest, exc: OSError) -> OperationalError:
    return OperationalError(
        f"cannot write in {req.dest}: {exc.strerror or exc}",
        hint="free space or fix permissions; the host keeps serving what it had",
    )


def _pull(
    req: PullRequest,
    progress: ProgressSink | None,
    refused: Refused,
    source: AliasSource,
) -> ChannelsResult:
    check_request(req)
    dest = req.dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise OperationalError(f"{dest} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    real_dir(dest / META, create=True)
    real_dir(dest / VERSIONS, create=True)
    with locked(dest):
        check_layout(dest, req.model)
        clean_partial(dest)
        refs = {ch: f"refs/tags/{tags.alias_tag(req.model, ch)}" for ch in req.followed}
        # The deregistrations (GTO's MODEL@vX.Y.Z!) come with the same ls-remote: an alias
        # on a deregistered version's commit is refused (its artifacts may be pruned).
        retired = f"refs/tags/{tags.deregister_tag(req.model, 'v*')}"
        remote = source.remote_refs(req, dest, refs, retired)
        deregistered = {
            ref.commit: name.removeprefix("refs/tags/")
            for name, ref in remote.items()
            if name not in refs.values()
        }
        before = served_channels(dest)
        # A primary that served here and lost its alias was cleared (mvctl unassign): it
        # keeps what it has until the next promotion. One that never served has nothing.
        if refs[req.channel] not in remote and req.channel not in before:
            alias = tags.alias_tag(req.model, req.channel)
            raise OperationalError(
                f"{redacted_url(req.repo)} has no channel alias {alias}",
                hint=f"has {req.model} been promoted to {req.channel} (and pushed)?",
            )
        outcomes = [
            _channel(
                req,
                dest,
                ch,
                remote.get(refs[ch]),
                refused.get(ch),
                before,
                progress,
                deregistered,
                source,
            )
            for ch in req.followed
        ]
        outcomes += _drop_unfollowed(req, dest, before)
        primary = status(dest)
    if req.on_change:
        outcomes = [_with_hook(req, o) if o.changed and o.error is None else o for o in outcomes]
    return ChannelsResult(primary, tuple(outcomes))


def check_request(req: PullRequest) -> None:
    """What the host's operator gave: usage errors, before anything is fetched."""
    check_model(req.model)
    check_channel(req.channel)
    for channel in req.followed:
        check_channel(channel)
    if req.followed[0] != req.channel:
        raise UsageError(f"the first channel followed must be {req.channel}, the primary")
    if len(set(req.followed)) != len(req.followed):
        raise UsageError("a channel is given twice", hint="give each --channel once")
    check_url(req.repo)
    if req.keep < 1:
        raise UsageError("--keep must be at least 1")
    if req.dvc_remote is not None:
        dvcfiles.check_dvc_remote(req.dvc_remote)


def _channel(
    req: PullRequest,
    dest: Path,
    channel: str,
    remote: RemoteRef | None,
    refused: str | None,
    before: dict[str, ChannelServed],
    progress: ProgressSink | None,
    deregistered: dict[str, str],
    source: AliasSource,
) -> ChannelOutcome:
    """One channel's turn: nothing, a removal, a skip, or a move; its failure is its own."""
    outcome = _turn(req, dest, channel, remote, refused, before, progress, deregistered, source)
    if remote is None:
        return outcome
    known = outcome.version if outcome.error is None and not outcome.skipped else None
    return replace(
        outcome,
        alias_commit=remote.commit,
        alias_version=known or _version_at(dest, req.model, remote.commit),
    )


def _turn(
    req: PullRequest,
    dest: Path,
    channel: str,
    remote: RemoteRef | None,
    refused: str | None,
    before: dict[str, ChannelServed],
    progress: ProgressSink | None,
    deregistered: dict[str, str],
    source: AliasSource,
) -> ChannelOutcome:
    held = before.get(channel)
    try:
        if remote is None and channel == req.channel:  # cleared: it keeps what it has
            return _outcome(channel, held, held, empty=True)
        if remote is None:  # a canary stopped: the server no longer routes to it
            return _remove(dest, channel, held)
        if _unchanged(dest, channel, remote, primary=channel == req.channel):
            return _outcome(channel, held, held)
        if remote.object == refused:
            return _outcome(channel, held, held, skipped=True)
        if remote.commit in deregistered:
            alias = tags.alias_tag(req.model, channel)
            raise RefusedCommit(
                remote.commit,
                f"{alias} -> {remote.commit[:12]} refused: that version is deregistered "
                f"({deregistered[remote.commit]}; 'mvctl gc' may have pruned its artifacts)",
                hint="the host keeps serving what it had and follows the alias's next move",
                alias=remote.object,
            )
        return _move(req, dest, channel, remote, held, progress, source)
    except MvctlError as exc:
        return _outcome(channel, held, held, error=exc)
    except OSError as exc:
        return _outcome(channel, held, held, error=_write_error(req, exc))


def _outcome(
    channel: str, served: ChannelServed | None, held: ChannelServed | None, **what: Any
) -> ChannelOutcome:
    """``channel`` serving ``served`` after the poll, ``held`` before it."""
    return ChannelOutcome(
        channel,
        served,
        previous=held.version if held else None,
        previous_weight=held.weight if held else None,
        **what,
    )


def _unchanged(dest: Path, channel: str, remote: RemoteRef, *, primary: bool) -> bool:
    """The alias is the tag object recorded, and what the channel names is in place: a
    poll with no change reads a few local files and nothing else."""
    state = read_state(dest)
    entry = entries_of(state).get(channel)
    if entry is None or entry.get("alias") != remote.object:
        return False
    name = entry.get("dir")
    record = read_record(dest, name) if isinstance(name, str) else None
    if (
        record is None
        or record["commit"] != remote.commit
        or file_kind(dest / VERSIONS / str(name)) != stat.S_IFDIR
        or channel_links(dest).get(channel) != name
    ):
        return False
    return not primary or (state.get("channel") == channel and current_name(dest) == name)


def _move(
    req: PullRequest,
    dest: Path,
    channel: str,
    remote: RemoteRef,
    held: ChannelServed | None,
    progress: ProgressSink | None,
    source: AliasSource,
) -> ChannelOutcome:
    name, alias, downloaded = _version_for(req, dest, channel, remote.commit, progress, source)
    served = swap(req, dest, channel, name, alias)
    changed = held is None or held.dir != name or held.weight != served.weight
    return _outcome(channel, served, held, changed=changed, downloaded=downloaded)


def _version_for(
    req: PullRequest,
    dest: Path,
    channel: str,
    commit: str,
    progress: ProgressSink | None,
    source: AliasSource,
) -> tuple[str, AliasRead, bool]:
    """The version directory the alias names, the alias as fetched, and whether it was
    downloaded: a kept version needs only the alias's tag object (for its weight)."""
    name = _cached_at(dest, req.model, commit)
    if name is not None:
        alias = source.alias(req, dest, channel)
        if alias.commit != commit:  # the alias moved on since ls-remote
            name = _cached_at(dest, req.model, alias.commit)
        if name is not None:
            return name, alias, False
    name, alias = download(req, dest, channel, progress)
    return name, alias, True


def _remove(dest: Path, channel: str, held: ChannelServed | None) -> ChannelOutcome:
    """A channel whose alias is gone: out of state.json and channels/; its version stays
    under versions/ (a canary stopped may come back, or be promoted)."""
    present = unlink_channel(dest, channel)
    if held is None and not present:
        return ChannelOutcome(channel, None)
    return _outcome(channel, None, held, changed=True, removed=True)


def _drop_unfollowed(
    req: PullRequest, dest: Path, before: dict[str, ChannelServed]
) -> list[ChannelOutcome]:
    """Channels a previous run followed and this one does not: a server must not route
    to a channel nobody updates any more."""
    gone = (set(entries_of(read_state(dest))) | set(channel_links(dest))) - set(req.followed)
    return [_remove(dest, channel, before.get(channel)) for channel in sorted(gone)]


def _cached_at(dest: Path, model: str, commit: str) -> str | None:
    for name in kept_versions(dest):
        record = read_record(dest, name)
        if (
            record is not None
            and record["model"] == model
            and record["commit"] == commit
            and _intact(dest / VERSIONS / name, record["sizes"])
        ):
            return name
    return None


def _version_at(dest: Path, model: str, commit: str) -> str | None:
    """The version a kept directory's record puts on ``commit`` (None: not kept here)."""
    for name in kept_versions(dest):
        record = read_record(dest, name)
        if record is not None and record["model"] == model and record["commit"] == commit:
            return str(record["version"])
    return None


def _intact(version_dir: Path, sizes: dict[str, Any]) -> bool:
    """Cheap re-check of a kept version before it is served again: every file is there,
    a regular file reached through real directories, with its recorded size (the full
    sha256 was verified when it was downloaded)."""
    for rel, size in sizes.items():
        path = version_dir
        parts = str(rel).split("/")
        for part in parts[:-1]:
            path = path / part
            if file_kind(path) != stat.S_IFDIR:
                return False
        try:
            info = (path / parts[-1]).lstat()
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
    return True


def _with_hook(req: PullRequest, outcome: ChannelOutcome) -> ChannelOutcome:
    served = outcome.served
    weight = served.weight if served else None
    env = {
        **os.environ,
        **req.hook_env,
        "MVCTL_MODEL": req.model,
        "MVCTL_CHANNEL": outcome.channel,
        "MVCTL_VERSION": served.version if served else "",  # empty: the channel was removed
        "MVCTL_PATH": str(served.path) if served else "",
        "MVCTL_PREVIOUS": outcome.previous or "",
        "MVCTL_WEIGHT": f"{weight:g}" if weight is not None else "",
    }
    argv = list(req.on_change)
    if req.shell:
        argv = ["/bin/sh", "-c", " ".join(argv)]
    try:
        proc = subprocess.run(argv, env=env, check=False)
    except OSError as exc:
        raise OperationalError(f"--on-change command could not start: {exc.strerror}") from exc
    return replace(outcome, hook=HookResult(tuple(argv), proc.returncode))
