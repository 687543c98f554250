"""One poll: resolve the alias with one ``git ls-remote``; if it moved, swap in a kept
version (a rollback) or a fresh download, atomically, then run the --on-change hook."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mvctl._adapters import dvcfiles
from mvctl._adapters.gitdir import check_url, ls_remote_commit
from mvctl.errors import OperationalError, UsageError
from mvctl.formats import tags
from mvctl.formats.names import check_channel, check_model, redacted_url
from mvctl.serving.download import download
from mvctl.serving.layout import (
    CURRENT,
    META,
    RECORDS,
    STATE,
    VERSIONS,
    Served,
    check_layout,
    clean_partial,
    discard,
    file_kind,
    fsync_path,
    kept_versions,
    locked,
    read_json,
    read_record,
    real_dir,
    remove_version,
    status,
    utc_now,
    valid_name,
    write_json,
)
from mvctl.serving.request import HookResult, PullRequest, PullResult


def pull(req: PullRequest, progress: Callable[[int], None] | None = None) -> PullResult:
    """One poll: resolve the alias, and if it moved, make its version current."""
    result = guarded(req, progress, refused=None)
    if result is None:  # pragma: no cover - only with a refused commit to skip
        raise OperationalError("nothing pulled")
    return result


def guarded(
    req: PullRequest, progress: Callable[[int], None] | None, refused: str | None
) -> PullResult | None:
    try:
        return _pull(req, progress, refused)
    except OSError as exc:  # disk full, permissions: what is served stays as it was
        raise OperationalError(
            f"cannot write in {req.dest}: {exc.strerror or exc}",
            hint="free space or fix permissions; the host keeps serving what it had",
        ) from exc


def _pull(
    req: PullRequest, progress: Callable[[int], None] | None, refused: str | None
) -> PullResult | None:
    """None when the alias still names ``refused``, a commit already refused."""
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
        alias = tags.alias_tag(req.model, req.channel)
        commit = ls_remote_commit(req.repo, f"refs/tags/{alias}", dest)
        if commit is None:
            raise OperationalError(
                f"{redacted_url(req.repo)} has no channel alias {alias}",
                hint=f"has {req.model} been promoted to {req.channel} (and pushed)?",
            )
        before = status(dest)
        if before is not None and before.commit == commit:
            return PullResult(before, before.version, changed=False, downloaded=False)
        if commit == refused:
            return None
        cached = _cached_at(dest, req.model, commit)
        downloaded = cached is None
        name = cached or download(req, dest, commit, progress)
        served = _swap(req, dest, name)
    hook = _run_hook(req, served, before) if req.on_change else None
    previous = before.version if before else None
    return PullResult(served, previous, changed=True, downloaded=downloaded, hook=hook)


def check_request(req: PullRequest) -> None:
    """What the host's operator gave: usage errors, before anything is fetched."""
    check_model(req.model)
    check_channel(req.channel)
    check_url(req.repo)
    if req.keep < 1:
        raise UsageError("--keep must be at least 1")
    if req.dvc_remote is not None:
        dvcfiles.check_dvc_remote(req.dvc_remote)


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


def _swap(req: PullRequest, dest: Path, name: str) -> Served:
    link = dest / f".{CURRENT}.tmp"
    discard(link)
    link.symlink_to(f"{VERSIONS}/{name}")
    link.replace(dest / CURRENT)  # rename(2): readers see the old or the new, never neither
    fsync_path(dest)
    record = read_record(dest, name) or {}
    earlier = (read_json(dest / STATE) or {}).get("recent")
    recent = [name] + [
        v
        for v in (earlier if isinstance(earlier, list) else [])
        if isinstance(v, str) and v != name
    ]
    write_json(
        dest / STATE,
        {
            "model": req.model,
            "channel": req.channel,
            "version": record.get("version"),
            "dir": name,
            "commit": record.get("commit"),
            "repo": redacted_url(req.repo),  # printed by --status: never a password
            "since": utc_now(),
            "recent": recent,
        },
    )
    _prune(dest, recent, req.keep, name)
    served = status(dest)
    if served is None:  # pragma: no cover - just written
        raise OperationalError(f"{dest} lost its current version")
    return served


def _prune(dest: Path, recent: Sequence[str], keep: int, current: str) -> None:
    """Keep the ``keep`` most recently served versions; never the current one's files."""
    keepers = set(list(recent)[:keep]) | {current}
    for entry in (dest / VERSIONS).iterdir():
        name = entry.name
        if name in keepers or not valid_name(name) or file_kind(entry) != stat.S_IFDIR:
            continue
        remove_version(dest, name)
    for record in (dest / META / RECORDS).glob("*.json"):
        if not (dest / VERSIONS / record.stem).is_dir():
            discard(record)


def _run_hook(req: PullRequest, served: Served, before: Served | None) -> HookResult:
    env = {
        **os.environ,
        **req.hook_env,
        "MVCTL_MODEL": served.model,
        "MVCTL_CHANNEL": served.channel,
        "MVCTL_VERSION": served.version,
        "MVCTL_PATH": str(served.path),
        "MVCTL_PREVIOUS": before.version if before else "",
    }
    argv = list(req.on_change)
    if req.shell:
        argv = ["/bin/sh", "-c", " ".join(argv)]
    try:
        proc = subprocess.run(argv, env=env, check=False)
    except OSError as exc:
        raise OperationalError(f"--on-change command could not start: {exc.strerror}") from exc
    return HookResult(tuple(argv), proc.returncode)
