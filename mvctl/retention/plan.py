"""Which versions retention keeps, which it prunes, and the objects pruning frees.

A version is kept while any channel holds it, while it is one of the last N gold versions of
any channel (gold versions ordered by when they last served it; a hand mark counts as gold),
or while it is one of the newest live versions. Everything else is prunable, and so is a
deregistered (retired) version whose objects are still stored. An object is freed only when
no kept version of any model and nothing the checked-out workspace tracks names it: content
is shared between versions (the same dataset, identical files inside weights directories).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from mvctl._adapters.dvcstore import Stored
from mvctl.channels.state import ModelState, was_pruned
from mvctl.errors import OperationalError
from mvctl.formats.manifest import Manifest
from mvctl.registry.read import sorted_versions

Action = Literal["keep", "prune", "pruned"]
DEFAULT_KEEP_GOLD = 3
DEFAULT_KEEP_RECENT = 5


class Objects(Protocol):
    """What the plan needs to know of the stored objects (the DVC remote and cache)."""

    def stored(self, oid: str) -> Stored: ...

    def listing(self, oid: str) -> list[str] | None: ...


@dataclass(frozen=True)
class Policy:
    keep_gold: int = DEFAULT_KEEP_GOLD
    keep_recent: int = DEFAULT_KEEP_RECENT

    def to_dict(self) -> dict[str, int]:
        return {"keep_gold": self.keep_gold, "keep_recent": self.keep_recent}


@dataclass(frozen=True)
class FreedObject:
    oid: str
    bytes: int
    remote: bool  # stored in the DVC remote
    cache: bool  # stored in the local cache

    def to_dict(self) -> dict[str, Any]:
        return {"oid": self.oid, "bytes": self.bytes, "remote": self.remote, "cache": self.cache}


@dataclass(frozen=True)
class VersionPlan:
    model: str
    version: str
    action: Action  # "pruned": deregistered before, nothing of it left to free
    reasons: tuple[str, ...]
    objects: tuple[FreedObject, ...] = ()  # freed, each counted under one version only
    deregister: bool = False  # a deregistration tag is to be written for it

    @property
    def keep(self) -> bool:
        return self.action != "prune"

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "action": self.action,
            "keep": self.keep,
            "reasons": list(self.reasons),
            "bytes": self.bytes,
            "objects": [o.to_dict() for o in self.objects],
            "deregister": self.deregister,
        }


@dataclass(frozen=True)
class GcPlan:
    models: tuple[str, ...]
    policies: dict[str, Policy]
    versions: tuple[VersionPlan, ...]

    @property
    def pruned(self) -> tuple[VersionPlan, ...]:
        return tuple(v for v in self.versions if v.action == "prune")

    @property
    def objects(self) -> tuple[FreedObject, ...]:
        """In the order they are removed: files first, directory listings (``.dir``) last,
        so a run stopped part-way leaves every listing whose files remain, and the next run
        finds those files through it."""
        found = [o for v in self.versions for o in v.objects]
        return tuple(sorted(found, key=lambda o: o.oid.endswith(".dir")))

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.objects)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "policies": {m: p.to_dict() for m, p in self.policies.items()},
            "versions": [v.to_dict() for v in self.versions],
            "totals": {
                "versions": len(self.pruned),
                "objects": len(self.objects),
                "bytes": self.bytes,
            },
        }


def keep_reasons(state: ModelState, policy: Policy) -> dict[str, list[str]]:
    """Why each kept version of ``state`` is kept (a version absent: nothing keeps it)."""
    why: dict[str, list[str]] = {}
    for channel in sorted(state.tags.aliases):
        holder = state.holder(channel)
        if holder is not None:
            why.setdefault(holder, []).append(f"held by {channel}")
    for channel, gold in _last_gold(state, policy.keep_gold).items():
        for version in gold:
            why.setdefault(version, []).append(
                f"gold on {channel} (one of its last {policy.keep_gold})"
            )
    marks = sorted(state.tags.gold.items(), key=lambda item: _when(item[1].date))
    for version, _ in _last(marks, policy.keep_gold):
        why.setdefault(version, []).append(f"marked gold (one of the last {policy.keep_gold})")
    for version in _last(newest_last(state), policy.keep_recent):
        why.setdefault(version, []).append(f"one of the {policy.keep_recent} newest")
    return why


def _last(items: list[Any], n: int) -> list[Any]:
    """The last ``n`` of ``items`` (all of them when there are fewer; none for 0)."""
    return items[max(len(items) - n, 0) :] if n > 0 else []


def newest_last(state: ModelState) -> list[str]:
    """The live versions, the most recently registered last: "newest" is when a version
    was registered (its tag's date), not its number, so a hotfix v1.0.1 registered after
    v2.0.0 is the newer one. SemVer breaks ties (tags made within one second)."""
    live = sorted_versions([v for v in state.tags.versions if v not in state.tags.deregistered])
    rank = {v: i for i, v in enumerate(live)}
    return sorted(live, key=lambda v: (_when(state.tags.versions[v].date), rank[v]))


def _last_gold(state: ModelState, keep: int) -> dict[str, list[str]]:
    """Per channel, its last ``keep`` gold versions by when each last served it: the
    versions a rollback of that channel could go back to. A hand mark makes a version that
    served the channel gold there; marks alone are kept by their own rule."""
    found: dict[str, list[str]] = {}
    if keep == 0:
        return found
    for channel in sorted({e.channel for e in state.events}):
        last: dict[str, int] = {}
        for i, event in enumerate(state.channel_events(channel)):
            if event.version is not None:
                last[event.version] = i
        gold = [v for v, s in state.standing(channel).items() if s == "gold" and v in last]
        gold.sort(key=lambda v: last[v])
        if gold:
            found[channel] = _last(gold, keep)
    return found


def _when(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def prune_reason(state: ModelState, version: str, policy: Policy) -> str:
    channels = sorted({e.channel for e in state.events})
    standing = {c: state.standing(c).get(version) for c in channels}
    bad = [c for c in channels if standing[c] == "bad"]
    if bad:
        return f"rolled back from on {', '.join(bad)}"
    gold = [c for c in channels if standing[c] == "gold"]
    if gold:
        return f"gold on {', '.join(gold)}, not one of its last {policy.keep_gold}"
    return "not held, not recent, not gold"


def owned(manifest: Manifest, objects: Objects, *, required: bool) -> set[str]:
    """The objects a version needs: weights and dataset ids, and every directory's files
    as DVC's stored listing (``.dir``) names them, plus the manifest's own file list (which
    a hand-written manifest may lack: it is never trusted alone). ``required``: a listing
    that is gone is an error (a kept version whose files could not be told apart from the
    prunable ones)."""
    found: set[str] = set()
    dirs: list[tuple[str, str]] = []
    for weights in manifest.weights:
        found.add(weights.md5)
        found.update(f.md5 for f in weights.files)
        if weights.is_dir:
            dirs.append((weights.path, weights.md5))
    for data in manifest.dataset:
        found.add(data.md5)
        if data.is_dir:
            dirs.append((data.path, data.md5))
    for path, oid in dirs:
        listing = objects.listing(oid)
        if listing is None and required:
            raise OperationalError(
                f"{manifest.model} {manifest.version} keeps {path}, whose directory "
                f"listing {oid} is neither cached nor in the DVC remote",
                hint="push the version's data ('dvc push') before gc can tell what it needs",
            )
        found.update(listing or ())
    found.discard("")
    return found


def revived(state: ModelState, policy: Policy, leftovers: Iterable[str]) -> list[str]:
    """Of ``leftovers`` (versions whose deregistration a killed gc wrote here and never
    published), those a channel holds or retention keeps now, decided as if still live:
    someone may have promoted one since."""
    left = set(leftovers)
    if not left:
        return []
    live = replace(state, tags=replace(state.tags, deregistered=state.tags.deregistered - left))
    why = keep_reasons(live, policy)
    return sorted(v for v in left if v in why)


def needed_now(
    states: Mapping[str, ModelState],
    manifests: Mapping[tuple[str, str], Manifest],
    plan: GcPlan,
    known: set[tuple[str, str]],
    objects: Objects,
) -> set[str]:
    """Once the deregistrations are published, on the remote's tags fetched again: the
    objects of every version that appeared since the plan was decided (``known``: the
    versions it saw), of any model, and of any pruned version a channel holds now. A
    version registered meanwhile that reuses a pruned object uploaded nothing (DVC found
    the object stored), so only this keeps it."""
    pruned = {(v.model, v.version) for v in plan.pruned}
    found: set[str] = set()
    for model, state in sorted(states.items()):
        held = {state.holder(channel) for channel in state.tags.aliases}
        for version in state.tags.versions:
            key = (model, version)
            if key not in known or (key in pruned and version in held):
                manifest = manifests.get(key)
                if manifest is None:
                    raise OperationalError(
                        f"{model} {version} appeared while gc ran and has no readable "
                        "manifest, so gc cannot tell which objects it needs",
                    )
                found |= owned(manifest, objects, required=False)
    return found


def _needed(manifests: Mapping[tuple[str, str], Manifest], model: str, version: str) -> Manifest:
    """The manifest of a version whose objects must stay: without it, what it needs is
    unknown, and pruning could take it."""
    manifest = manifests.get((model, version))
    if manifest is None:
        raise OperationalError(
            f"{model} {version} has no readable manifest, so gc cannot tell which objects it needs",
            hint="run 'mvctl check'",
        )
    return manifest


def decide(
    states: Mapping[str, ModelState],
    manifests: Mapping[tuple[str, str], Manifest],
    scope: Iterable[str],
    policies: Mapping[str, Policy],
    objects: Objects,
    workspace: set[str],
) -> GcPlan:
    """The whole plan: for each version of the models in ``scope``, keep or prune and why,
    and the objects each pruned version frees (``manifests`` by (model, version), every
    model's; ``workspace``: the objects the checked-out workspace tracks)."""
    models = tuple(sorted(scope))
    drafts: list[tuple[str, str, Action, list[str], bool]] = []
    protected = set(workspace)
    for model, state in sorted(states.items()):
        if model not in models:  # another model's versions: all of them stay as they are
            for version in state.tags.versions:
                if version in state.tags.deregistered and (model, version) not in manifests:
                    continue
                manifest = _needed(manifests, model, version)
                protected |= owned(manifest, objects, required=False)
            continue
        why = keep_reasons(state, policies[model])
        for version in sorted_versions(list(state.tags.versions)):
            reasons = why.get(version, [])
            held = any(r.startswith("held by ") for r in reasons)
            if version in state.tags.deregistered and not held:
                reason = "pending prune" if was_pruned(state, version) else "deregistered"
                drafts.append((model, version, "prune", [reason], False))
            elif reasons:
                drafts.append((model, version, "keep", reasons, False))
                protected |= owned(_needed(manifests, model, version), objects, required=True)
            else:
                drafts.append(
                    (model, version, "prune", [prune_reason(state, version, policies[model])], True)
                )
    plans: list[VersionPlan] = []
    counted: set[str] = set()
    for model, version, action, reasons, deregister in drafts:
        found = manifests.get((model, version))
        freed: list[FreedObject] = []
        if action == "prune" and found is not None:
            for oid in sorted(owned(found, objects, required=False) - protected - counted):
                stored = objects.stored(oid)
                if stored.present:
                    counted.add(oid)
                    freed.append(
                        FreedObject(
                            oid, stored.size, stored.remote is not None, stored.cache is not None
                        )
                    )
        if action == "prune" and not deregister and not freed:
            # Deregistered before, and nothing of it is stored any more.
            gone = (
                "already pruned"
                if reasons[0] == "pending prune"
                else "deregistered; nothing stored"
            )
            action, reasons = "pruned", [gone]
        plans.append(VersionPlan(model, version, action, tuple(reasons), tuple(freed), deregister))
    return GcPlan(models, {m: policies[m] for m in models}, tuple(plans))
