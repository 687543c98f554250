"""``mvctl register MODEL --resume``: finish a registration that was killed after its commit
and before its tag (see mvctl.recovery). The manifest at HEAD is what it committed; the
artifacts were uploaded before that commit, and are pushed again (a no-op when present) in
case the DVC remote lost them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters import dvc
from mvctl._adapters.git import GitRepo
from mvctl.common import interrupts
from mvctl.errors import Interrupted, OperationalError, PolicyError
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.manifest import parse
from mvctl.formats.names import check_model
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry import recovery
from mvctl.registry.register import code_digest, publish_registration, version_tag_message_of


@dataclass(frozen=True)
class Resumed:
    model: str
    version: str
    tag: str
    commit: str
    pushed: bool = False
    remote: str | None = None
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tag": self.tag,
            "commit": self.commit,
            "pushed": self.pushed,
            "remote": self.remote,
            "published": list(self.published),
        }


def resume(root: Path, model: str, *, push: bool | None = None, remote: str = "origin") -> Resumed:
    check_model(model)
    git = GitRepo.open(root)
    left = recovery.unfinished_at_head(git, model)
    if left is None:
        raise PolicyError(
            f"nothing to resume: HEAD is not an interrupted registration of {model}",
            hint="'mvctl check' lists interrupted registrations anywhere in history",
        )
    text = git.read_blob(left.commit, manifest_path(model))
    if text is None:
        raise OperationalError(f"{manifest_path(model)} is missing at {left.commit[:12]}")
    data = parse(text, f"{manifest_path(model)} at {left.commit[:12]}")
    if (data.get("model"), data.get("version")) != (model, left.version):
        raise OperationalError(
            f"the manifest at {left.commit[:12]} is {data.get('model')} {data.get('version')}, "
            f"not {model} {left.version}",
            hint="drop the commit: 'git reset --soft HEAD~1'",
        )
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where else None
    paths = [str(w["path"]) for w in data["weights"]] + [str(d["path"]) for d in data["dataset"]]
    with dvc.open_project(git.root) as project:
        project.push(paths)
    code = data.get("code") or {}
    message = version_tag_message_of(
        data, code_digest(git, str(code.get("commit")), bool(code.get("dirty")))
    )
    tag = tags.version_tag(model, left.version)
    obj = git.create_annotated_tag(tag, left.commit, message)
    names: list[str] = []
    if synced is not None:

        def undo() -> None:
            with interrupts.shielded():
                git.update_refs([f"delete refs/tags/{tag} {obj}"], what=tag)

        try:
            try:
                names = publish_registration(git, model, synced)
            except publish.Unsettled as unsettled:
                names = publish.settle(unsettled, undo)
            interrupts.settle()
        except (publish.Unsettled, Interrupted):
            raise
        except BaseException:
            undo()
            raise
    return Resumed(model, left.version, tag, left.commit, bool(synced), where, tuple(names))
