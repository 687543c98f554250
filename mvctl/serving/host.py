"""The serving host: follow a channel, swap weights atomically, verified.

A host knows a git URL, a model and a channel. Its directory holds:

    DIR/current -> versions/NAME        a symlink, replaced by rename (atomic)
    DIR/versions/NAME/                  complete, verified versions: the weights (file or
                                        directory) and a copy of manifest.yaml
    DIR/versions/.tmp-*                 downloads in progress; removed by the next run
    DIR/state.json                      what is served, from which commit, since when
    DIR/.mvctl/                         lock file, records/NAME.json (what each version
                                        directory holds), a bare git cache for shallow fetches

NAME is the version (v1.4.0), or VERSION@COMMIT12 when a rewritten history re-uses the name
of the version being served: what `current` names is never replaced or deleted.

A poll is one `git ls-remote` of the alias tag; nothing more happens when the alias names
the commit already served (or a commit already refused). A version kept under versions/ is
swapped back in without a download (a rollback); anything else is fetched (the manifest and
.dvc files from a depth-1 fetch of the alias, the weights straight from the DVC remote),
verified against the manifest's sha256 and sizes, and only then made current. On any
failure the host keeps serving what it served.

Everything read from a registry commit is untrusted: whoever can push to the git remote
must not make the host read or write outside DIR. Object ids, sizes, paths and file kinds
are validated before use, only the remote URL is taken from the committed DVC config, a
download stops at the declared size, and no symlink under DIR is followed unless mvctl
made it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from mvctl._adapters import dvc
from mvctl._adapters.gitdir import BLOB_LIMIT, GitDir, check_url, ls_remote_commit
from mvctl._adapters.gitrun import GitFailed
from mvctl.common import yamlio
from mvctl.common.hashing import sha256_file, sha256_tree
from mvctl.errors import ConflictError, MvctlError, OperationalError, PolicyError, UsageError
from mvctl.formats import manifest as manifest_schema
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.names import Version, check_channel, check_model, redacted_url, shown

STATE = "state.json"
CURRENT = "current"
VERSIONS = "versions"
META = ".mvctl"  # the host's own bookkeeping, apart from the weights
RECORDS = "records"
MANIFEST_COPY = "manifest.yaml"
_TMP = ".tmp-"
_BLOB_CAP = BLOB_LIMIT  # a manifest, a .dvc file or a DVC config is a few kB
_NAME_MAX = 255  # bytes in one file name (ext4, xfs, apfs...)
_PATH_MAX = 4096  # bytes in a path the kernel takes
_JSON_CAP = 1 << 20
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
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
class HookResult:
    argv: tuple[str, ...]
    returncode: int


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
            "hook": (
                {"argv": list(self.hook.argv), "returncode": self.hook.returncode}
                if self.hook
                else None
            ),
        }


@dataclass(frozen=True)
class PullRequest:
    repo: str
    model: str
    channel: str
    dest: Path
    keep: int = 3
    dvc_remote: str | None = None
    on_change: tuple[str, ...] = ()  # argv; run after a swap
    shell: bool = False  # run on_change[0] through /bin/sh -c
    hook_env: dict[str, str] = field(default_factory=dict)


# --- reading what a host serves --------------------------------------------------------


class RefusedCommit(OperationalError):
    """The alias names a commit whose contents fail validation: refused until it moves."""

    def __init__(self, commit: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.commit = commit


def _kind(path: Path) -> int | None:
    """The file type of ``path`` itself (a symlink is never followed); None when absent."""
    try:
        return stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        return None
    except OSError:
        return -1


def _planted(path: Path) -> OperationalError:
    what = "a symlink" if _kind(path) == stat.S_IFLNK else "not what mvctl made there"
    return OperationalError(
        f"{path} is {what}: refusing to follow or replace it",
        hint="remove it; mvctl creates what it needs under DIR itself",
    )


def _real_dir(path: Path, *, create: bool = False) -> None:
    kind = _kind(path)
    if kind is None and create:
        path.mkdir(exist_ok=True)
        kind = _kind(path)
    if kind not in (None, stat.S_IFDIR):
        raise _planted(path)


def _read_json(path: Path) -> dict[str, Any] | None:
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


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # never written through: a planted symlink is removed, not followed
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)  # rename(2) replaces a symlink at ``path`` itself, never its target


def _valid_name(name: str) -> bool:
    """A version directory's name: VERSION, or VERSION@COMMIT12."""
    version, _, suffix = name.partition("@")
    return Version.is_valid(version) and (
        not suffix or re.fullmatch(r"[0-9a-f]{12}", suffix) is not None
    )


def _record(dest: Path, name: str) -> dict[str, Any] | None:
    """What ``versions/NAME`` holds, from mvctl's own record of it (validated)."""
    meta = dest / META
    if _kind(meta) != stat.S_IFDIR or _kind(meta / RECORDS) != stat.S_IFDIR:
        return None
    record = _read_json(meta / RECORDS / f"{name}.json")
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
    state = _read_json(dest / STATE)
    name = _current_name(dest)
    record = _record(dest, name) if name else None
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
        kept=tuple(_kept_versions(dest)),
    )


def _link_target(dest: Path) -> str | None:
    """The NAME in ``current -> versions/NAME`` (the form mvctl writes), else None."""
    try:
        target = (dest / CURRENT).readlink()
    except OSError:
        return None
    parts = PurePosixPath(target).parts
    if len(parts) != 2 or parts[0] != VERSIONS or not _valid_name(parts[1]):
        return None
    return parts[1]


def _current_name(dest: Path) -> str | None:
    """The version directory ``current`` names, if it is one mvctl made."""
    name = _link_target(dest)
    if name is None or _kind(dest / VERSIONS) != stat.S_IFDIR:
        return None
    return name if _kind(dest / VERSIONS / name) == stat.S_IFDIR else None


def _kept_versions(dest: Path) -> list[str]:
    root = dest / VERSIONS
    if _kind(root) != stat.S_IFDIR:
        return []
    kept: list[tuple[tuple[Any, ...], str]] = []
    for entry in root.iterdir():
        name = entry.name
        if name.startswith(".") or not _valid_name(name) or _kind(entry) != stat.S_IFDIR:
            continue
        record = _record(dest, name)
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


# --- pulling ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    import fcntl

    lock = dest / META / "lock"
    if _kind(lock) not in (None, stat.S_IFREG):
        raise _planted(lock)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | _NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConflictError(
                f"another mvctl pull is working in {dest}", hint="let it finish, then retry"
            ) from exc
        yield


def _check_layout(dest: Path, model: str) -> None:
    """Refuse a DIR where something mvctl did not make sits at one of its paths (a planted
    symlink above all: following it would read or write outside DIR), or that serves
    another model."""
    for sub in (dest / META / RECORDS, dest / META / "repo.git"):
        _real_dir(sub)
    if _kind(dest / STATE) not in (None, stat.S_IFREG):
        raise _planted(dest / STATE)
    link = dest / CURRENT
    if _kind(link) is not None and _link_target(dest) is None:
        raise _planted(link)  # a dangling link of mvctl's form is fine: the swap replaces it
    for entry in (dest / VERSIONS).iterdir():
        if not entry.name.startswith(_TMP) and _kind(entry) == stat.S_IFLNK:
            raise _planted(entry)
    state = _read_json(dest / STATE)
    if state is not None and state.get("model", model) != model:
        raise OperationalError(
            f"{dest} serves {state.get('model')}, not {model}",
            hint="give each model a --dest of its own",
        )


def _discard(path: Path) -> None:
    """Remove a file, a symlink (never its target) or a whole tree."""
    if _kind(path) == stat.S_IFDIR:
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _clean_partial(dest: Path) -> None:
    """Leftovers of a run that was killed: never part of what is served."""
    for leftover in (dest / VERSIONS).iterdir():
        if leftover.name.startswith(_TMP):
            _discard(leftover)
    for tmp in (dest / f".{CURRENT}.tmp", dest / f".{STATE}.tmp"):
        _discard(tmp)
    records = dest / META / RECORDS
    if _kind(records) == stat.S_IFDIR:
        for leftover in records.glob(".*.tmp"):
            _discard(leftover)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(req: PullRequest, progress: Callable[[int], None] | None = None) -> PullResult:
    """One poll: resolve the alias, and if it moved, make its version current."""
    result = _guarded(req, progress, refused=None)
    if result is None:  # pragma: no cover - only with a refused commit to skip
        raise OperationalError("nothing pulled")
    return result


def _guarded(
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
    _check_request(req)
    dest = req.dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise OperationalError(f"{dest} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    _real_dir(dest / META, create=True)
    _real_dir(dest / VERSIONS, create=True)
    with _locked(dest):
        _check_layout(dest, req.model)
        _clean_partial(dest)
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
        name = cached or _download(req, dest, commit, progress)
        served = _swap(req, dest, name)
    hook = _run_hook(req, served, before) if req.on_change else None
    previous = before.version if before else None
    return PullResult(served, previous, changed=True, downloaded=downloaded, hook=hook)


def _check_request(req: PullRequest) -> None:
    """What the host's operator gave: usage errors, before anything is fetched."""
    check_model(req.model)
    check_channel(req.channel)
    check_url(req.repo)
    if req.keep < 1:
        raise UsageError("--keep must be at least 1")
    if req.dvc_remote is not None:
        dvc.check_dvc_remote(req.dvc_remote)


def _cached_at(dest: Path, model: str, commit: str) -> str | None:
    for name in _kept_versions(dest):
        record = _record(dest, name)
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
            if _kind(path) != stat.S_IFDIR:
                return False
        try:
            info = (path / parts[-1]).lstat()
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            return False
    return True


# --- reading a commit: everything in it is untrusted -----------------------------------


@dataclass(frozen=True)
class _Weights:
    path: str  # in the registry
    name: str  # the file or directory under versions/NAME
    md5: str
    sha256: str
    size: int
    files: tuple[tuple[str, str, str, int], ...] = ()  # (path, md5, sha256, size) of a dir

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass(frozen=True)
class _Plan:
    """What a commit asks the host to download, every field validated."""

    version: str
    manifest: str
    weights: _Weights
    remote: tuple[str, str] | None  # (name, url) from the committed .dvc/config


def _check_relpath(value: object, what: str) -> str:
    """A normalised relative POSIX path: no '..', no '.', no empty or absolute parts."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 4096
        or any(c in value for c in "\0\\\n\r")
        or any(part in ("", ".", "..") for part in value.split("/"))
    ):
        raise OperationalError(f"{what} is not a safe relative path: {shown(str(value))}")
    if any(len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX for part in value.split("/")):
        raise OperationalError(f"{what} has a name longer than {_NAME_MAX} bytes")
    return value


def _check_fits(dest: Path, version: str, weights: _Weights) -> None:
    """Every path the download creates fits in PATH_MAX: the longest is a file of the
    weights under ``versions/.tmp-VERSION-XXXXXXXX/payload/``."""
    base = len(os.fsencode(dest / VERSIONS)) + len(f"/{_TMP}{version}-XXXXXXXX/payload/")
    longest = max((len(f[0].encode()) + 1 for f in weights.files), default=0)
    if base + len(weights.name.encode()) + longest >= _PATH_MAX:
        raise OperationalError(
            f"weights {shown(weights.path)} have paths too long for {dest} ({_PATH_MAX} bytes)"
        )


def _check_size(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OperationalError(f"{what} has no valid size (a non-negative integer)")
    return value


def _check_sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value):
        raise OperationalError(f"{what} has no valid sha256")
    return value


def _read_file(cache: GitDir, commit: str, path: str) -> str | None:
    """A regular file of ``commit`` as UTF-8 text (None when absent); a symlink, a
    submodule, a huge or non-UTF-8 file is refused."""
    try:
        listing = cache.run(
            "--literal-pathspecs", "ls-tree", "-l", "-z", commit, "--", path, action=f"list {path}"
        )
    except GitFailed:  # a blob the filtered fetch left on the server: it is too big
        raise OperationalError(f"{path} is larger than {_BLOB_CAP} bytes") from None
    for item in listing.split("\0"):
        meta, _, name = item.partition("\t")
        if name != path:
            continue
        fields = meta.split()
        if len(fields) != 4 or fields[0] not in ("100644", "100755") or fields[1] != "blob":
            raise OperationalError(f"{path} is not a regular file in the commit")
        if not fields[3].isdigit() or int(fields[3]) > _BLOB_CAP:
            raise OperationalError(f"{path} is larger than {_BLOB_CAP} bytes")
        text = cache.run("cat-file", "blob", fields[2], action=f"read {path}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise OperationalError(f"{path} is not UTF-8 text") from None
        return text
    return None


def _read_commit(req: PullRequest, cache: GitDir, commit: str, dest: Path) -> _Plan:
    where = manifest_path(req.model)
    text = _read_file(cache, commit, where)
    if text is None:
        raise OperationalError(f"the commit has no manifest of {req.model}")
    manifest = manifest_schema.parse(text, where)
    version = str(manifest["version"])
    if manifest["model"] != req.model:
        raise OperationalError(f"{where} is a manifest of {shown(str(manifest['model']))}")
    weights = manifest["weights"]
    if len(weights) != 1 or not isinstance(weights[0], dict):
        raise OperationalError(f"{req.model} {version} lists {len(weights)} weights entries")
    entry: dict[str, Any] = weights[0]
    path = _check_relpath(entry.get("path"), "the weights path")
    what = f"weights {path}"
    md5 = dvc.check_object_id(entry.get("md5"), what)
    files: list[tuple[str, str, str, int]] = []
    if md5.endswith(".dir"):
        listed = entry.get("files")
        if not isinstance(listed, list) or not listed:
            raise OperationalError(f"{what} is a directory with no list of files")
        for i, item in enumerate(listed):
            if not isinstance(item, dict):
                raise OperationalError(f"{what}: files[{i}] is not a mapping")
            rel = _check_relpath(item.get("path"), f"{what}: files[{i}]")
            oid = dvc.check_object_id(item.get("md5"), f"{what}: {rel}")
            if oid.endswith(".dir"):
                raise OperationalError(f"{what}: {rel} has a directory's object id")
            files.append(
                (
                    rel,
                    oid,
                    _check_sha256(item.get("sha256"), rel),
                    _check_size(item.get("size"), rel),
                )
            )
        if len({f[0] for f in files}) != len(files):
            raise OperationalError(f"{what} lists a file twice")
    plan = _Weights(
        path=path,
        name=path.rsplit("/", 1)[-1],
        md5=md5,
        sha256=_check_sha256(entry.get("sha256"), what),
        size=_check_size(entry.get("size"), what),
        files=tuple(sorted(files)),
    )
    _check_fits(dest, version, plan)
    _check_dvcfile(cache, commit, plan)
    remote = None
    if req.dvc_remote is None:
        config = _read_file(cache, commit, ".dvc/config")
        if config is None:
            raise OperationalError("the commit has no .dvc/config: no DVC remote")
        remote = dvc.remote_from_config(config, ".dvc/config")
    return _Plan(version=version, manifest=text, weights=plan, remote=remote)


def _check_dvcfile(cache: GitDir, commit: str, weights: _Weights) -> None:
    where = f"{weights.path}.dvc"
    text = _read_file(cache, commit, where)
    data = yamlio.loads(text, where) if text is not None else None
    outs = data.get("outs") if isinstance(data, dict) else None
    out = outs[0] if isinstance(outs, list) and len(outs) == 1 else None
    if (
        not isinstance(out, dict)
        or out.get("md5") != weights.md5
        or out.get("path", weights.name) != weights.name
        or (not weights.is_dir and out.get("size", weights.size) != weights.size)
    ):
        raise OperationalError(f"{where} does not match the manifest")


# --- downloading -------------------------------------------------------------------------


def _download(
    req: PullRequest, dest: Path, commit: str, progress: Callable[[int], None] | None
) -> str:
    alias = tags.alias_tag(req.model, req.channel)
    # The cache holds one fetch, emptied before (stale locks, half-written packs of a killed
    # fetch) and after it (whatever else a commit holds never piles up on the host).
    with GitDir.scratch(dest / META / "repo.git") as cache:
        fetched = cache.fetch_shallow(req.repo, f"refs/tags/{alias}", "refs/mvctl/alias")
        try:
            plan = _read_commit(req, cache, fetched, dest)
        except MvctlError as exc:
            raise RefusedCommit(
                fetched,
                f"{alias} -> {fetched[:12]} refused: {exc.message}",
                hint="the host keeps serving what it had and follows the alias's next move",
            ) from exc
    weights = plan.weights
    needed = max(weights.size, sum(f[3] for f in weights.files))
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise OperationalError(
            f"{req.model} {plan.version} needs {needed} bytes; {free} are free in {dest}",
            hint="free space; the host keeps serving what it had",
        )
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP}{plan.version}-", dir=dest / VERSIONS))
    payload = tmp / "payload"
    try:
        payload.mkdir()
        with dvc.remote_store(tmp / "dvc", plan.remote, req.dvc_remote, progress) as store:
            if weights.is_dir:
                _fetch_tree(store, weights, payload / weights.name, tmp / "listing")
            else:
                store.fetch(weights.md5, payload / weights.name, weights.size)
        sizes = _verify(payload, weights)
        if weights.name != MANIFEST_COPY:  # the weights win: bookkeeping lives in .mvctl
            (payload / MANIFEST_COPY).write_text(plan.manifest, encoding="utf-8")
        _fsync_tree(payload)
        return _place(req, dest, plan, fetched, payload, sizes)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fetch_tree(store: Any, weights: _Weights, root: Path, scratch: Path) -> None:
    listing = store.listing(weights.md5, scratch)
    expected = {rel: (oid, size) for rel, oid, _, size in weights.files}
    if dict(listing) != {rel: oid for rel, (oid, _) in expected.items()}:
        raise _mismatch(weights)
    root.mkdir()
    for rel, oid in sorted(listing):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(oid, target, expected[rel][1])


def _mismatch(weights: _Weights) -> PolicyError:
    return PolicyError(
        f"downloaded weights for {weights.path} do not match the manifest's sha256",
        hint="the DVC remote holds a corrupted object; the host keeps serving what it had",
    )


def _verify(payload: Path, weights: _Weights) -> dict[str, int]:
    """Every byte checked against the manifest; returns {relative path: size}."""
    target = payload / weights.name
    if not weights.is_dir:
        got = sha256_file(target)
        if got.sha256 != weights.sha256 or got.size != weights.size:
            raise _mismatch(weights)
        return {weights.name: got.size}
    files, tree = sha256_tree(target)
    actual = sorted((f.path, f.sha256, f.size) for f in files)
    expected = sorted((rel, sha, size) for rel, _, sha, size in weights.files)
    if tree != weights.sha256 or actual != expected:
        raise _mismatch(weights)
    return {f"{weights.name}/{rel}": size for rel, _, size in actual}


def _place(
    req: PullRequest, dest: Path, plan: _Plan, commit: str, payload: Path, sizes: dict[str, int]
) -> str:
    """Give a verified download its version directory: a fresh one, never the one
    ``current`` names (a rewritten history may re-use a version's name)."""
    current = _current_name(dest)
    name = next(n for n in (plan.version, f"{plan.version}@{commit[:12]}") if n != current)
    final = dest / VERSIONS / name
    if _kind(final) is not None:  # an older download of that name, no longer trusted
        _remove_version(dest, name)
    record = {
        "model": req.model,
        "version": plan.version,
        "dir": name,
        "commit": commit,
        "weights": plan.weights.name,
        "sizes": sizes,
        "fetched": _now(),
    }
    records = dest / META / RECORDS
    records.mkdir(exist_ok=True)
    _write_json(records / f"{name}.json", record)
    payload.rename(final)
    _fsync(dest / VERSIONS)
    return name


def _remove_version(dest: Path, name: str) -> None:
    """Record first, then the directory out of sight by rename: a kill at any instant
    leaves no version directory whose record vouches for a partial tree."""
    _discard(dest / META / RECORDS / f"{name}.json")
    aside = dest / VERSIONS / f"{_TMP}gone-{name}-{os.getpid()}"
    (dest / VERSIONS / name).rename(aside)
    _discard(aside)


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Data on disk before the rename that makes it a version (a crash leaves no torn file)."""
    for path in [*root.rglob("*"), root]:
        _fsync(path)


def _swap(req: PullRequest, dest: Path, name: str) -> Served:
    link = dest / f".{CURRENT}.tmp"
    _discard(link)
    link.symlink_to(f"{VERSIONS}/{name}")
    link.replace(dest / CURRENT)  # rename(2): readers see the old or the new, never neither
    _fsync(dest)
    record = _record(dest, name) or {}
    earlier = (_read_json(dest / STATE) or {}).get("recent")
    recent = [name] + [
        v
        for v in (earlier if isinstance(earlier, list) else [])
        if isinstance(v, str) and v != name
    ]
    _write_json(
        dest / STATE,
        {
            "model": req.model,
            "channel": req.channel,
            "version": record.get("version"),
            "dir": name,
            "commit": record.get("commit"),
            "repo": redacted_url(req.repo),  # printed by --status: never a password
            "since": _now(),
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
        if name in keepers or not _valid_name(name) or _kind(entry) != stat.S_IFDIR:
            continue
        _remove_version(dest, name)
    for record in (dest / META / RECORDS).glob("*.json"):
        if not (dest / VERSIONS / record.stem).is_dir():
            _discard(record)


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


def follow(
    req: PullRequest,
    *,
    interval: float,
    stop: threading.Event,
    on_result: Callable[[PullResult], None],
    on_error: Callable[[MvctlError, float], None],
    jitter: float = 0.1,
) -> None:
    """Poll until ``stop`` is set. Failures (an unreachable remote, a corrupted object) are
    reported and retried with exponential backoff while the current version keeps serving.
    A malformed commit is reported once and skipped at the normal interval (a poll costs
    one ls-remote) until the alias moves on: a good rollback still arrives in one poll."""
    check_interval(interval)
    _check_request(req)  # a usage error is not retried
    failures = 0
    refused: str | None = None
    while not stop.is_set():
        delay = interval
        try:
            result = _guarded(req, None, refused)
            failures = 0
            if result is not None:
                refused = None
                on_result(result)
        except RefusedCommit as exc:
            failures, refused = 0, exc.commit
            on_error(exc, delay)
        except MvctlError as exc:
            failures += 1
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
            on_error(exc, delay)
        except Exception as exc:  # a poller of a fleet never dies of one poll
            failures += 1
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
            on_error(OperationalError(f"unexpected {type(exc).__name__}: {exc}"), delay)
        delay *= 1 + random.uniform(-jitter, jitter)  # noqa: S311 - spreading a fleet's polls
        stop.wait(max(delay, 0.05))


MAX_INTERVAL = 7 * 24 * 3600.0


def check_interval(interval: float) -> float:
    """A poll interval: finite, positive, at most a week (NaN or 0 would busy-loop git)."""
    if not (math.isfinite(interval) and 0 < interval <= MAX_INTERVAL):
        raise UsageError(
            f"invalid interval {interval!r}", hint="give seconds between polls, e.g. 30"
        )
    return interval
