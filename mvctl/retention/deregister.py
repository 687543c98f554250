"""gc's deregistration tags (GTO's ``MODEL@vX.Y.Z!``, ``pruned: true``): written in one
transaction, published in one atomic push leased on every channel of the models in scope,
and, when a killed run left some unpublished, decided again before anything else.

The lease is what makes the push a compare-and-swap on "no channel moved onto a version
this plan prunes": every alias the remote had at the sync is leased on its object, and
every other channel the models could use (mvctl.yaml's ``channels:``, and any with
events) on "must not exist", so a channel created meanwhile refuses the push too.
"""

from __future__ import annotations

from collections.abc import Iterable

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels import state as channels
from mvctl.channels.moves import now
from mvctl.common import interrupts
from mvctl.errors import ConflictError, Interrupted, OperationalError
from mvctl.formats import tags
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult
from mvctl.retention.plan import VersionPlan


def leftovers(state: channels.ModelState, synced: SyncResult) -> dict[str, TagRecord]:
    """version -> its deregistration tag, for those gc wrote here (``pruned: true``) that
    the remote lacks: a run killed before its push left them."""
    found: dict[str, TagRecord] = {}
    for record in state.records:
        parsed = tags.parse(record.name)
        if parsed is None or parsed.kind != "deregister" or record.name in synced.remote_objects:
            continue
        if tags.MarkBody.from_dict(tags.parse_message(record.message)[1]).pruned:
            found[parsed.version] = record
    return found


def take_back(git: GitRepo, records: Iterable[TagRecord]) -> list[str]:
    """Delete these local deregistration tags, each only if still at its object."""
    chosen = list(records)
    if chosen:
        git.update_refs(
            [f"delete refs/tags/{r.name} {r.object}" for r in chosen],
            what="unpublished deregistration tags",
        )
    return [r.name for r in chosen]


def _create(git: GitRepo, created: list[tuple[str, str]]) -> None:
    """Create the tags in one transaction. A failure reported after git made them all (the
    refs say so when read again) is no failure: claiming "nothing was changed" then would
    be false."""
    try:
        git.update_refs(
            [f"create refs/tags/{n} {o}" for n, o in created], what="deregistration tags"
        )
    except ConflictError:
        have = {r.name: r.object for r in git.tags(*(tags.TAG_PREFIX + n for n, _ in created))}
        if any(have.get(n) != o for n, o in created):
            raise


def write(
    git: GitRepo, states: dict[str, channels.ModelState], pruned: tuple[VersionPlan, ...]
) -> list[tuple[str, str]]:
    """Write the deregistration tag of each newly pruned version; (name, object) each."""
    specs = []
    for entry in (v for v in pruned if v.deregister):
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
        specs.append((name, states[entry.model].tags.versions[entry.version].commit, body, title))
    if not specs:
        return []
    objs = git.make_tags([(n, c, tags.format_message(t, b.to_dict())) for n, c, b, t in specs])
    created = [(spec[0], obj) for spec, obj in zip(specs, objs, strict=True)]
    _create(git, created)
    return created


def _refuse_held(git: GitRepo, names: Iterable[str]) -> None:
    """Never publish the deregistration of a version a channel holds (as this clone sees
    the channels, the remote's synced in): the last check before the push."""
    for name in names:
        parsed = tags.parse(name)
        if parsed is None or parsed.kind != "deregister":
            continue
        state = channels.load(git, parsed.model)
        held = sorted(c for c in state.tags.aliases if state.holder(c) == parsed.version)
        if held:
            raise OperationalError(
                f"refusing to publish {name}: {', '.join(held)} holds {parsed.version}",
                hint=f"delete the local tag ('git tag -d {name}') or move the channel first",
            )


def _leases(
    git: GitRepo,
    states: dict[str, channels.ModelState],
    channel_names: Iterable[str],
    found: publish.Pending,
    synced: SyncResult,
    scope: list[str],
) -> tuple[list[str], dict[str, str], list[str]]:
    """Refspecs pushing unchanged aliases, their leases, and the refs that must stay absent:
    every channel of every model in scope, except those the push moves anyway."""
    local = {r.name: r.object for m in scope for r in git.tags(f"{tags.TAG_PREFIX}{m}@*")}
    extra: list[str] = []
    leases: dict[str, str] = {}
    absent: list[str] = []
    for model in scope:
        state = states[model]
        used = {e.channel for e in state.events} | set(state.tags.aliases) | set(channel_names)
        for channel in sorted(used):
            name = tags.alias_tag(model, channel)
            ref = f"refs/tags/{name}"
            if name in found.aliases or name in found.deletions:
                continue  # the push moves it, leased on the remote's value already
            theirs = synced.remote_objects.get(name)
            if theirs is None:
                absent.append(ref)
            else:
                # Pushed unchanged: its own object where this clone has it, by id otherwise.
                extra.append(ref if local.get(name) == theirs else f"{theirs}:{ref}")
                leases[ref] = theirs
    return extra, leases, absent


def publish_all(
    git: GitRepo,
    states: dict[str, channels.ModelState],
    created: list[tuple[str, str]],
    synced: SyncResult,
    scope: list[str],
    channel_names: Iterable[str],
) -> list[str]:
    """Publish the deregistrations with whatever else of these models is pending, in one
    atomic push. Any failure before the push landed takes the new tags back: nothing is
    deleted then."""

    def undo() -> None:
        if created:
            with interrupts.shielded():
                git.update_refs(
                    [f"delete refs/tags/{n} {o}" for n, o in created], what="deregistration tags"
                )

    patterns = [p for m in scope for p in (f"{tags.TAG_PREFIX}{m}@*", f"{tags.TAG_PREFIX}{m}#*")]
    try:
        found = publish.pending(git.tags(*patterns), synced)
        _refuse_held(git, found.tags)
        extra, leases, absent = _leases(git, states, channel_names, found, synced, scope)
        try:
            published = publish.push_refs(git, found, extra, leases, absent=absent)
        except publish.Unsettled as unsettled:
            published = publish.settle(unsettled, undo)
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except BaseException:
        undo()
        raise
    return published
