"""``mvctl label``: label and describe a version after registering it, without rewriting
its manifest. Each change is a new annotated tag ``MODEL@vX.Y.Z#labels#N`` on the version's
commit whose body holds the whole set of labels and the description from then on; the
newest N wins over the manifest's. The tags never move, and are published like marks."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.moves import now
from mvctl.common import interrupts
from mvctl.errors import Interrupted, UsageError, unknown_version
from mvctl.formats import tags
from mvctl.formats.labels import LABEL_RE, as_labels, check_key, check_labels, pairs_of
from mvctl.formats.names import Version, check_model, check_text
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry.read import annotations_of, load_manifest


@dataclass(frozen=True)
class Relabel:
    """What ``mvctl label`` decided (the dry-run answer) or did."""

    model: str
    version: str
    tag: str | None  # the labels tag written (or that would be); None: nothing changed
    labels: tuple[str, ...]
    description: str
    previous_labels: tuple[str, ...]
    previous_description: str
    changed: bool
    notes: tuple[str, ...] = ()
    pushed: bool = False
    dry_run: bool = False
    remote: str | None = None
    published: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tag": self.tag,
            "labels": list(self.labels),
            "description": self.description,
            "previous_labels": list(self.previous_labels),
            "previous_description": self.previous_description,
            "changed": self.changed,
            "notes": list(self.notes),
            "pushed": self.pushed,
            "remote": self.remote,
            "published": list(self.published),
            "dry_run": self.dry_run,
        }


def split_ref(ref: str) -> tuple[str, str]:
    """``MODEL@vX.Y.Z`` -> (model, version): a label belongs to one version, not a channel."""
    model, sep, version = ref.partition("@")
    check_model(model)
    if not sep or not version.startswith("v") or not Version.is_valid(version):
        raise UsageError(
            f"{ref[:80]!r} names no version", hint="label one version: e.g. fraud@v1.4.0"
        )
    return model, version


def _current(
    git: GitRepo, state: channels.ModelState, version: str
) -> tuple[dict[str, str], str, list[str]]:
    """The labels (key -> value) and description ``version`` has now, and notes on what of
    them cannot be carried on: a version without labels tags starts from its manifest, whose
    labels from before KEY=VALUE may be plain words."""
    found = annotations_of(state.tags, version)
    if found.tag is not None:
        return pairs_of(found.labels), found.description, []
    record = state.tags.versions[version]
    manifest = load_manifest(git, state.model, version, record.commit)
    plain = [x for x in manifest.labels if not LABEL_RE.match(x)]
    notes = [f"plain label {x!r} (not KEY=VALUE) is not carried on" for x in plain]
    return pairs_of(manifest.labels), manifest.description, notes


def label(
    root: Path,
    ref: str,
    set_labels: tuple[str, ...] = (),
    *,
    remove: tuple[str, ...] = (),
    description: str | None = None,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> Relabel:
    """Set ``set_labels`` (``KEY=VALUE``, replacing a key's value), remove the keys in
    ``remove`` and, when given, replace the description of the version ``ref`` names."""
    model, version = split_ref(ref)
    wanted = dict(pair.split("=", 1) for pair in check_labels(set_labels))
    dropped = [check_key(key) for key in remove]
    both = sorted(set(wanted) & set(dropped))
    if both:
        raise UsageError(f"{', '.join(both)} is both set and removed", hint="say one of them")
    if description is not None:
        check_text(description.replace("\n", " "), "--description")
    if not wanted and not dropped and description is None:
        raise UsageError(
            "nothing to change", hint="give KEY=VALUE labels, --remove KEY or --description"
        )
    git = GitRepo.open(root)
    where = publish.target(git, push, remote)
    synced = sync_git(git, where, model) if where and not dry_run else None
    state = channels.load(git, model)
    if version not in state.tags.versions:
        raise unknown_version(model, version)
    pairs, old_description, notes = _current(git, state, version)
    notes += [f"{key} had no label" for key in dropped if key not in pairs]
    new_pairs = {k: v for k, v in {**pairs, **wanted}.items() if k not in dropped}
    new_description = old_description if description is None else description
    previous = as_labels(pairs)
    labels = as_labels(new_pairs)
    changed = labels != previous or new_description != old_description
    counter = 1 + max(
        (p.counter for r in state.records if (p := tags.parse(r.name)) and p.kind == "labels"
         and p.version == version),
        default=0,
    )  # fmt: skip
    name = tags.labels_tag(model, version, counter) if changed else None
    result = Relabel(
        model, version, name, labels, new_description, previous, old_description, changed,
        tuple(notes), dry_run=dry_run, remote=where,
    )  # fmt: skip
    if dry_run or (name is None and synced is None):
        return result
    obj = None
    if name is not None:
        body = tags.LabelsBody(
            model, version, counter, labels, new_description, git.ident(), now(git)
        )
        message = tags.format_message(f"Label {model} {version}", body.to_dict())
        obj = git.create_annotated_tag(name, state.tags.versions[version].commit, message)
    if synced is None:
        return result

    def undo() -> None:
        if obj is not None and name is not None:
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
    return replace(result, pushed=True, published=tuple(names))
