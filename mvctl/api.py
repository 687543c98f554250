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

Serving host (the same objects as ``mvctl.serving``'s): ``status(dest) -> Served | None``,
``on_change(dest, callback, *, stop, interval=1.0)``, ``pull(PullRequest(...))``,
``follow(PullRequest(...), *, interval, stop, on_result, on_error)``.

Importing this module loads no third-party package: DVC is imported only by the calls that
download (``get``, ``pull``, ``follow``), and git runs as a subprocess.
"""

from __future__ import annotations

from pathlib import Path

from mvctl import __version__
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
from mvctl.lineage.diff import VersionDiff, diff
from mvctl.lineage.tree import LineageNode, LineageReport
from mvctl.lineage.tree import report as _lineage_report
from mvctl.registry import read as _read
from mvctl.registry.get import get as _get
from mvctl.registry.read import ModelSummary, ShownVersion, VersionInfo, list_models, list_versions
from mvctl.serving import PullRequest, PullResult, Served, follow, on_change, pull, status
from mvctl.serving.get import Options, Wanted

__all__ = [
    "ConflictError",
    "Event",
    "Interrupted",
    "LineageNode",
    "LineageReport",
    "ModelSummary",
    "MvctlError",
    "NotFoundError",
    "OperationalError",
    "PolicyError",
    "PullRequest",
    "PullResult",
    "Served",
    "ShownVersion",
    "UsageError",
    "VersionDiff",
    "VersionInfo",
    "__version__",
    "diff",
    "follow",
    "get",
    "history",
    "lineage",
    "list_models",
    "list_versions",
    "manifest",
    "on_change",
    "pull",
    "resolve",
    "show",
    "status",
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
