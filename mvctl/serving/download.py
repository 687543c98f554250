"""Downloading a version: its weights straight from the DVC remote into a temporary
directory under ``versions/``, verified byte for byte against the manifest, fsynced, and
only then renamed into a version directory of its own."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters import dvcremote
from mvctl._adapters.gitdir import Fetched, GitDir
from mvctl.common.hashing import sha256_file, sha256_tree
from mvctl.common.progress import Advance, NoProgress, ProgressSink
from mvctl.errors import MvctlError, OperationalError, PolicyError
from mvctl.formats import tags
from mvctl.serving.commit import TAG_CAP, Plan, RefusedCommit, Weights, alias_weight, read_commit
from mvctl.serving.layout import (
    MANIFEST_COPY,
    META,
    RECORDS,
    TMP_PREFIX,
    VERSIONS,
    channel_links,
    current_name,
    file_kind,
    fsync_path,
    fsync_tree,
    remove_version,
    utc_now,
    write_json,
)
from mvctl.serving.request import PullRequest


@dataclass(frozen=True)
class AliasRead:
    """A channel's alias as fetched: its tag object, commit and weight (validated)."""

    object: str
    commit: str
    weight: float | None


def alias_read(cache: GitDir, fetched: Fetched, alias: str) -> AliasRead:
    try:
        weight = (
            alias_weight(cache.tag_message(fetched.object, TAG_CAP))
            if fetched.kind == "tag"
            else None  # a lightweight tag: no message, no weight
        )
    except MvctlError as exc:
        raise _refused(alias, fetched, exc) from exc
    return AliasRead(fetched.object, fetched.commit, weight)


def _refused(alias: str, fetched: Fetched, exc: MvctlError) -> RefusedCommit:
    return RefusedCommit(
        fetched.commit,
        f"{alias} -> {fetched.commit[:12]} refused: {exc.message}",
        hint="the host keeps serving what it had and follows the alias's next move",
        alias=fetched.object,
    )


def read_alias(req: PullRequest, dest: Path, channel: str) -> AliasRead:
    """The alias of ``channel``, its tag object alone (for a version the host holds)."""
    alias = tags.alias_tag(req.model, channel)
    with GitDir.scratch(dest / META / "repo.git") as cache:
        fetched = cache.fetch_alias(req.repo, f"refs/tags/{alias}", "refs/mvctl/alias", files=False)
        return alias_read(cache, fetched, alias)


def download(
    req: PullRequest, dest: Path, channel: str, progress: ProgressSink | None
) -> tuple[str, AliasRead]:
    """Fetch the version ``channel``'s alias names into a version directory of its own;
    returns its NAME and the alias as fetched."""
    alias = tags.alias_tag(req.model, channel)
    # The cache holds one fetch, emptied before (stale locks, half-written packs of a killed
    # fetch) and after it (whatever else a commit holds never piles up on the host).
    with GitDir.scratch(dest / META / "repo.git") as cache:
        got = cache.fetch_alias(req.repo, f"refs/tags/{alias}", "refs/mvctl/alias", files=True)
        read = alias_read(cache, got, alias)  # a bad weight is refused before any download
        fetched = got.commit
        try:
            plan = read_commit(req, cache, fetched, dest)
        except MvctlError as exc:
            raise _refused(alias, got, exc) from exc
    weights = plan.weights
    needed = needed_bytes(weights)
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise OperationalError(
            f"{req.model} {plan.version} needs {needed} bytes; {free} are free in {dest}",
            hint="free space; the host keeps serving what it had",
        )
    advance = byte_task(progress, f"{req.model} {plan.version}", weights)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{plan.version}-", dir=dest / VERSIONS))
    payload = tmp / "payload"
    try:
        payload.mkdir()
        with dvcremote.remote_store(tmp / "dvc", plan.remote, req.dvc_remote, advance) as store:
            if weights.is_dir:
                fetch_tree(store, weights, payload / weights.name, tmp / "listing")
            else:
                store.fetch(weights.md5, payload / weights.name, weights.size)
        sizes = verify_payload(payload, weights)
        if weights.name != MANIFEST_COPY:  # the weights win: bookkeeping lives in .mvctl
            (payload / MANIFEST_COPY).write_text(plan.manifest, encoding="utf-8")
        fsync_tree(payload)
        return _place(req, dest, plan, fetched, payload, sizes), read
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def needed_bytes(weights: Weights) -> int:
    """The bytes a download of ``weights`` writes (a directory's: its files' sum)."""
    return max(weights.size, sum(f[3] for f in weights.files))


def byte_task(progress: ProgressSink | None, what: str, weights: Weights) -> Advance:
    """The progress task of downloading ``weights``: labelled ``what`` and the weights'
    name, its total the bytes the manifest declares (what the remote store advances)."""
    return (progress or NoProgress()).task(f"{what} {weights.name}", needed_bytes(weights))


HOST_HINT = "the DVC remote holds a corrupted object; the host keeps serving what it had"


def fetch_tree(
    store: Any, weights: Weights, root: Path, scratch: Path, hint: str = HOST_HINT
) -> None:
    """Directory weights into ``root``: the DVC listing must name exactly the manifest's
    files, and each is fetched by its validated id, capped at the manifest's size."""
    listing = store.listing(weights.md5, scratch)
    expected = {rel: (oid, size) for rel, oid, _, size in weights.files}
    if dict(listing) != {rel: oid for rel, (oid, _) in expected.items()}:
        raise mismatch(weights, hint)
    root.mkdir()
    for rel, oid in sorted(listing):
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        store.fetch(oid, target, expected[rel][1])


def mismatch(weights: Weights, hint: str = HOST_HINT) -> PolicyError:
    return PolicyError(
        f"downloaded weights for {weights.path} do not match the manifest's sha256", hint=hint
    )


def verify_payload(payload: Path, weights: Weights, hint: str = HOST_HINT) -> dict[str, int]:
    """Every byte of ``payload / weights.name`` checked against the manifest; returns
    {relative path: size}."""
    target = payload / weights.name
    if not weights.is_dir:
        got = sha256_file(target)
        if got.sha256 != weights.sha256 or got.size != weights.size:
            raise mismatch(weights, hint)
        return {weights.name: got.size}
    files, tree = sha256_tree(target)
    actual = sorted((f.path, f.sha256, f.size) for f in files)
    expected = sorted((rel, sha, size) for rel, _, sha, size in weights.files)
    if tree != weights.sha256 or actual != expected:
        raise mismatch(weights, hint)
    return {f"{weights.name}/{rel}": size for rel, _, size in actual}


def _place(
    req: PullRequest, dest: Path, plan: Plan, commit: str, payload: Path, sizes: dict[str, int]
) -> str:
    """Give a verified download its version directory: a fresh one, never one that
    ``current`` or a channel names (a rewritten history may re-use a version's name)."""
    served = {current_name(dest), *channel_links(dest).values()}
    names = (plan.version, f"{plan.version}@{commit[:12]}")
    name = next((n for n in names if n not in served), names[1])
    final = dest / VERSIONS / name
    if file_kind(final) is not None:  # an older download of that name, no longer trusted
        remove_version(dest, name)
    record = {
        "model": req.model,
        "version": plan.version,
        "dir": name,
        "commit": commit,
        "weights": plan.weights.name,
        "sizes": sizes,
        "fetched": utc_now(),
    }
    records = dest / META / RECORDS
    records.mkdir(exist_ok=True)
    write_json(records / f"{name}.json", record)
    payload.rename(final)
    fsync_path(dest / VERSIONS)
    return name
