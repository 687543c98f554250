"""``mvctl sync``: bring channel state from the git remote, moving local aliases only forward.

Everything is fetched into a private namespace first (``refs/mvctl/sync/``), then applied by
compare-and-swap: immutable tags (versions, events, deregistrations, gold marks) are created
when missing; an alias moves only when the remote's names a newer event than the local one.
A stop (the unassignment ``MODEL#CHANNEL!#N``) counts as the channel's newest state: a local
alias is deleted when the remote stopped the channel after it, and a remote alias is not
brought back over a newer local stop (its deletion is pending). With ``discard_local`` the
local channel tags (events, stops and aliases) are made exactly the remote's instead: moves
that were never published are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.errors import UsageError
from mvctl.formats import tags
from mvctl.formats.names import check_model

SYNC_NS = "refs/mvctl/sync/"
_CHANNEL_KINDS = ("event", "unassign", "alias")


@dataclass(frozen=True)
class SyncResult:
    remote: str
    created: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()  # aliases moved forward
    kept: tuple[str, ...] = ()  # local aliases newer than the remote's (not yet pushed)
    conflicts: tuple[str, ...] = ()  # immutable tags that differ locally and remotely
    discarded: tuple[str, ...] = ()  # local channel tags dropped or reset (discard_local)
    remote_objects: dict[str, str] = field(default_factory=dict)  # tag -> object on remote
    remote_records: dict[str, TagRecord] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "created": list(self.created),
            "moved": list(self.moved),
            "kept": list(self.kept),
            "conflicts": list(self.conflicts),
            "discarded": list(self.discarded),
        }


def check_remote_name(remote: str) -> str:
    if not remote or remote.startswith("-") or any(c.isspace() for c in remote):
        raise UsageError(f"invalid git remote {remote!r}")
    return remote


def alias_counter(record: TagRecord) -> int:
    """The number of the event an alias was moved by (its body says)."""
    return tags.AliasBody.from_dict(tags.parse_message(record.message)[1]).counter


def _fetch_differing(
    git: GitRepo, remote: str, advertised: dict[str, str], local: dict[str, TagRecord]
) -> dict[str, TagRecord]:
    """Only tags that differ are fetched: a sync with nothing new is one ls-remote, whatever
    the number of versions and events (fetching them all wrote and deleted a ref each)."""
    wanted = [
        name
        for name, obj in advertised.items()
        if tags.parse(name) is not None and (name not in local or local[name].object != obj)
    ]
    if not wanted:
        return {}
    stale = git.refs(SYNC_NS)
    if stale:
        git.update_refs([f"delete {ref}" for ref in stale], what="mvctl's sync refs")
    git.fetch(remote, [f"+refs/tags/{n}:{SYNC_NS}{n}" for n in wanted])
    return {r.name.removeprefix(SYNC_NS): r for r in git.tags(SYNC_NS)}


@dataclass
class _Plan:
    commands: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)

    def take(self, name: str, theirs: TagRecord, mine: TagRecord | None, bucket: list[str]) -> None:
        old = f" {mine.object}" if mine is not None else ""
        verb = "update" if mine is not None else "create"
        self.commands.append(f"{verb} refs/tags/{name} {theirs.object}{old}")
        bucket.append(name)

    def decide(
        self,
        name: str,
        kind: str,
        theirs: TagRecord,
        mine: TagRecord | None,
        discard: bool,
        stopped: int = 0,
    ) -> None:
        """What to do with one tag the remote has, given ours (None: we lack it);
        ``stopped``: the number of the newest stop of the tag's channel, here or there."""
        if mine is not None and mine.object == theirs.object:
            return
        if discard and kind in _CHANNEL_KINDS and mine is not None:
            self.take(name, theirs, mine, self.discarded)
        elif mine is None and kind == "alias" and not discard and stopped > alias_counter(theirs):
            self.kept.append(name)  # stopped after the remote's move: its deletion is pending
        elif mine is None:
            self.take(name, theirs, None, self.created if kind != "alias" else self.moved)
        elif kind != "alias":
            self.conflicts.append(name)  # immutable tags never move
        elif alias_counter(theirs) >= alias_counter(mine):
            self.take(name, theirs, mine, self.moved)  # the same number: the remote's is truth
        else:
            self.kept.append(name)


def _drop_stopped_aliases(
    plan: _Plan,
    local: dict[str, TagRecord],
    remote_records: dict[str, TagRecord],
    *stops: dict[tuple[str, str], int],
) -> None:
    """Delete local aliases older than their channel's newest stop (here or on the remote):
    forward from a stop is empty. One that the remote has too (pushed back over the stop)
    then has its deletion pending. Only channels with a stop are looked at."""
    for model, channel in {key for found in stops for key in found}:
        name = tags.alias_tag(model, channel)
        mine, theirs = local.get(name), remote_records.get(name)
        if mine is None or (theirs is not None and theirs.object != mine.object):
            continue  # nothing here, or an alias the remote has otherwise: decided above
        if max(found.get((model, channel), 0) for found in stops) > alias_counter(mine):
            plan.commands.append(f"delete refs/tags/{name} {mine.object}")
            plan.moved.append(name)


def sync_git(
    git: GitRepo,
    remote: str = "origin",
    model: str | None = None,
    *,
    dry_run: bool = False,
    discard_local: bool = False,
) -> SyncResult:
    check_remote_name(remote)
    patterns = [f"{model}@*", f"{model}#*"] if model else ["*"]
    advertised = git.remote_tags(remote, [f"{tags.TAG_PREFIX}{p}" for p in patterns])
    local = {r.name: r for r in git.tags(*(f"{tags.TAG_PREFIX}{p}" for p in patterns))}
    fetched = _fetch_differing(git, remote, advertised, local)
    plan = _Plan()
    remote_records: dict[str, TagRecord] = {}
    stopped_here, stopped_there = tags.newest_stops(local), tags.newest_stops(advertised)
    for name in advertised:
        parsed = tags.parse(name)
        record = fetched.get(name) or local.get(name)
        if parsed is None or record is None:
            continue  # not mvctl's, or gone from the remote between the two calls
        remote_records[name] = record
        # A stop on either side newer than the remote's alias: the channel is empty (an
        # alias pushed back over a stop by hand is stale, not a move).
        key = (parsed.model, parsed.channel)
        stopped = max(stopped_here.get(key, 0), stopped_there.get(key, 0))
        plan.decide(name, parsed.kind, record, local.get(name), discard_local, stopped)
    if discard_local:
        for name, mine in local.items():
            parsed = tags.parse(name)
            if parsed and parsed.kind in _CHANNEL_KINDS and name not in remote_records:
                plan.commands.append(f"delete refs/tags/{name} {mine.object}")
                plan.discarded.append(name)
    else:
        _drop_stopped_aliases(plan, local, remote_records, stopped_here, stopped_there)
    # A dry run reports what would move; only the private fetch refs go.
    commands = [] if dry_run else plan.commands
    commands += [f"delete {SYNC_NS}{name} {r.object}" for name, r in fetched.items()]
    if commands:
        git.update_refs(commands, what="channel tags")
    return SyncResult(
        remote,
        tuple(plan.created),
        tuple(plan.moved),
        tuple(plan.kept),
        tuple(plan.conflicts),
        tuple(plan.discarded),
        {name: r.object for name, r in remote_records.items()},
        remote_records,
    )


def sync(
    root: Path,
    remote: str = "origin",
    model: str | None = None,
    *,
    dry_run: bool = False,
    discard_local: bool = False,
) -> SyncResult:
    if model is not None:
        check_model(model)
    return sync_git(GitRepo.open(root), remote, model, dry_run=dry_run, discard_local=discard_local)
