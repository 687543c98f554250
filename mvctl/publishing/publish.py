"""Publishing: the registry's tags reach the git remote that serving hosts follow.

One rule for every command that writes registry tags (register, promote, rollback,
mark-gold, retire): in a registry with a git remote it publishes by default, together with
everything of that model still pending (tags written locally that the remote lacks), so a
pushed version never names a parent the remote lacks and event counters never leave gaps.
``--local`` (``push=False``) or ``push: never`` in mvctl.yaml keep a move local.

Pending state is always computed against the remote's tags as fetched just now
(``sync_git``), never against what mvctl believes it pushed: a move interrupted between its
local write and its push shows up as pending, and the next publishing command completes it.
A stop (``canary stop``) is published as its unassignment plus the alias's deletion, leased
on the remote's alias like any move: an alias the remote still has, of a channel whose newest
event (here or there) is a stop, is pending deletion once this clone has deleted it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl._adapters.git import (
    Declined,
    GitFailed,
    GitRepo,
    PushInterrupted,
    Refused,
    TagRecord,
)
from mvctl.common import interrupts
from mvctl.errors import ConflictError, Interrupted, MvctlError, OperationalError, UsageError
from mvctl.formats import config, tags
from mvctl.formats.config import CONFIG_FILE
from mvctl.formats.names import check_model
from mvctl.publishing.sync import SyncResult, check_remote_name, sync_git

if TYPE_CHECKING:  # imported when a push landed: ~6 ms of every move's start-up
    from mvctl.publishing.pointers import PointerReport


def push_setting(root: Path) -> str:
    """mvctl.yaml's ``push`` (``auto`` unless set). A rollback must stay fast, so the file
    is only parsed when it mentions the key at all."""
    try:
        text = (root / CONFIG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "auto"  # commands that need the config report the problem themselves
    if not any("push" in line.split("#", 1)[0] for line in text.splitlines()):
        return "auto"  # no key could say it (comments aside): skip the YAML parse
    return config.loads(text).push


def target(git: GitRepo, push: bool | None, remote: str) -> str | None:
    """Where a write command publishes: ``remote``, or None to keep the move local.

    ``push`` True insists (an error without such a remote), False keeps local, None follows
    the registry's rule: publish when ``remote`` is configured and mvctl.yaml does not say
    ``push: never``."""
    check_remote_name(remote)
    if push is False:
        return None
    configured = git.remote_url(remote) is not None
    if push is True:
        if not configured:
            raise UsageError(
                f"there is no git remote {remote!r} to publish to",
                hint=f"add one with 'git remote add {remote} URL', or use --local",
            )
        return remote
    if not configured or push_setting(git.root) == "never":
        return None
    return remote


@dataclass(frozen=True)
class Pending:
    """What the remote lacks of the local registry tags (for one model, or all)."""

    remote: str
    tags: tuple[str, ...]  # immutable tags (versions, events, marks) only local
    aliases: dict[str, str]  # alias tag -> the remote's object ("" = absent there)
    conflicts: tuple[str, ...] = ()  # immutable tags that differ from the remote's
    local: dict[str, str] = field(default_factory=dict, repr=False)  # tag -> local object
    deletions: dict[str, str] = field(default_factory=dict)  # stopped alias -> remote's object

    @property
    def empty(self) -> bool:
        return not self.tags and not self.aliases and not self.deletions

    def names(self) -> list[str]:
        return [*self.tags, *self.aliases, *self.deletions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "tags": list(self.tags),
            "aliases": sorted(self.aliases),
            "deletions": sorted(self.deletions),
            "conflicts": list(self.conflicts),
        }


def pending(records: list[TagRecord], synced: SyncResult) -> Pending:
    """Local ``records`` the remote lacks, after ``synced`` brought the remote's in."""
    return pending_objects({r.name: r.object for r in records}, synced)


def pending_objects(local: dict[str, str], synced: SyncResult) -> Pending:
    """:func:`pending` from the local tags' names and objects alone (in push order): all a
    decision on what the remote lacks reads, without opening 20,000 tag objects."""
    immutable: list[str] = []
    aliases: dict[str, str] = {}
    conflicts = list(synced.conflicts)
    # Event numbers count per model across channels: a local-only event whose number the
    # remote already uses (on another channel) conflicts as surely as one with its name.
    taken = {
        (parsed.model, parsed.counter)
        for name in synced.remote_objects
        if (parsed := tags.parse(name)) is not None and parsed.channel_event
    }
    for name, obj in local.items():
        parsed = tags.parse(name)
        if parsed is None:
            continue
        theirs = synced.remote_objects.get(name)
        if parsed.kind == "alias":
            # sync moved every alias the remote had newer: a difference left is ours.
            if theirs != obj:
                aliases[name] = theirs or ""
        elif theirs is None:
            if parsed.channel_event and (parsed.model, parsed.counter) in taken:
                conflicts.append(name)
            else:
                immutable.append(name)
    deletions = _deletions(synced, local)
    return Pending(synced.remote, tuple(immutable), aliases, tuple(conflicts), local, deletions)


def _deletions(synced: SyncResult, local: dict[str, str]) -> dict[str, str]:
    """Aliases the remote has that a stop deleted here: of channels whose newest event,
    here or on the remote, is a stop (no assignment after it). Only channels with a stop
    are looked at: the common case costs nothing."""
    found: dict[str, str] = {}
    for model, channel in tags.emptied_channels(local, synced.remote_objects):
        name = tags.alias_tag(model, channel)
        theirs = synced.remote_records.get(name)
        if theirs is not None and name not in local:
            found[name] = theirs.object
    return found


def refuse_conflicts(found: Pending) -> None:
    if found.conflicts:
        shown = ", ".join(found.conflicts[:3])
        raise ConflictError(
            f"local {shown} differ from {found.remote}'s: moves made here were never "
            f"published and someone else published the same events first",
            hint=f"run 'mvctl sync --discard-local --remote {found.remote}' to take "
            f"{found.remote}'s channel tags (unpublished local moves are dropped), then retry",
        )


class Unsettled(OperationalError):
    """A push that neither clearly landed nor was clearly refused: interrupted, or failed
    in a way (a connection lost) that does not say whether the remote took it. ``landed``
    is what the remote says now (True, False, or None when it cannot be asked)."""

    def __init__(
        self,
        remote: str,
        what: str,
        landed: bool | None,
        interrupted: bool,
        names: list[str],
        cause: MvctlError | None,
    ) -> None:
        self.remote, self.what, self.landed = remote, what, landed
        self.interrupted, self.names, self.cause = interrupted, names, cause
        said = f" ({cause.message})" if cause else ""
        if landed is True:
            message = f"interrupted after the push landed: {what} is on {remote}"
        elif landed is False:
            verb = "interrupted before the push landed" if interrupted else "the push failed"
            message = f"{verb}: {remote} does not have {what}{said}"
        else:
            verb = "interrupted during the push" if interrupted else "the push failed"
            message = f"{verb}, and it is not known whether {remote} has {what}{said}"
        super().__init__(
            message,
            hint=f"'mvctl status' shows what {remote} lacks; the same command again (or "
            "'mvctl push') publishes it, never a further step",
        )
        self.exit_code = 130 if interrupted else 3


def _landed(git: GitRepo, remote: str, name: str, obj: str | None) -> bool | None:
    """Whether the remote has ``name`` at ``obj`` (None: whether it lacks ``name``)."""
    ref = f"refs/tags/{name}"
    try:
        return git.remote_objects(remote, [ref], timeout=15).get(ref) == obj
    except MvctlError:
        return None


def push_refs(
    git: GitRepo,
    found: Pending,
    extra: list[str] | None = None,
    leases: dict[str, str] | None = None,
    *,
    skip_conflicted: bool = False,
    absent: list[str] | None = None,
) -> list[str]:
    """One atomic push of everything in ``found`` (aliases leased on the remote's value) and
    ``extra`` refs; returns the tag names pushed. A clean refusal (a lost race, declining
    hooks) raises as it is: nothing landed. Anything less clear raises Unsettled, after
    asking the remote whether it has the push's last tag. ``skip_conflicted`` leaves out
    tags that conflict with the remote's, and the aliases of their channels, instead of
    refusing: a rollback of production must not wait on someone's unpublished staging.
    ``absent``: refs the remote must still lack. git ignores a lease on a ref the push does
    not update, so each goes as its deletion leased on nothing: a no-op while the ref is
    absent (the remote only warns), a refusal of the whole push once someone created it."""
    if skip_conflicted:
        found = _without_conflicts(found)
    else:
        refuse_conflicts(found)
    written = list(dict.fromkeys([*found.tags, *found.aliases]))
    names = [*written, *(d for d in found.deletions if d not in written)]
    all_leases = {f"refs/tags/{a}": old for a, old in found.aliases.items()}
    # A stop deletes the remote's alias only if it is still the one this clone saw there.
    all_leases.update({f"refs/tags/{a}": old for a, old in found.deletions.items()})
    all_leases.update(leases or {})
    guards = [ref for ref in absent or () if ref not in all_leases]
    all_leases.update(dict.fromkeys(guards, ""))
    refspecs = list(
        dict.fromkeys(
            [
                *(f"refs/tags/{n}" for n in written),
                *(f":refs/tags/{n}" for n in names[len(written) :]),
                *(extra or []),
                *(f":{ref}" for ref in guards),
            ]
        )
    )
    if not refspecs:
        return names
    witness = names[-1] if names else None
    if written:
        witness = written[-1]

    def landed_now() -> bool | None:
        if witness is None:
            return None
        expected = None if witness not in written else found.local.get(witness, "")
        return _landed(git, found.remote, witness, expected)

    what = witness or "the push"
    try:
        already = git.push(found.remote, refspecs, leases=all_leases)
    except PushInterrupted as exc:
        landed: bool | None
        if exc.returncode == 0:
            landed = True
        elif isinstance(exc.error, Refused | Declined):
            landed = False
        else:
            landed = landed_now()
        raise Unsettled(found.remote, what, landed, True, names, exc.error) from None
    except (Refused, Declined):
        raise
    except GitFailed as exc:
        landed = landed_now()
        if landed is True:
            return names  # the connection dropped after the remote took it all
        raise Unsettled(found.remote, what, landed, False, names, exc) from None
    # Tags the remote already had, byte for byte, were published by someone else first.
    return [n for n in names if f"refs/tags/{n}" not in already]


def _without_conflicts(found: Pending) -> Pending:
    hit = {
        (parsed.model, parsed.channel)
        for name in found.conflicts
        if (parsed := tags.parse(name)) is not None and parsed.channel_event
    }

    def clear(name: str) -> bool:
        parsed = tags.parse(name)
        return (
            parsed is None
            or not (parsed.channel_event or parsed.kind == "alias")
            or (parsed.model, parsed.channel) not in hit
        )

    aliases = {name: old for name, old in found.aliases.items() if clear(name)}
    kept = tuple(name for name in found.tags if clear(name))
    deletions = {name: old for name, old in found.deletions.items() if clear(name)}
    return Pending(found.remote, kept, aliases, (), found.local, deletions)


def settle(unsettled: Unsettled, undo: Callable[[], None]) -> list[str]:
    """After an Unsettled push of a change made here: keep the change where the remote has
    it, take it back where the remote does not, and say which. Returns the names pushed
    only for a push that landed uninterrupted (the caller's success)."""
    if unsettled.landed is True and not unsettled.interrupted:
        return unsettled.names
    if unsettled.landed is False:
        with interrupts.shielded():
            undo()
        verb = "interrupted before the push landed" if unsettled.interrupted else "the push failed"
        cause = f" ({unsettled.cause.message})" if unsettled.cause else ""
        error = Interrupted if unsettled.interrupted else OperationalError
        raise error(
            f"{verb}: nothing changed, locally or on {unsettled.remote}{cause}",
            hint="run the command again",
        ) from None
    raise unsettled


@dataclass(frozen=True)
class PushResult:
    remote: str
    pushed: tuple[str, ...]
    behind: tuple[str, ...]  # aliases the remote had newer (moved forward locally)
    dry_run: bool = False
    pointers: PointerReport | None = None  # pointer files written after the push

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "remote": self.remote,
            "pushed": list(self.pushed),
            "moved_forward": list(self.behind),
            "dry_run": self.dry_run,
        }
        if self.pointers is not None:  # only with `pointers: true`
            out["pointers"] = self.pointers.to_dict()
        return out


def _model_patterns(model: str | None) -> list[str]:
    if model is None:
        return [tags.TAG_PREFIX]
    return [f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*"]


def status(root: Path, remote: str = "origin", model: str | None = None) -> Pending:
    """What ``remote`` lacks (tags and aliases), from a fresh fetch; nothing local moves."""
    if model is not None:
        check_model(model)
    git = GitRepo.open(root)
    synced = sync_git(git, check_remote_name(remote), model, dry_run=True)
    records = git.tags(*_model_patterns(model))
    local_only = pending(records, synced)
    # A dry-run sync moved nothing: an alias the remote has newer is not ours to push.
    behind = set(synced.moved)
    aliases = {a: old for a, old in local_only.aliases.items() if a not in behind}
    deletions = {a: old for a, old in local_only.deletions.items() if a not in behind}
    return Pending(remote, local_only.tags, aliases, synced.conflicts, deletions=deletions)


def push(
    root: Path, remote: str = "origin", model: str | None = None, *, dry_run: bool = False
) -> PushResult:
    """``mvctl push``: publish everything pending, in one atomic, leased push."""
    if model is not None:
        check_model(model)
    git = GitRepo.open(root)
    remote = check_remote_name(remote)
    if git.remote_url(remote) is None:
        raise UsageError(f"there is no git remote {remote!r}", hint="see 'git remote -v'")
    synced = sync_git(git, remote, model, dry_run=dry_run)
    found = pending(git.tags(*_model_patterns(model)), synced)
    if dry_run:
        refuse_conflicts(found)
        behind = set(synced.moved)
        names = [n for n in found.names() if n not in behind]
        return PushResult(remote, tuple(names), tuple(synced.moved), dry_run=True)
    pushed = push_refs(git, found)
    from mvctl.publishing.pointers import after_push

    report = after_push(git, pushed)  # git first: only now may a pointer say so
    return PushResult(remote, tuple(pushed), tuple(synced.moved), pointers=report)
