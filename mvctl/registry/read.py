"""Reading the registry: models, versions, channel holders and manifests, from tags alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.analysis import profile
from mvctl.errors import (
    OperationalError,
    UsageError,
    holds_no_version,
    unknown_model,
    unknown_version,
)
from mvctl.formats import config, tags
from mvctl.formats import manifest as manifest_schema
from mvctl.formats.labels import DataWindow
from mvctl.formats.layout import manifest_path, profile_path
from mvctl.formats.manifest import Manifest
from mvctl.formats.names import Version, check_channel, check_model
from mvctl.registry import index, lookup


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    commit: str
    created: str
    author: str
    metrics: dict[str, Any] = field(default_factory=dict)
    deregistered: bool = False
    channels: tuple[str, ...] = ()
    fingerprint: dict[str, Any] = field(default_factory=dict, compare=False)
    weights: dict[str, float] = field(default_factory=dict)  # weighted channels holding it

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "commit": self.commit,
            "created": self.created,
            "author": self.author,
            "metrics": self.metrics,
            "deregistered": self.deregistered,
            "channels": list(self.channels),
            "weights": self.weights,
        }

    def to_row(self) -> list[Any]:
        """Every field in order, as the index (mvctl.registry.index) keeps it."""
        return [
            self.model,
            self.version,
            self.commit,
            self.created,
            self.author,
            self.metrics,
            self.deregistered,
            list(self.channels),
            self.fingerprint,
            self.weights,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> VersionInfo:
        model, version, commit, created, author, metrics, dereg, channels, fprint, weights = row
        return cls(
            model,
            version,
            commit,
            created,
            author,
            metrics,
            dereg,
            tuple(channels),
            fprint,
            weights,
        )


_VERSION_ROWS = index.rows_of(VersionInfo, VersionInfo.to_row, VersionInfo.from_row)


@dataclass(frozen=True)
class ListedVersion:
    """A version as ``list MODEL`` shows it: its version tag's fields (``info``), its
    labels, description and data window (:class:`Annotations`), its ``status`` (gold, bad,
    retired, deregistered or None), ``standing`` (channel -> gold or bad) and the channels
    that ``served`` it. Built by mvctl.channels.catalog, kept as the index's ``catalog``
    view (its rows are also what :func:`resolve_version` can read a version from)."""

    info: VersionInfo
    labels: tuple[str, ...] = ()
    description: str = ""
    data_window: dict[str, Any] | None = None
    labels_tag: str | None = None
    status: str | None = None
    standing: dict[str, str] = field(default_factory=dict)
    served: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def annotations(self) -> Annotations:
        return Annotations(self.labels, self.description, self.data_window, self.labels_tag)

    def to_dict(self) -> dict[str, Any]:
        out = self.info.to_dict()
        out["labels"] = list(self.labels)
        out["description"] = self.description
        out["data_window"] = self.data_window
        out["labels_tag"] = self.labels_tag
        out["status"] = self.status
        out["standing"] = self.standing
        out["served"] = list(self.served)
        return out

    def to_row(self) -> list[Any]:
        return [
            *self.info.to_row(),
            list(self.labels),
            self.description,
            self.data_window,
            self.labels_tag,
            self.status,
            self.standing,
            list(self.served),
        ]

    @staticmethod
    def dict_of_row(row: list[Any]) -> dict[str, Any]:
        """``from_row(row).to_dict()``, made from the row at once (``list MODEL --json``)."""
        (model, version, commit, created, author, metrics, dereg, channels, _, weights,
         labels, description, window, labels_tag, status, standing, served) = row  # fmt: skip
        return {
            "model": model,
            "version": version,
            "commit": commit,
            "created": created,
            "author": author,
            "metrics": metrics,
            "deregistered": dereg,
            "channels": list(channels),
            "weights": weights,
            "labels": list(labels),
            "description": description,
            "data_window": window,
            "labels_tag": labels_tag,
            "status": status,
            "standing": standing,
            "served": list(served),
        }

    @classmethod
    def from_row(cls, row: list[Any]) -> ListedVersion:
        labels, description, window, labels_tag, status, standing, served = row[10:]
        info = VersionInfo.from_row(row[:10])
        return cls(info, tuple(labels), description, window, labels_tag, status, standing,
                   tuple(served))  # fmt: skip


LISTED_ROWS = index.Rows(
    (*_VERSION_ROWS.columns, "labels", "description", "data_window", "labels_tag", "status",
     "standing", "served"),
    ListedVersion.to_row,
    ListedVersion.from_row,
)  # fmt: skip


@dataclass(frozen=True)
class ModelSummary:
    model: str
    latest: str | None
    count: int
    channels: dict[str, str]  # channel -> version
    weights: dict[str, float] = field(default_factory=dict)  # weighted channel -> percent

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "latest": self.latest,
            "versions": self.count,
            "channels": self.channels,
            "weights": self.weights,
        }

    def to_row(self) -> list[Any]:
        """Every field in order, as the index (mvctl.registry.index) keeps it."""
        return [self.model, self.latest, self.count, self.channels, self.weights]

    @classmethod
    def from_row(cls, row: list[Any]) -> ModelSummary:
        model, latest, count, channels, weights = row
        return cls(model, latest, count, channels, weights)


_SUMMARY_ROWS = index.rows_of(ModelSummary, ModelSummary.to_row, ModelSummary.from_row)


@dataclass(frozen=True)
class ShownVersion:
    info: VersionInfo
    manifest: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "manifest": self.manifest}


@dataclass(frozen=True)
class ModelTags:
    """All mvctl tags of one model, parsed once."""

    versions: dict[str, TagRecord]  # version -> tag
    deregistered: frozenset[str]
    aliases: dict[str, TagRecord]  # channel -> alias tag
    gold: dict[str, TagRecord] = field(default_factory=dict)  # version -> mark-gold tag
    labels: dict[str, TagRecord] = field(default_factory=dict)  # version -> newest labels tag

    def version_at(self, commit: str) -> str | None:
        for version, record in self.versions.items():
            if record.commit == commit:
                return version
        return None

    def channels_of(self) -> dict[str, str]:
        """channel -> version each alias points at (aliases at unknown commits are skipped)."""
        by_commit = {record.commit: version for version, record in self.versions.items()}
        return {
            channel: by_commit[record.commit]
            for channel, record in sorted(self.aliases.items())
            if record.commit in by_commit
        }

    def weights_of(self) -> dict[str, float]:
        """channel -> share of traffic, for the weighted channels (their aliases say it)."""
        found = {}
        for channel, record in sorted(self.aliases.items()):
            weight = tags.AliasBody.from_dict(tags.parse_message(record.message)[1]).weight
            if weight is not None:
                found[channel] = weight
        return found


def group_tags(records: list[TagRecord]) -> dict[str, ModelTags]:
    """Sort version, deregistration, alias, gold and labels tags by model (events and
    unassignments are skipped; of a version's labels tags, the newest by number)."""
    versions: dict[str, dict[str, TagRecord]] = {}
    dereg: dict[str, set[str]] = {}
    aliases: dict[str, dict[str, TagRecord]] = {}
    gold: dict[str, dict[str, TagRecord]] = {}
    labels: dict[str, dict[str, tuple[int, TagRecord]]] = {}
    for record in records:
        parsed = tags.parse(record.name)
        if parsed is None or parsed.channel_event:
            continue
        model = parsed.model
        versions.setdefault(model, {})
        if parsed.kind == "version":
            versions[model][parsed.version] = record
        elif parsed.kind == "deregister":
            dereg.setdefault(model, set()).add(parsed.version)
        elif parsed.kind == "gold":
            gold.setdefault(model, {})[parsed.version] = record
        elif parsed.kind == "labels":
            newest = labels.setdefault(model, {}).get(parsed.version)
            if newest is None or newest[0] < parsed.counter:
                labels[model][parsed.version] = (parsed.counter, record)
        else:
            aliases.setdefault(model, {})[parsed.channel] = record
    return {
        model: ModelTags(
            versions[model],
            frozenset(dereg.get(model, set())),
            aliases.get(model, {}),
            gold.get(model, {}),
            {v: record for v, (_, record) in labels.get(model, {}).items()},
        )
        for model in versions
    }


@dataclass(frozen=True)
class Annotations:
    """A version's labels, description and data window: the newest labels tag's labels and
    description (``mvctl label``) when it has one, else what its version tag recorded from
    the manifest. ``tag`` names the labels tag they come from (None: the version tag)."""

    labels: tuple[str, ...] = ()
    description: str = ""
    data_window: dict[str, Any] | None = None
    tag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "description": self.description,
            "data_window": self.data_window,
            "labels_tag": self.tag,
        }


def annotations_of(mt: ModelTags, version: str) -> Annotations:
    """:class:`Annotations` of ``version`` from its tags alone (no manifest is read)."""
    record = mt.versions.get(version)
    body = tags.VersionBody.from_dict(tags.parse_message(record.message)[1]) if record else None
    stored = DataWindow.from_dict(body.data_window) if body is not None else None
    window = stored.to_dict() if stored is not None else None
    labelled = mt.labels.get(version)
    if labelled is not None:
        found = tags.LabelsBody.from_dict(tags.parse_message(labelled.message)[1])
        return Annotations(found.labels, found.description, window, labelled.name)
    if body is None:
        return Annotations()
    return Annotations(body.labels, body.description, window)


def model_tags(git: GitRepo, model: str) -> ModelTags:
    found = group_tags(git.tags(f"{tags.TAG_PREFIX}{model}@*")).get(model)
    return found or ModelTags({}, frozenset(), {})


def model_info(model: str, version: str, mt: ModelTags) -> VersionInfo:
    """What the version tag of ``version`` says, plus the channels that hold it."""
    record = mt.versions[version]
    body = tags.VersionBody.from_dict(tags.parse_message(record.message)[1])
    holders = tuple(c for c, r in sorted(mt.aliases.items()) if r.commit == record.commit)
    weights = {c: w for c, w in mt.weights_of().items() if c in holders} if holders else {}
    return VersionInfo(
        model=model,
        version=version,
        commit=record.commit,
        created=body.created or record.date,
        author=body.author or record.tagger,
        metrics=body.metrics,
        deregistered=version in mt.deregistered,
        channels=holders,
        fingerprint=body.fingerprint,
        weights=weights,
    )


def open_registry(root: Path) -> GitRepo:
    """The registry whose work tree holds ``root``: outside git, or in a git repo with no
    ``mvctl.yaml``, an OperationalError (exit 3) saying so, never an empty registry."""
    git = GitRepo.open(root)
    config.check_registry(git.root)
    return git


def sorted_versions(versions: list[str]) -> list[str]:
    return sorted(versions, key=lambda v: Version.parse(v).sort_key())


def list_models(root: Path) -> list[ModelSummary]:
    git = open_registry(root)
    pattern = f"{tags.TAG_PREFIX}*@*"

    def build(refs: list[tuple[str, str]]) -> list[ModelSummary]:
        listed = lookup.names_of(name for name, _ in refs)
        quick = _quick_models(git, listed)
        return quick if quick is not None else _models(git, pattern)

    return index.cached_by_names(git, "models", "all", [pattern], build, _SUMMARY_ROWS)


def _models(git: GitRepo, pattern: str) -> list[ModelSummary]:
    """:func:`list_models` from every tag's contents."""
    grouped = group_tags(git.tags(pattern))
    summaries = []
    for model, mt in sorted(grouped.items()):
        live = [v for v in mt.versions if v not in mt.deregistered]
        ordered = sorted_versions(live)
        summaries.append(
            ModelSummary(
                model=model,
                latest=ordered[-1] if ordered else None,
                count=len(mt.versions),
                channels=mt.channels_of(),
                weights={c: w for c, w in mt.weights_of().items() if c in mt.channels_of()},
            )
        )
    return summaries


def _quick_models(git: GitRepo, listed: dict[str, lookup.Names]) -> list[ModelSummary] | None:
    """:func:`list_models` from the tags' names and the aliases (mvctl.registry.lookup)."""
    found = lookup.held(git, listed)
    if found is None:
        return None
    summaries = []
    for model, entry in sorted(listed.items()):
        aliases = found.aliases[model]
        mt = ModelTags({}, frozenset(entry.deregistered), aliases)
        summaries.append(
            ModelSummary(
                model=model,
                latest=entry.latest(),
                count=len(entry.versions),
                channels=dict(sorted(found.holders[model].items())),
                weights=mt.weights_of(),
            )
        )
    return summaries


def list_versions(root: Path, model: str) -> list[VersionInfo]:
    check_model(model)
    git = open_registry(root)

    def build(records: list[TagRecord]) -> list[VersionInfo]:
        mt = group_tags(records).get(model)
        if mt is None or not mt.versions:
            raise unknown_model(model)
        return [model_info(model, v, mt) for v in sorted_versions(list(mt.versions))]

    pattern = f"{tags.TAG_PREFIX}{model}@*"
    return index.cached(git, "versions", model, [pattern], build, _VERSION_ROWS)


def resolve(git: GitRepo, ref: str) -> tuple[VersionInfo, ModelTags]:
    """``MODEL``, ``MODEL@vX.Y.Z`` or ``MODEL@CHANNEL`` -> the version it names."""
    model, sep, what = ref.partition("@")
    check_model(model)
    if sep and not what:
        raise UsageError(f"{ref!r} names no version or channel", hint="e.g. fraud@v1.2.0")
    mt = model_tags(git, model)
    if not mt.versions:
        raise unknown_model(model)
    if not sep:
        live = [v for v in mt.versions if v not in mt.deregistered]
        if not live:
            raise OperationalError(f"every version of {model!r} is deregistered")
        version = sorted_versions(live)[-1]
    elif what.startswith("v") and Version.is_valid(what):
        if what not in mt.versions:
            raise unknown_version(model, what)
        version = what
    else:
        check_channel(what)
        alias = mt.aliases.get(what)
        if alias is None:
            raise holds_no_version(model, what, "nothing to read")
        held = mt.version_at(alias.commit)
        if held is None:
            raise OperationalError(
                f"{model}@{what} points at a commit with no version of {model}",
                hint="run 'mvctl check'",
            )
        version = held
    return model_info(model, version, mt), mt


def read_manifest(git: GitRepo, model: str, version: str, commit: str) -> dict[str, Any]:
    path = manifest_path(model)
    text = git.read_blob(commit, path)
    if text is None:
        raise OperationalError(
            f"{model}@{version} has no {path} at {commit[:12]}", hint="run 'mvctl check'"
        )
    return manifest_schema.parse(text, f"{path} at {model}@{version}")


def load_manifest(git: GitRepo, model: str, version: str, commit: str) -> Manifest:
    """:func:`read_manifest`, typed."""
    return Manifest.from_dict(read_manifest(git, model, version, commit))


def read_profile(git: GitRepo, model: str, commit: str) -> dict[str, Any] | None:
    """The reference profile stored with the version at ``commit``, if it has one."""
    text = git.read_blob(commit, profile_path(model))
    return profile.loads(text, f"profile of {model}") if text else None


def resolve_version(git: GitRepo, ref: str) -> VersionInfo:
    """What :func:`resolve` gives, read by tag name when that is provably the same."""
    return _indexed_resolve(git, ref) or _quick_resolve(git, ref) or resolve(git, ref)[0]


def _indexed_resolve(git: GitRepo, ref: str) -> VersionInfo | None:
    """:func:`resolve` from the index of ``list MODEL`` when it is current: its rows are
    :func:`model_info` of every version. None when it is not, or in any doubt (a channel
    two versions' commit holds, a name that is no version), for the reads below."""
    model, sep, what = ref.partition("@")
    check_model(model)
    if sep and not what:
        return None
    if sep and not (what.startswith("v") and Version.is_valid(what)):
        check_channel(what)
    rows = index.peek(git, "versions", model, _VERSION_ROWS)
    if not rows:  # `list MODEL` keeps the catalog view, whose rows hold these too
        listed = index.peek(git, "catalog", model, LISTED_ROWS)
        rows = [v.info for v in listed] if listed else None
    if not rows:
        return None
    if not sep:
        found = [v for v in rows if not v.deregistered][-2:]
        key = [Version.parse(v.version).sort_key() for v in found]
        if len(found) == 2 and key[0] != key[1]:
            found = found[1:]  # rows are in SemVer order: the newest, unless two tie
    elif what.startswith("v") and Version.is_valid(what):
        found = [v for v in rows if v.version == what]
    else:
        found = [v for v in rows if what in v.channels]
    return found[0] if len(found) == 1 else None


def _quick_resolve(git: GitRepo, ref: str) -> VersionInfo | None:
    model, sep, what = ref.partition("@")
    check_model(model)
    listed = lookup.names(git, model).get(model)
    if listed is None or (sep and not what):
        return None  # the full read says what is wrong
    version: str | None
    if not sep:
        version = listed.latest()
    elif what.startswith("v") and Version.is_valid(what):
        version = what if what in listed.versions else None
    else:
        check_channel(what)
        version = None
    found = lookup.held(git, {model: listed}, {model: version} if version else None)
    if found is None:
        return None
    if version is None:
        version = found.holders[model].get(what) if sep else None
        if version is None:
            return None
    mt = ModelTags(
        {version: found.versions[(model, version)]},
        frozenset(listed.deregistered),
        found.aliases[model],
    )
    return model_info(model, version, mt)


def show(root: Path, ref: str) -> ShownVersion:
    git = open_registry(root)
    info = resolve_version(git, ref)
    return ShownVersion(info, read_manifest(git, info.model, info.version, info.commit))
