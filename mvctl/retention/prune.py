"""``mvctl gc``: decide on the remote's tags, fetched just now (every model's: what any of
them needs stays), deregister the pruned versions (GTO's ``MODEL@vX.Y.Z!``, published in one
atomic push), fetch the remote's tags again, and only then delete what is still unneeded.

That order means no failure ever leaves a live version without its objects: a push refused
or interrupted deletes nothing, and a run interrupted while deleting left the versions
deregistered already, so the next run shows them as "pending prune" and finishes (files go
first and directory listings last, so the next run still finds every file through its
listing). Git history and manifests stay: a pruned version can still be shown, diffed and
traced. The DVC remote is shared by every host, so with a git remote configured ``--yes``
always decides on and publishes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl._adapters.dvcstore import ObjectStore, open_store
from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.common.progress import NoProgress, ProgressSink
from mvctl.errors import Interrupted, MvctlError, OperationalError, UsageError, unknown_model
from mvctl.formats import config as registry_config
from mvctl.formats import manifest as manifest_schema
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.manifest import Manifest
from mvctl.formats.names import check_model
from mvctl.publishing import publish
from mvctl.publishing.sync import check_remote_name, sync_git
from mvctl.registry.read import group_tags
from mvctl.retention import deregister
from mvctl.retention.plan import (
    DEFAULT_KEEP_GOLD,
    DEFAULT_KEEP_RECENT,
    GcPlan,
    Policy,
    decide,
    needed_now,
    revived,
)

FINISH = "the pruned versions are deregistered already; run 'mvctl gc --yes' again to finish"


@dataclass(frozen=True)
class GcResult:
    plan: GcPlan
    dry_run: bool
    remote: str | None = None  # where the deregistrations are published (None: local)
    pushed: bool = False
    published: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())  # deregistration tags written by this run
    deleted: int = 0  # objects removed
    # Shown in text only (the JSON shape is a contract, checked by tests/cli):
    taken_back: tuple[str, ...] = ()  # unpublished deregistrations of versions kept now
    spared: tuple[str, ...] = ()  # freed objects a version that appeared meanwhile needs

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.plan.to_dict(),
            "dry_run": self.dry_run,
            "remote": self.remote,
            "pushed": self.pushed,
            "published": list(self.published),
            "tags": list(self.tags),
            "deleted": self.deleted,
        }


def check_count(value: int | None, flag: str) -> int | None:
    if value is not None and value < 0:
        raise UsageError(f"{flag} must be a whole number >= 0, not {value}")
    return value


def policy(
    config: registry_config.RegistryConfig,
    model: str,
    keep_gold: int | None,
    keep_recent: int | None,
) -> Policy:
    """mvctl.yaml's ``retention`` for ``model``; the flags given override it."""
    raw = config.model(model).raw.get("retention") or {}
    return Policy(
        keep_gold=raw.get("keep_gold", DEFAULT_KEEP_GOLD) if keep_gold is None else keep_gold,
        keep_recent=raw.get("keep_recent", DEFAULT_KEEP_RECENT)
        if keep_recent is None
        else keep_recent,
    )


def _manifests(git: GitRepo, states: dict[str, channels.ModelState]) -> dict[Any, Manifest]:
    """Every version's manifest, of every model, from one ``git cat-file --batch``."""
    specs = {
        f"{record.commit}:{manifest_path(model)}": (model, version)
        for model, state in states.items()
        for version, record in state.tags.versions.items()
    }
    found: dict[Any, Manifest] = {}
    for spec, text in git.read_blobs(list(specs)).items():
        if text is not None:
            model, version = specs[spec]
            data = manifest_schema.parse(text, f"{manifest_path(model)} at {model}@{version}")
            found[model, version] = Manifest.from_dict(data)
    return found


def _states(git: GitRepo) -> dict[str, channels.ModelState]:
    return {
        name: channels.load(git, name)
        for name in sorted(group_tags(git.tags(f"{tags.TAG_PREFIX}*@*")))
    }


def _where(git: GitRepo, push: bool | None, remote: str, dry_run: bool) -> str | None:
    """Where --yes decides and publishes: the git remote whenever one is configured (the
    DVC remote is every host's, so deciding on this clone's tags alone could delete what a
    channel published elsewhere holds). A dry run follows the usual rule."""
    if dry_run:
        return publish.target(git, push, remote)
    check_remote_name(remote)
    # 'git remote' fails loudly on an unreadable config: never a silent switch to local.
    configured = remote in git.run("remote", action="read the git remotes").split()
    if not configured:
        return publish.target(git, push, remote)  # --push without a remote: its error
    if push is False:
        raise UsageError(
            f"git remote {remote!r} is configured: --yes --local would decide on this "
            "clone's tags alone, and gc removes objects from the DVC remote every host shares",
            hint=f"drop --local: gc --yes decides on {remote}'s tags and publishes there",
        )
    return remote


def gc(
    root: Path,
    model: str | None = None,
    *,
    keep_gold: int | None = None,
    keep_recent: int | None = None,
    dry_run: bool = True,
    push: bool | None = None,
    remote: str = "origin",
    progress: ProgressSink | None = None,
) -> GcResult:
    """Plan retention for ``model`` (every model when None) and, unless ``dry_run``,
    perform it: deregistration tags first (published), then the objects' removal."""
    if model is not None:
        check_model(model)
    check_count(keep_gold, "--keep-gold")
    check_count(keep_recent, "--keep-recent")
    git = GitRepo.open(root)
    config = registry_config.load(root)  # a bad mvctl.yaml fails before anything is fetched
    where = _where(git, push, remote, dry_run)
    # Every model's tags: what the other models need is decided on too.
    synced = sync_git(git, where) if where and not dry_run else None
    states = _states(git)
    if model is not None and model not in states:
        raise unknown_model(model)
    scope = [model] if model is not None else sorted(states)
    policies = {name: policy(config, name, keep_gold, keep_recent) for name in scope}
    taken_back: list[str] = []
    if synced is not None:
        for name in scope:
            left = deregister.leftovers(states[name], synced)
            again = revived(states[name], policies[name], left)
            taken_back += deregister.take_back(git, (left[v] for v in again))
        if taken_back:
            states = _states(git)
    manifests = _manifests(git, states)
    with open_store(root) as store:
        plan = decide(states, manifests, scope, policies, store, store.workspace_objects())
        result = GcResult(plan, dry_run, where, taken_back=tuple(taken_back))
        if dry_run:
            return result
        created = deregister.write(git, states, plan.pruned)
        published: list[str] = []
        spared: set[str] = set()
        if synced is not None and where is not None:
            published = deregister.publish_all(git, states, created, synced, scope, config.channels)
            # Versions registered (or channels moved) since the sync: fetched again, and
            # what they need is spared. Left open: the time between this and the deletion.
            spared = _recheck(git, where, states, plan, store)
        deleted = _delete(store, plan, spared, progress)
    return GcResult(
        plan,
        False,
        where,
        pushed=synced is not None,
        published=tuple(published),
        tags=tuple(n for n, _ in created),
        deleted=deleted,
        taken_back=tuple(taken_back),
        spared=tuple(sorted(spared)),
    )


def _recheck(
    git: GitRepo,
    where: str,
    states: dict[str, channels.ModelState],
    plan: GcPlan,
    store: ObjectStore,
) -> set[str]:
    """The plan's objects a version that appeared since the sync (any model) or a channel
    moved onto a pruned version needs, from the remote's tags fetched again. Failing, it
    deletes nothing; the versions are deregistered already."""
    try:
        sync_git(git, where)
        now_states = _states(git)
        known = {(m, v) for m, s in states.items() for v in s.tags.versions}
        needed = needed_now(now_states, _manifests(git, now_states), plan, known, store)
    except MvctlError as exc:
        raise OperationalError(f"{exc.message}; nothing was deleted", hint=FINISH) from exc
    return {o.oid for o in plan.objects} & needed


def _delete(
    store: ObjectStore, plan: GcPlan, spared: set[str], progress: ProgressSink | None
) -> int:
    """Remove the plan's objects but ``spared``, files before directory listings."""
    objects = [o for o in plan.objects if o.oid not in spared]
    task = (progress or NoProgress()).task("pruning objects", sum(o.bytes for o in objects))
    deleted = 0
    try:
        for obj in objects:
            store.remove(obj.oid)
            deleted += 1
            task(obj.bytes)
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted while removing objects: {deleted} of {len(objects)} removed;"
            " the pruned versions are deregistered already",
            hint="run the same 'mvctl gc --yes' again to finish (they show as pending prune)",
        ) from None
    except MvctlError as exc:
        raise OperationalError(
            f"{exc.message} ({deleted} of {len(objects)} objects removed)", hint=FINISH
        ) from exc
    return deleted
