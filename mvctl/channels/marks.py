"""Marks on a version: gold (a human vouching for it, ``mark-gold``) and deregistered
(GTO's ``MODEL@vX.Y.Z!``, ``retire``), published like every registry tag."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.moves import now
from mvctl.common import interrupts
from mvctl.errors import (
    Interrupted,
    PolicyError,
)
from mvctl.formats import tags
from mvctl.formats.names import check_model, check_text
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git


@dataclass(frozen=True)
class VersionMark:
    model: str
    version: str
    tag: str
    reason: str
    pushed: bool = False
    dry_run: bool = False
    remote: str | None = None
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tag": self.tag,
            "reason": self.reason,
            "pushed": self.pushed,
            "remote": self.remote,
            "published": list(self.published),
            "dry_run": self.dry_run,
        }


def _mark(
    root: Path,
    model: str,
    version: str,
    kind: Literal["gold", "deregister"],
    reason: str,
    push: bool | None,
    remote: str,
    dry_run: bool,
) -> VersionMark:
    check_model(model)
    check_text(reason, "--reason")
    git = GitRepo.open(root)
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where and not dry_run else None
    state = channels.load(git, model)
    channels.require_version(state, version)
    name = tags.gold_tag(model, version) if kind == "gold" else tags.deregister_tag(model, version)
    if kind == "deregister":
        holders = [c for c in state.tags.aliases if state.holder(c) == version]
        if holders:
            raise PolicyError(
                f"{model} {version} is held by {', '.join(sorted(holders))}",
                hint="promote or roll back those channels to another version first",
            )
    mark = VersionMark(model, version, name, reason, dry_run=dry_run, remote=where)
    already = version in (state.tags.gold if kind == "gold" else state.tags.deregistered)
    if dry_run or (already and synced is None):
        return mark
    obj = None
    if not already:
        title = f"{'Mark' if kind == 'gold' else 'Deregister'} {model} {version}"
        body = tags.MarkBody(kind, model, version, reason, actor=git.ident(), time=now(git))
        obj = git.create_annotated_tag(
            name, state.tags.versions[version].commit, tags.format_message(title, body.to_dict())
        )
    if synced is None:
        return mark

    def undo() -> None:
        if obj is not None:
            with interrupts.shielded():
                git.update_refs([f"delete refs/tags/{name} {obj}"], what=name)

    try:
        records = git.tags(f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*")
        try:
            names = publish.push_refs(git, publish.pending(records, synced))
        except publish.Unsettled as unsettled:
            names = publish.settle(unsettled, undo)
        interrupts.settle()
    except (publish.Unsettled, Interrupted):
        raise  # settled: the state it left is the one its message names
    except BaseException:
        undo()
        raise
    return replace(mark, pushed=True, published=tuple(names))


def mark_gold(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Vouch for a version: rollbacks may choose it (unless later rolled back from)."""
    return _mark(root, model, version, "gold", reason, push, remote, dry_run)


def retire(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Deregister a version (GTO's ``MODEL@vX.Y.Z!``); refused while any channel holds it."""
    return _mark(root, model, version, "deregister", reason, push, remote, dry_run)
