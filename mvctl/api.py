"""mvctl's Python API: read a registry and follow a channel from Python.

Everything named in ``__all__`` is the supported surface; mvctl's other modules are internal
and move between releases. Changes to these names, their signatures or the fields of the
frozen dataclasses they return are listed in CHANGELOG.md.

Registry functions take the registry repo's root (a ``Path`` to a git working tree with
``mvctl.yaml``) and return frozen dataclasses with a ``to_dict()`` that is the ``--json``
output of the matching command. Failures raise :class:`MvctlError` subclasses, whose
``message`` and ``hint`` are what the command line would print and whose ``exit_code`` is
the command's exit code::

    from pathlib import Path
    from mvctl import api

    for info in api.list_versions(Path("."), "fraud"):
        print(info.version, info.channels)
    held = api.resolve(Path("."), "fraud@production")
    manifest = api.show(Path("."), f"fraud@{held.version}").manifest

Reading versions and channels:

- ``list_models(root) -> list[ModelSummary]``: each model, its newest version, its channels.
- ``list_versions(root, model) -> list[VersionInfo]``: every version in SemVer order.
- ``resolve(root, ref) -> VersionInfo``: what ``MODEL``, ``MODEL@vX.Y.Z`` or
  ``MODEL@CHANNEL`` names.
- ``show(root, ref) -> ShownVersion`` and ``manifest(root, ref) -> dict``: a version's
  manifest.
- ``history(root, model, channel=None) -> list[Event]``: assignment events, oldest first.

Downloading a version's weights without a checkout, verified against its manifest:
``get(model, ref=None, repo=None, out=None) -> Path`` (``mvctl get``)::

    weights = api.get("fraud", "production", repo="git@github.com:acme/models.git")

Lineage: ``lineage(root, model, version=None) -> LineageReport`` and
``diff(root, model, old_ref, new_ref) -> VersionDiff`` (each ref a version or a channel).

Versions by label, metric and channel (``mvctl list MODEL --label/--metric/--channel``)
and what ``promote --select`` would choose::

    holiday = api.catalog(Path("."), "fraud", labels=["season=holiday"], metrics=["auc>=0.9"])
    chosen = api.select(Path("."), "fraud", "production", ["label season=holiday"])

- ``catalog(root, model, *, labels=(), metrics=(), channel=None) -> list[ListedVersion]``.
- ``select(root, model, channel, selectors) -> ListedVersion``.

Writing (each publishes to the git remote as its command does; ``push=False`` is
``--local``, ``dry_run=True`` decides and changes nothing):

- ``label(root, ref, labels=(), *, remove=(), description=None) -> Relabel``
  (``mvctl label``).
- ``unassign(root, model, channel, *, reason, force=False) -> ChannelMove``
  (``mvctl unassign``).

Serving host (the same objects as ``mvctl.serving``'s): ``status(dest) -> Served | None``,
``on_change(dest, callback, *, stop, interval=1.0)``, ``pull(PullRequest(...))``,
``follow(PullRequest(...), *, interval, stop, on_result, on_error)``.

Importing this module loads no third-party package: DVC is imported only by the calls that
download (``get``, ``pull``, ``follow``), and git runs as a subprocess.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mvctl import __version__
from mvctl.channels import catalog as _catalog
from mvctl.channels import weights as _weights
from mvctl.channels.labels import Relabel
from mvctl.channels.labels import label as _label
from mvctl.channels.moves import ChannelMove
from mvctl.channels.state import Event, history
from mvctl.errors import (
    ConflictError,
    Interrupted,
    MvctlError,
    NotFoundError,
    OperationalError,
    PolicyError,
    UsageError,
)
from mvctl.formats.labels import LabelFilter, check_labels, parse_metric_filter, parse_selector
from mvctl.lineage.diff import VersionDiff, diff
from mvctl.lineage.tree import LineageNode, LineageReport
from mvctl.lineage.tree import report as _lineage_report
from mvctl.registry import read as _read
from mvctl.registry.get import get as _get
from mvctl.registry.read import (
    ListedVersion,
    ModelSummary,
    ShownVersion,
    VersionInfo,
    list_models,
    list_versions,
)
from mvctl.serving import PullRequest, PullResult, Served, follow, on_change, pull, status
from mvctl.serving.get import Options, Wanted

__all__ = [
    "ChannelMove",
    "ConflictError",
    "Event",
    "Interrupted",
    "LineageNode",
    "LineageReport",
    "ListedVersion",
    "ModelSummary",
    "MvctlError",
    "NotFoundError",
    "OperationalError",
    "PolicyError",
    "PullRequest",
    "PullResult",
    "Relabel",
    "Served",
    "ShownVersion",
    "UsageError",
    "VersionDiff",
    "VersionInfo",
    "__version__",
    "catalog",
    "diff",
    "follow",
    "get",
    "history",
    "label",
    "lineage",
    "list_models",
    "list_versions",
    "manifest",
    "on_change",
    "pull",
    "resolve",
    "select",
    "show",
    "status",
    "unassign",
]


def resolve(root: Path, ref: str) -> VersionInfo:
    """The version ``ref`` names: ``MODEL`` (its newest live version), ``MODEL@vX.Y.Z`` or
    ``MODEL@CHANNEL`` (the version the channel's alias points at), as ``mvctl show`` reads it.
    Raises :class:`NotFoundError` for an unknown model, :class:`UsageError` for a malformed
    ref and :class:`OperationalError` for a version or channel the model does not have."""
    return _read.resolve_version(_read.open_registry(root), ref)


def show(root: Path, ref: str) -> ShownVersion:
    """The version ``ref`` names (as :func:`resolve`) with its manifest, read from the
    version's own commit (``registry/MODEL/manifest.yaml``), as ``mvctl show --json``."""
    return _read.show(root, ref)


def manifest(root: Path, ref: str) -> dict[str, object]:
    """The manifest (schema ``mvctl/manifest/v1``) of the version ``ref`` names."""
    return dict(_read.show(root, ref).manifest)


def lineage(root: Path, model: str, version: str | None = None) -> LineageReport:
    """The version tree of ``model`` (derived from commit history, never from manifests), or
    the ancestry of one ``version``, as ``mvctl lineage --json``."""
    return _lineage_report(root, model, version)


def get(
    model: str,
    ref: str | None = None,
    repo: str | Path | None = None,
    out: Path | str | None = None,
    *,
    force: bool = False,
    dvc_remote: str | None = None,
) -> Path:
    """Download the weights of the version ``ref`` names (``vX.Y.Z``, a channel, or None:
    the newest live version; ``model`` may also be ``MODEL@REF``), verified byte for byte
    against its manifest's sha256, and return the path written, as ``mvctl get``.

    ``repo`` is a registry's git URL or path, read as untrusted, with no checkout: one
    ``git ls-remote`` and a depth-1 fetch of the version's commit, then the weights straight
    from the DVC remote its committed ``.dvc/config`` names (or ``dvc_remote``: a remote
    name of your DVC config, or a URL). Without ``repo``, the registry of the current
    directory. ``out`` is a file, or an existing directory to write into (default: the
    current directory); what is there already stays unless ``force``. The file appears
    whole or not at all: a corrupted object raises :class:`PolicyError` and leaves nothing;
    an unknown model or version raises :class:`NotFoundError`."""
    options = Options(
        cwd=Path.cwd(),
        out=Path(out) if out is not None else None,
        force=force,
        dvc_remote=dvc_remote,
    )
    where = str(repo) if repo is not None else None
    return _get(Wanted.parse(model, ref), options, where).path


def catalog(
    root: Path,
    model: str,
    *,
    labels: Sequence[str] = (),
    metrics: Sequence[str] = (),
    channel: str | None = None,
) -> list[ListedVersion]:
    """``model``'s versions in SemVer order, each with its labels, description, data window,
    status (gold, bad, retired, deregistered or None) and the channels that served it, as
    ``mvctl list MODEL --json`` lists them. Only versions passing every filter are returned:
    ``labels`` as ``KEY=VALUE`` (the newest ``mvctl label`` wins over the manifest),
    ``metrics`` as ``NAME OP NUMBER`` (``auc>=0.9``; dots name nested metrics) and
    ``channel``, a channel that held the version, now or before. A malformed filter raises
    :class:`UsageError`; an unknown model :class:`NotFoundError`."""
    filters = _catalog.Filters(
        labels=tuple(LabelFilter(*x.split("=", 1)) for x in check_labels(labels)),
        metrics=tuple(parse_metric_filter(m) for m in metrics),
        channel=channel,
    )
    return _catalog.catalog(root, model, filters)


def select(root: Path, model: str, channel: str, selectors: Sequence[str]) -> ListedVersion:
    """The version ``mvctl promote MODEL --to CHANNEL --select ...`` would promote, chosen
    from this clone's tags (fetch them first to see the remote's): the newest version that
    passes every selector (``label KEY=VALUE``, ``metric NAME OP NUMBER``) and is gold on
    ``channel``, or the one ``channel`` holds when it passes and is newer. Nothing is moved.
    Raises :class:`PolicyError` (exit 1) when no version qualifies, :class:`UsageError` for
    a malformed selector or a channel ``mvctl.yaml`` does not name."""
    return _catalog.choose(root, model, channel, [parse_selector(s) for s in selectors])


def label(
    root: Path,
    ref: str,
    labels: Sequence[str] = (),
    *,
    remove: Sequence[str] = (),
    description: str | None = None,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> Relabel:
    """Label and describe the version ``ref`` (``MODEL@vX.Y.Z``) names, as ``mvctl label``:
    set ``labels`` (``KEY=VALUE``, replacing a key's value), drop the keys in ``remove`` and,
    when given, replace the description. The change is a new tag ``MODEL@vX.Y.Z#labels#N``
    (the manifest never changes), published to ``remote`` unless ``push`` is False (or
    ``push: never``); nothing to change writes no tag (``changed`` is False)."""
    return _label(
        root, ref, tuple(labels), remove=tuple(remove), description=description, push=push,
        remote=remote, dry_run=dry_run,
    )  # fmt: skip


def unassign(
    root: Path,
    model: str,
    channel: str,
    *,
    reason: str,
    force: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
) -> ChannelMove:
    """Clear ``channel`` of ``model``, as ``mvctl unassign`` (GTO's unassign): the event
    ``MODEL#CHANNEL!#N`` on the version it holds and the alias deleted, by compare-and-swap,
    published unless ``push`` is False. ``reason`` is required and recorded. Production
    needs ``force`` (else :class:`PolicyError`): its hosts keep what they serve and get no
    new version until a promotion. A channel holding nothing raises :class:`PolicyError`; a
    racing move :class:`ConflictError`; calling it again completes an interrupted one."""
    return _weights.unassign(
        root, model, channel, reason=reason, force=force, push=push, remote=remote,
        dry_run=dry_run,
    )  # fmt: skip
