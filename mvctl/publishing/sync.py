"""``mvctl sync``: bring channel state from the git remote, moving local aliases only forward.

Everything is fetched into a private namespace first (``refs/mvctl/sync/``), then applied by
compare-and-swap: immutable tags (versions, events, deregistrations, gold marks) are created
when missing; an alias moves only when the remote's names a newer event than the local one
(an alias naming none, such as a lightweight tag, stands for the newest assignment of its
channel on its commit).
A stop (the unassignment ``MODEL#CHANNEL!#N``) counts as the channel's newest state while no
assignment is newer than it, here or on the remote: then an alias of the channel is left over
from the stop, whatever its body says (a lightweight alias says nothing), so a local one is
deleted and a remote one is not brought back (its deletion is pending). An alias of a channel
assigned again after its stop belongs to that assignment and is synced like any other. With
``discard_local`` the local channel tags (events, stops and aliases) are made exactly the
remote's instead: moves that were never published are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitFailed, GitRepo, TagRecord
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
    """The number of the event an alias was moved by (its body says; 0: it says none)."""
    return tags.AliasBody.from_dict(tags.parse_message(record.message)[1]).counter


def _fetch_differing(
    git: GitRepo,
    remote: str,
    advertised: dict[str, str],
    local: dict[str, TagRecord],
    timeout: float | None,
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
    git.fetch(remote, [f"+refs/tags/{n}:{SYNC_NS}{n}" for n in wanted], timeout=timeout)
    return {r.name.removeprefix(SYNC_NS): r for r in git.tags(SYNC_NS)}


# A remote that moves while it is read is read again (a racer's push between the listing and
# the fetch); past this many readings its state is taken as it is, and `check` names what is
# missing. A listing the same as the one before, fetched as listed, is the remote's state too:
# a racer's push changes it, and an alias whose event the remote lacks for good (deleted by
# hand, a made-up body) must not make every sync and every --push move read it four times.
_READINGS = 4


def _as_listed(advertised: Mapping[str, str], fetched: Mapping[str, TagRecord]) -> bool:
    """Whether every tag fetched is the object the listing named."""
    return all(advertised.get(name) == record.object for name, record in fetched.items())


def _whole(
    advertised: Mapping[str, str], fetched: Mapping[str, TagRecord], local: Mapping[str, TagRecord]
) -> bool:
    """Whether the listing and the fetch read one state of the remote: every tag fetched is
    the object the listing named, and every alias's event is in the listing. Otherwise a
    racer pushed in between (or git read the remote's refs across its push), and an alias
    fetched without its event would have this clone decide on a move it does not have: its
    next event would reuse the name of the racer's."""
    if not _as_listed(advertised, fetched):
        return False
    for name in advertised:
        parsed = tags.parse(name)
        record = fetched.get(name) or local.get(name)
        if parsed is None or parsed.kind != "alias" or record is None:
            continue
        event = tags.AliasBody.from_dict(tags.parse_message(record.message)[1]).event
        if event is not None and event not in advertised:
            return False
    return True


@dataclass
class _Plan:
    commands: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    discarded: list[str] = field(default_factory=list)
    known: Mapping[str, TagRecord] = field(default_factory=dict)  # tags here and fetched

    def take(self, name: str, theirs: TagRecord, mine: TagRecord | None, bucket: list[str]) -> None:
        old = f" {mine.object}" if mine is not None else ""
        verb = "update" if mine is not None else "create"
        self.commands.append(f"{verb} refs/tags/{name} {theirs.object}{old}")
        bucket.append(name)

    def number(self, name: str, alias: TagRecord) -> int:
        """The number of the event alias ``name`` stands for: its body's, or for an alias
        whose body names none (a lightweight tag has no body) the newest assignment of its
        channel on its commit, here or fetched."""
        counter = alias_counter(alias)
        parsed = tags.parse(name)
        if counter or parsed is None:
            return counter
        key = (parsed.model, parsed.channel)
        return max(
            (
                event.counter
                for other, record in self.known.items()
                if record.commit == alias.commit
                and (event := tags.parse(other)) is not None
                and event.kind == "event"
                and (event.model, event.channel) == key
            ),
            default=0,
        )

    def decide(
        self,
        name: str,
        kind: str,
        theirs: TagRecord,
        mine: TagRecord | None,
        discard: bool,
        emptied: bool = False,
    ) -> None:
        """What to do with one tag the remote has, given ours (None: we lack it);
        ``emptied``: the tag's channel was stopped after its newest assignment, here or
        there."""
        if mine is not None and mine.object == theirs.object:
            return
        if discard and kind in _CHANNEL_KINDS and mine is not None:
            self.take(name, theirs, mine, self.discarded)
        elif mine is None and kind == "alias" and not discard and emptied:
            self.kept.append(name)  # left over from a stop: its deletion is pending
        elif mine is None:
            self.take(name, theirs, None, self.created if kind != "alias" else self.moved)
        elif kind != "alias":
            self.conflicts.append(name)  # immutable tags never move
        elif self.number(name, theirs) >= self.number(name, mine):
            self.take(name, theirs, mine, self.moved)  # the same number: the remote's is truth
        else:
            self.kept.append(name)


def _drop_stopped_aliases(
    plan: _Plan,
    local: dict[str, TagRecord],
    remote_records: dict[str, TagRecord],
    emptied: dict[tuple[str, str], int],
) -> None:
    """Delete local aliases of channels whose newest event (here or on the remote) is a
    stop: forward from a stop is empty. One that the remote has too (pushed back over the
    stop) then has its deletion pending."""
    for model, channel in emptied:
        name = tags.alias_tag(model, channel)
        mine, theirs = local.get(name), remote_records.get(name)
        if mine is None or (theirs is not None and theirs.object != mine.object):
            continue  # nothing here, or an alias the remote has otherwise: decided above
        plan.commands.append(f"delete refs/tags/{name} {mine.object}")
        plan.moved.append(name)


def sync_git(
    git: GitRepo,
    remote: str = "origin",
    model: str | None = None,
    *,
    dry_run: bool = False,
    discard_local: bool = False,
    timeout: float | None = None,
) -> SyncResult:
    """``timeout``: seconds each talk with the remote may take (none for the commands, which
    a person watches; the dashboard's pages must answer whatever the remote does)."""
    check_remote_name(remote)
    patterns = [f"{model}@*", f"{model}#*"] if model else ["*"]
    refs = [f"{tags.TAG_PREFIX}{p}" for p in patterns]
    local = {r.name: r for r in git.tags(*(f"{tags.TAG_PREFIX}{p}" for p in patterns))}
    previous: dict[str, str] | None = None
    held: dict[str, TagRecord] = {}  # what SYNC_NS holds: a fetch with nothing to take leaves it
    advertised = git.remote_tags(remote, refs, timeout=timeout)
    for attempt in range(_READINGS):
        try:
            fetched = _fetch_differing(git, remote, advertised, local, timeout)
        except GitFailed:
            # A tag listed and gone before the fetch (a racer's stop deletes its alias) fails
            # the fetch: read again when the remote did change, else it is git's failure.
            held = {}  # the fetch deleted the earlier reading's refs first
            again = git.remote_tags(remote, refs, timeout=timeout)
            if attempt == _READINGS - 1 or again == advertised:
                raise
            advertised, previous = again, None
            continue
        held = fetched or held
        if attempt == _READINGS - 1 or _whole(advertised, fetched, local):
            break
        if advertised == previous and _as_listed(advertised, fetched):
            break  # read twice the same: no racer, an alias without its event for good
        previous = advertised
        advertised = git.remote_tags(remote, refs, timeout=timeout)
    plan = _Plan(known={**local, **fetched})
    remote_records: dict[str, TagRecord] = {}
    emptied = tags.emptied_channels(local, advertised)
    for name in advertised:
        parsed = tags.parse(name)
        record = fetched.get(name) or local.get(name)
        if parsed is None or record is None:
            continue  # not mvctl's, or gone from the remote between the two calls
        remote_records[name] = record
        # A stop on either side newer than every assignment: the channel is empty (an
        # alias pushed back over a stop by hand is stale, not a move).
        stopped = (parsed.model, parsed.channel) in emptied
        plan.decide(name, parsed.kind, record, local.get(name), discard_local, stopped)
    if discard_local:
        for name, mine in local.items():
            parsed = tags.parse(name)
            if parsed and parsed.kind in _CHANNEL_KINDS and name not in remote_records:
                plan.commands.append(f"delete refs/tags/{name} {mine.object}")
                plan.discarded.append(name)
    else:
        _drop_stopped_aliases(plan, local, remote_records, emptied)
    # A dry run reports what would move; only the private fetch refs go.
    commands = [] if dry_run else plan.commands
    commands += [f"delete {SYNC_NS}{name} {r.object}" for name, r in held.items()]
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
