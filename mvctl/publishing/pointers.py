"""Pointer files (``pointers: true`` in mvctl.yaml): after a push moved channel aliases on
the git remote, the pointer of each moved channel is written to the registry's DVC remote
(``mvctl/channels/MODEL/CHANNEL.json``), so a fleet polls that store and asks git only
when a pointer changes.

Git first, always: a pointer is written only once the push landed, and a pointer that
cannot be written is a warning, never a failure: git, the source of truth, moved, and
hosts still see the move on their next git poll."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mvctl._adapters import pointerstore
from mvctl._adapters.git import GitRepo
from mvctl.errors import MvctlError, OperationalError
from mvctl.formats import config, tags
from mvctl.formats import manifest as manifest_schema
from mvctl.formats import pointer as pointer_format
from mvctl.formats.layout import manifest_path
from mvctl.formats.names import redacted_url


@dataclass(frozen=True)
class PointerReport:
    """What was written (or removed, for a stopped channel) and what could not be."""

    store: str | None = None  # the DVC remote's URL, redacted
    written: tuple[str, ...] = ()  # keys written
    removed: tuple[str, ...] = ()  # keys of channels whose alias is gone
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "store": self.store,
            "written": list(self.written),
            "removed": list(self.removed),
            "warning": self.warning,
        }


def after_push(git: GitRepo, published: Sequence[str]) -> PointerReport | None:
    """Write the pointers of the aliases in ``published`` (tag names a push carried: an
    alias no longer here was deleted by it). None when pointers are off or none moved."""
    aliases = [n for n in published if (p := tags.parse(n)) is not None and p.kind == "alias"]
    if not aliases:
        return None
    try:
        if not config.load(git.root).pointers:
            return None
    except MvctlError as exc:
        return PointerReport(warning=_warning(f"{exc.message}; no pointer written"))
    store_name: str | None = None
    done: list[str] = []
    gone: list[str] = []
    try:
        url, options = pointerstore.registry_remote(git.root)
        store_name = redacted_url(url)
        store = pointerstore.open_store(url, options)
        for name, body in _documents(git, aliases):
            model, channel = name.split("@", 1)
            key = pointer_format.key(model, channel)
            if body is None:
                store.delete(key)
                gone.append(key)
            else:
                store.write(key, body)
                done.append(key)
    except MvctlError as exc:
        return PointerReport(store_name, tuple(done), tuple(gone), _warning(exc.message))
    return PointerReport(store_name, tuple(done), tuple(gone))


def _warning(cause: str) -> str:
    return (
        f"pointer files not updated ({cause}): the move is published in git, the source of "
        "truth; hosts watching pointers see it on their next git poll (--git-interval)"
    )


def _documents(git: GitRepo, aliases: Iterable[str]) -> list[tuple[str, bytes | None]]:
    """(alias, its pointer document, or None when the alias is gone)."""
    names = list(aliases)
    records = git.named_tags(names)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    found: list[tuple[str, bytes | None]] = []
    for name in names:
        if name not in records:
            found.append((name, None))
            continue
        record = records[name]
        if record is None:
            raise OperationalError(f"{name} is not an annotated tag on a commit")
        body = tags.AliasBody.from_dict(tags.parse_message(record.message)[1])
        if not body.event:
            raise OperationalError(f"{name}'s body names no event")
        model = body.model
        doc = pointer_format.Pointer(
            model=model,
            channel=body.channel,
            event=body.event,
            commit=record.commit,
            version=body.version,
            weights=_weights(git, model, record.commit),
            published=now,
        )
        found.append((name, pointer_format.dumps(doc)))
    return found


def _weights(git: GitRepo, model: str, commit: str) -> tuple[tuple[str, str], ...]:
    where = manifest_path(model)
    text = git.read_blob(commit, where)
    if text is None:
        raise OperationalError(f"the commit {commit[:12]} has no {where}")
    manifest = manifest_schema.parse(text, where)
    return tuple(
        sorted((str(w["path"]), str(w["md5"])) for w in manifest["weights"] if isinstance(w, dict))
    )
