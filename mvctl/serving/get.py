"""``mvctl get``: one version's weights to a path of the user's, with no checkout.

The commit is read as a serving host reads one (mvctl.serving.commit: every id, size and
path of the manifest validated, only the remote URL taken from the committed DVC config),
the weights come straight from the DVC remote into a temporary entry beside the target,
are verified byte for byte against the manifest, and only then renamed into place: a
failure, a corrupted object or an interrupt leaves no file behind."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters import dvcremote
from mvctl._adapters.gitdir import GitDir, check_url, ls_remote_tags
from mvctl.common.progress import ProgressSink
from mvctl.errors import (
    OperationalError,
    UsageError,
    deregistered,
    holds_no_version,
    unknown_model,
    unknown_version,
)
from mvctl.formats import tags
from mvctl.formats.names import Version, check_channel, check_model, redacted_url, shown
from mvctl.serving.commit import Plan, read_plan
from mvctl.serving.download import byte_task, fetch_tree, mismatch, needed_bytes, verify_payload
from mvctl.serving.layout import fsync_path, fsync_tree

_HINT = "the DVC remote holds a corrupted object; nothing was written"
_TMP_PREFIX = ".mvctl-get-"


@dataclass(frozen=True)
class Wanted:
    """What ``MODEL[@VERSION|@CHANNEL]`` names: a version, a channel, or (neither) the
    model's newest live version."""

    model: str
    version: str | None = None
    channel: str | None = None

    @classmethod
    def parse(cls, model: str, ref: str | None = None) -> Wanted:
        """``parse("fraud@v1.2.0")``, ``parse("fraud", "production")``: a usage error for
        a malformed name, or for a version or channel given twice."""
        name, sep, what = model.partition("@")
        if sep and ref is not None:
            raise UsageError(f"{shown(model)} names a version already; give no ref")
        if sep and not what:
            raise UsageError(
                f"{shown(model)} names no version or channel", hint="e.g. fraud@v1.2.0"
            )
        what = what if sep else (ref or "")
        check_model(name)
        if not what:
            return cls(name)
        if what.startswith("v") and Version.is_valid(what):
            return cls(name, version=what)
        return cls(name, channel=check_channel(what))

    @property
    def ref(self) -> str:
        what = self.version or self.channel
        return f"{self.model}@{what}" if what else self.model


@dataclass(frozen=True)
class Got:
    """A version's weights as written: ``path`` is the file (or directory) in place."""

    model: str
    version: str
    channel: str | None
    commit: str
    path: Path
    sha256: str  # the file's, or a directory's tree sha256 (as the manifest records it)
    md5: str  # DVC's object id
    size: int  # bytes written

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "channel": self.channel,
            "commit": self.commit,
            "path": str(self.path),
            "sha256": self.sha256,
            "md5": self.md5,
            "bytes": self.size,
        }


@dataclass(frozen=True)
class Options:
    """Where and how to write: ``out`` a file or an existing directory (None: ``cwd``);
    ``force`` replaces what is there; ``dvc_remote`` replaces the committed remote."""

    cwd: Path
    out: Path | None = None
    force: bool = False
    dvc_remote: str | None = None


def get_remote(
    repo: str, wanted: Wanted, options: Options, progress: ProgressSink | None = None
) -> Got:
    """Resolve ``wanted`` on the git remote ``repo`` (a URL or a path, with one
    `git ls-remote`), fetch that version's commit alone (depth 1, small files only) into a
    scratch bare repository, then :func:`save` its weights. Nothing in ``repo`` is trusted."""
    url = _absolute(repo, options.cwd)
    with tempfile.TemporaryDirectory(prefix="mvctl-get-") as work:
        scratch = Path(work)
        version = _remote_version(url, wanted, scratch)
        with GitDir.scratch(scratch / "repo.git") as cache:
            ref = f"{tags.TAG_PREFIX}{tags.version_tag(wanted.model, version)}"
            commit = cache.fetch_shallow(url, ref, "refs/mvctl/get")
            plan = read_plan(wanted.model, cache, commit, options.dvc_remote)
    return save(plan, commit, wanted, version, options, progress)


def _absolute(repo: str, cwd: Path) -> str:
    """A local path as an absolute one (git runs in a scratch directory); a URL as is."""
    check_url(repo)
    if "://" not in repo and (cwd / repo).exists():
        return os.fspath((cwd / repo).resolve())
    return repo


def _remote_version(url: str, wanted: Wanted, cwd: Path) -> str:
    model = wanted.model
    prefix = f"{tags.TAG_PREFIX}{model}@"
    alias = f"{prefix}{wanted.channel}" if wanted.channel else None
    found = ls_remote_tags(url, [alias] if alias else [], cwd, globs=[f"{prefix}v*"])
    versions: dict[str, str] = {}  # version -> commit
    retired: set[str] = set()
    for name, ref in found.items():
        parsed = tags.parse(name)
        if parsed is None or parsed.model != model:
            continue
        if parsed.kind == "version":
            versions[parsed.version] = ref.commit
        elif parsed.kind == "deregister":
            retired.add(parsed.version)
    if not versions:
        raise unknown_model(model)
    if wanted.version is not None:
        if wanted.version not in versions:
            raise unknown_version(model, wanted.version)
        return wanted.version
    if alias is not None:
        held = found.get(alias)
        if held is None:
            raise holds_no_version(model, str(wanted.channel), "nothing to get")
        on_commit = _newest([v for v, c in versions.items() if c == held.commit])
        if on_commit is None:
            raise OperationalError(
                f"{model}@{wanted.channel} on {redacted_url(url)} points at a commit with no "
                f"version of {model}",
                hint="run 'mvctl check' in the registry",
            )
        if on_commit in retired:
            raise deregistered(model, on_commit)
        return on_commit
    newest = _newest([v for v in versions if v not in retired])
    if newest is None:
        raise OperationalError(f"every version of {model!r} is deregistered")
    return newest


def _newest(versions: list[str]) -> str | None:
    return max(versions, key=lambda v: Version.parse(v).sort_key(), default=None)


def save(
    plan: Plan,
    commit: str,
    wanted: Wanted,
    version: str,
    options: Options,
    progress: ProgressSink | None = None,
) -> Got:
    """Download ``plan``'s weights, verify them, and rename them to their target."""
    if plan.version != version:
        raise OperationalError(
            f"the manifest of {wanted.model} {version} at {commit[:12]} says version "
            f"{shown(plan.version)}",
            hint="run 'mvctl check' in the registry",
        )
    weights = plan.weights
    target = _target(options, weights.name)
    needed = needed_bytes(weights)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise OperationalError(
            f"{wanted.model} {version} needs {needed} bytes; {free} are free in {target.parent}",
            hint="free space or choose another --out",
        )
    advance = byte_task(progress, f"{wanted.model} {version}", weights)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=target.parent))
    payload = tmp / "payload"
    try:
        payload.mkdir()
        with (
            tempfile.TemporaryDirectory(prefix="mvctl-get-dvc-") as work,
            dvcremote.remote_store(Path(work), plan.remote, options.dvc_remote, advance) as store,
        ):
            try:
                if weights.is_dir:
                    fetch_tree(store, weights, payload / weights.name, tmp / "listing", _HINT)
                else:
                    store.fetch(weights.md5, payload / weights.name, weights.size)
            except dvcremote.SizeExceeded:  # a corrupted object, as a wrong hash is
                raise mismatch(weights, _HINT) from None
        sizes = verify_payload(payload, weights, _HINT)
        fsync_tree(payload)
        _place(payload / weights.name, target, tmp / "replaced", force=options.force)
    except OSError as exc:
        raise OperationalError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Got(
        wanted.model,
        version,
        wanted.channel,
        commit,
        target,
        weights.sha256,
        weights.md5,
        sum(sizes.values()),
    )


def _target(options: Options, name: str) -> Path:
    """Where the weights go: ``out`` itself, or ``out/NAME`` when ``out`` is a directory
    (the current one by default) and NAME is no hidden name. What is there already stays
    unless ``force``."""
    out = options.cwd / options.out if options.out is not None else options.cwd
    if out.is_dir() and name.startswith("."):
        # The name comes from the registry (untrusted with --repo): never let it pick a
        # dotfile (.bashrc, .git) in the user's directory.
        raise OperationalError(
            f"the weights are named {shown(name)}, a hidden name",
            hint="give --out the file name to write",
        )
    target = out / name if out.is_dir() else out
    if not target.parent.is_dir():
        raise OperationalError(
            f"{target.parent} is not a directory", hint="create it, or give --out a directory"
        )
    if _kind(target) is not None and not options.force:
        raise OperationalError(
            f"{target} exists", hint="pass --force to replace it, or choose another --out"
        )
    return target


def _kind(path: Path) -> int | None:
    try:
        return stat.S_IFMT(path.lstat().st_mode)
    except FileNotFoundError:
        return None


def _place(source: Path, target: Path, aside: Path, *, force: bool) -> None:
    """Rename the verified ``source`` to ``target`` in one step. A file replaces a file
    atomically; anything else in the way (with ``force``) is first moved ``aside`` (into
    the temporary directory, removed after)."""
    kind = _kind(target)
    if kind is None:
        if source.is_dir():
            source.rename(target)
        else:  # link(2), unlike rename(2), never replaces a file that appeared meanwhile
            os.link(source, target)
    elif not force:
        raise OperationalError(f"{target} exists", hint="pass --force to replace it")
    elif kind != stat.S_IFDIR and not source.is_dir():
        source.replace(target)
    else:
        target.rename(aside)
        source.rename(target)
    fsync_path(target.parent)
