"""The serving host: follow a channel, swap weights atomically, verified.

A host knows a git URL, a model and a channel. Its directory holds:

    DIR/current -> versions/VERSION     a symlink, replaced by rename (atomic)
    DIR/versions/VERSION/               complete, verified versions (weights + manifest.yaml)
    DIR/versions/.tmp-*                 downloads in progress; removed by the next run
    DIR/state.json                      what is served, from which commit, since when
    DIR/.mvctl/                         lock file and a bare git cache for shallow fetches

A poll is one `git ls-remote` of the alias tag; nothing more happens when the alias names
the commit already served. A version kept under versions/ is swapped back in without a
download (a rollback); anything else is fetched (the manifest and .dvc files from a depth-1
fetch of the alias, the weights straight from the DVC remote), verified against the
manifest's sha256 and sizes, and only then made current. On any failure the host keeps
serving what it served.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvctl import tags
from mvctl._adapters.git import GitDir, check_url, ls_remote_commit
from mvctl.errors import ConflictError, MvctlError, OperationalError, PolicyError, UsageError
from mvctl.names import Version, check_channel, check_model

STATE = "state.json"
CURRENT = "current"
VERSIONS = "versions"
RECORD = ".mvctl-version.json"
_TMP = ".tmp-"


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def status(dest: Path) -> Served | None:
    """What ``dest`` serves now (None if nothing yet). Reads only local files."""
    state = _read_json(dest / STATE)
    target = _current_version(dest)
    if state is None or target is None:
        return None
    record = _read_json(dest / VERSIONS / target / RECORD) or {}
    since = state.get("since", "") if state.get("version") == target else ""
    return Served(
        model=str(record.get("model", state.get("model", ""))),
        channel=str(state.get("channel", "")),
        version=target,
        commit=str(record.get("commit", "")),
        path=(dest / VERSIONS / target / str(record.get("weights", ""))).resolve(),
        since=str(since),
        repo=str(state.get("repo", "")),
        kept=tuple(_kept_versions(dest)),
    )


def _current_version(dest: Path) -> str | None:
    try:
        target = (dest / CURRENT).readlink()
    except OSError:
        return None
    name = Path(target).name
    if not (dest / VERSIONS / name / RECORD).is_file():
        return None
    return name


def _kept_versions(dest: Path) -> list[str]:
    root = dest / VERSIONS
    if not root.is_dir():
        return []
    return sorted(
        (p.name for p in root.iterdir() if not p.name.startswith(".") and (p / RECORD).is_file()),
        key=lambda v: Version.parse(v).sort_key() if Version.is_valid(v) else (0,),
    )


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

    meta = dest / ".mvctl"
    meta.mkdir(parents=True, exist_ok=True)
    with (meta / "lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConflictError(
                f"another mvctl pull is working in {dest}", hint="let it finish, then retry"
            ) from exc
        yield


def _clean_partial(dest: Path) -> None:
    """Leftovers of a run that was killed: never part of what is served."""
    versions = dest / VERSIONS
    if versions.is_dir():
        for leftover in versions.iterdir():
            if leftover.name.startswith(_TMP):
                shutil.rmtree(leftover, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (dest / f".{CURRENT}.tmp").unlink()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pull(req: PullRequest, progress: Callable[[int], None] | None = None) -> PullResult:
    """One poll: resolve the alias, and if it moved, make its version current."""
    try:
        return _pull(req, progress)
    except OSError as exc:  # disk full, permissions: what is served stays as it was
        raise OperationalError(
            f"cannot write in {req.dest}: {exc.strerror or exc}",
            hint="free space or fix permissions; the host keeps serving what it had",
        ) from exc


def _pull(req: PullRequest, progress: Callable[[int], None] | None) -> PullResult:
    check_model(req.model)
    check_channel(req.channel)
    check_url(req.repo)
    if req.keep < 1:
        raise UsageError("--keep must be at least 1")
    dest = req.dest.resolve()
    if dest.exists() and not dest.is_dir():
        raise OperationalError(f"{dest} is not a directory")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / VERSIONS).mkdir(exist_ok=True)
    with _locked(dest):
        _clean_partial(dest)
        alias = tags.alias_tag(req.model, req.channel)
        commit = ls_remote_commit(req.repo, f"refs/tags/{alias}", dest)
        if commit is None:
            raise OperationalError(
                f"{req.repo} has no channel alias {alias}",
                hint=f"has {req.model} been promoted to {req.channel} (and pushed)?",
            )
        before = status(dest)
        if before is not None and before.commit == commit:
            return PullResult(before, before.version, changed=False, downloaded=False)
        cached = _cached_at(dest, commit)
        downloaded = cached is None
        version = cached or _download(req, dest, commit, progress)
        served = _swap(req, dest, version, before)
    hook = _run_hook(req, served, before) if req.on_change else None
    previous = before.version if before else None
    return PullResult(served, previous, changed=True, downloaded=downloaded, hook=hook)


def _cached_at(dest: Path, commit: str) -> str | None:
    for version in _kept_versions(dest):
        record = _read_json(dest / VERSIONS / version / RECORD) or {}
        if record.get("commit") == commit and _intact(dest / VERSIONS / version, record):
            return version
    return None


def _intact(version_dir: Path, record: dict[str, Any]) -> bool:
    """Cheap re-check of a kept version before it is served again: every file is there
    with its recorded size (the full sha256 was verified when it was downloaded)."""
    for rel, size in (record.get("sizes") or {}).items():
        path = version_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return bool(record.get("sizes"))


def _download(
    req: PullRequest, dest: Path, commit: str, progress: Callable[[int], None] | None
) -> str:
    from mvctl import manifest as manifest_schema
    from mvctl import yamlio
    from mvctl._adapters import dvc

    cache = GitDir.create(dest / ".mvctl" / "repo.git")
    alias = tags.alias_tag(req.model, req.channel)
    fetched = cache.fetch_shallow(req.repo, f"refs/tags/{alias}", "refs/mvctl/alias")
    text = cache.read_blob(fetched, manifest_schema.manifest_path(req.model))
    if text is None:
        raise OperationalError(f"{alias} points at a commit with no manifest of {req.model}")
    manifest = manifest_schema.parse(text, f"{alias} manifest")
    version = str(manifest["version"])
    if manifest["model"] != req.model or not Version.is_valid(version):
        raise OperationalError(f"{alias} points at a manifest of {manifest['model']}")
    config_text = cache.read_blob(fetched, ".dvc/config")
    if config_text is None:
        raise OperationalError(f"the registry at {alias} has no .dvc/config: no DVC remote")
    weights = list(manifest["weights"])
    if len(weights) != 1:
        raise OperationalError(f"{req.model} {version} lists {len(weights)} weights entries")
    entry = weights[0]
    dvcfile = cache.read_blob(fetched, f"{entry['path']}.dvc")
    outs = (yamlio.loads(dvcfile, f"{entry['path']}.dvc") or {}).get("outs") if dvcfile else None
    if not outs or str(outs[0].get("md5")) != str(entry["md5"]):
        raise OperationalError(f"{entry['path']}.dvc at {alias} does not match the manifest")

    tmp = dest / VERSIONS / f"{_TMP}{version}-{os.getpid()}"
    payload = tmp / "payload"
    name = Path(str(entry["path"])).name
    try:
        payload.mkdir(parents=True)
        dvc.download(
            tmp / "dvc",
            config_text,
            [(str(entry["md5"]), payload / name)],
            req.dvc_remote,
            progress,
        )
        sizes = _verify(payload, name, entry)
        (payload / "manifest.yaml").write_text(text, encoding="utf-8")
        record = {
            "model": req.model,
            "version": version,
            "commit": fetched,
            "weights": name,
            "sizes": sizes,
            "fetched": _now(),
        }
        _write_json(payload / RECORD, record)
        _fsync_tree(payload)
        final = dest / VERSIONS / version
        if final.exists():  # an older download of the same version, no longer trusted
            shutil.rmtree(final)
        payload.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return version


def _verify(payload: Path, name: str, entry: dict[str, Any]) -> dict[str, int]:
    """Every byte checked against the manifest; returns {relative path: size}."""
    from mvctl.hashing import sha256_file, sha256_tree

    target = payload / name
    mismatch = PolicyError(
        f"downloaded weights for {entry['path']} do not match the manifest's sha256",
        hint="the DVC remote holds a corrupted object; the host keeps serving what it had",
    )
    if target.is_file():
        got = sha256_file(target)
        if got.sha256 != entry["sha256"] or got.size != entry["size"]:
            raise mismatch
        return {name: got.size}
    files, tree = sha256_tree(target)
    expected = {str(f["path"]): f for f in entry.get("files") or []}
    actual = {f.path: f for f in files}
    if tree != entry["sha256"] or set(expected) != set(actual):
        raise mismatch
    for path, f in actual.items():
        if f.sha256 != expected[path].get("sha256") or f.size != expected[path].get("size"):
            raise mismatch
    return {f"{name}/{path}": f.size for path, f in actual.items()}


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


def _swap(req: PullRequest, dest: Path, version: str, before: Served | None) -> Served:
    link = dest / f".{CURRENT}.tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(f"{VERSIONS}/{version}")
    link.replace(dest / CURRENT)  # rename(2): readers see the old or the new, never neither
    _fsync(dest)
    since = _now()
    recent = [version] + [
        v for v in ((_read_json(dest / STATE) or {}).get("recent") or []) if v != version
    ]
    _write_json(
        dest / STATE,
        {
            "model": req.model,
            "channel": req.channel,
            "version": version,
            "commit": (_read_json(dest / VERSIONS / version / RECORD) or {}).get("commit"),
            "repo": req.repo,
            "since": since,
            "recent": recent,
        },
    )
    _prune(dest, recent, req.keep, version)
    served = status(dest)
    if served is None:  # pragma: no cover - just written
        raise OperationalError(f"{dest} lost its current version")
    return served


def _prune(dest: Path, recent: Sequence[str], keep: int, current: str) -> None:
    """Keep the ``keep`` most recently served versions; never the current one's files."""
    keepers = set(list(recent)[:keep]) | {current}
    for version in _kept_versions(dest):
        if version not in keepers:
            shutil.rmtree(dest / VERSIONS / version, ignore_errors=True)


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
    reported and retried with exponential backoff while the current version keeps serving."""
    failures = 0
    while not stop.is_set():
        try:
            on_result(pull(req))
            failures = 0
            delay = interval
        except MvctlError as exc:
            failures += 1
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
            on_error(exc, delay)
        delay *= 1 + random.uniform(-jitter, jitter)  # noqa: S311 - spreading a fleet's polls
        stop.wait(max(delay, 0.05))
