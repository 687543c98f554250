"""``mvctl gc``: decide on fresh state, deregister the pruned versions (GTO's
``MODEL@vX.Y.Z!``, published in one atomic push), and only then delete their objects.

That order means no failure ever leaves a live version without its objects: a push refused
or interrupted deletes nothing, and a run interrupted while deleting left the versions
deregistered already, so the next run shows them as "pending prune" and finishes. Git
history and manifests stay: a pruned version can still be shown, diffed and traced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl._adapters.dvcstore import open_store
from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.moves import now
from mvctl.common import interrupts
from mvctl.common.progress import NoProgress, ProgressSink
from mvctl.errors import Interrupted, UsageError, unknown_model
from mvctl.formats import config as registry_config
from mvctl.formats import manifest as manifest_schema
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.manifest import Manifest
from mvctl.formats.names import check_model
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult, sync_git
from mvctl.registry.read import group_tags
from mvctl.retention.plan import (
    DEFAULT_KEEP_GOLD,
    DEFAULT_KEEP_RECENT,
    GcPlan,
    Policy,
    VersionPlan,
    decide,
)


@dataclass(frozen=True)
class GcResult:
    plan: GcPlan
    dry_run: bool
    remote: str | None = None  # where the deregistrations are published (None: local)
    pushed: bool = False
    published: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=())  # deregistration tags written by this run
    deleted: int = 0  # objects removed

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
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where and not dry_run else None
    states = {
        name: channels.load(git, name)
        for name in sorted(group_tags(git.tags(f"{tags.TAG_PREFIX}*@*")))
    }
    if model is not None and model not in states:
        raise unknown_model(model)
    scope = [model] if model is not None else sorted(states)
    policies = {name: policy(config, name, keep_gold, keep_recent) for name in scope}
    manifests = _manifests(git, states)
    with open_store(root) as store:
        plan = decide(states, manifests, scope, policies, store, store.workspace_objects())
        result = GcResult(plan, dry_run, where)
        if dry_run:
            return result
        written, published = _deregister(git, states, plan.pruned, synced, scope)
        task = (progress or NoProgress()).task("pruning objects", plan.bytes)
        deleted = 0
        try:
            for obj in plan.objects:
                store.remove(obj.oid)
                deleted += 1
                task(obj.bytes)
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while removing objects: {deleted} of {len(plan.objects)} removed;"
                " the pruned versions are deregistered already",
                hint="run the same 'mvctl gc --yes' again to finish (they show as pending prune)",
            ) from None
    return GcResult(
        plan,
        False,
        where,
        pushed=synced is not None,
        published=tuple(published),
        tags=tuple(written),
        deleted=deleted,
    )


def _deregister(
    git: GitRepo,
    states: dict[str, channels.ModelState],
    pruned: tuple[VersionPlan, ...],
    synced: SyncResult | None,
    scope: list[str],
) -> tuple[list[str], list[str]]:
    """Write the deregistration tag of each newly pruned version, in one transaction, and
    publish them with whatever else of these models is pending, in one atomic push. Any
    failure before the push landed takes the tags back: nothing is deleted then."""
    specs = []
    for entry in (v for v in pruned if v.deregister):
        state = states[entry.model]
        body = tags.MarkBody(
            "deregister",
            entry.model,
            entry.version,
            f"pruned by mvctl gc: {'; '.join(entry.reasons)}",
            actor=git.ident(),
            time=now(git),
            pruned=True,
        )
        title = f"Deregister {entry.model} {entry.version} (artifacts pruned)"
        name = tags.deregister_tag(entry.model, entry.version)
        specs.append((name, state.tags.versions[entry.version].commit, body, title))
    created: list[tuple[str, str]] = []
    if specs:
        objs = git.make_tags([(n, c, tags.format_message(t, b.to_dict())) for n, c, b, t in specs])
        created = [(spec[0], obj) for spec, obj in zip(specs, objs, strict=True)]
        git.update_refs(
            [f"create refs/tags/{n} {o}" for n, o in created], what="deregistration tags"
        )
    names = [n for n, _ in created]
    if synced is None:
        return names, []

    def undo() -> None:
        if created:
            with interrupts.shielded():
                git.update_refs(
                    [f"delete refs/tags/{n} {o}" for n, o in created], what="deregistration tags"
                )

    patterns = [p for m in scope for p in (f"{tags.TAG_PREFIX}{m}@*", f"{tags.TAG_PREFIX}{m}#*")]
    try:
        records = git.tags(*patterns)
        # Every alias of these models rides along, leased on what the sync saw: a channel
        # moved on the remote since (onto a version this plan prunes, maybe) refuses the
        # whole atomic push, and nothing is deleted.
        aliases = {
            f"refs/tags/{r.name}": synced.remote_objects[r.name]
            for r in records
            if (parsed := tags.parse(r.name)) is not None
            and parsed.kind == "alias"
            and synced.remote_objects.get(r.name) == r.object
        }
        try:
            published = publish.push_refs(
                git, publish.pending(records, synced), list(aliases), aliases
            )
        except publish.Unsettled as unsettled:
            published = publish.settle(unsettled, undo)
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except BaseException:
        undo()
        raise
    return names, published
