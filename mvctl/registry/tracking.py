"""Register's DVC side: tracking the weights and data (DVC's own md5s, sizes and import
sources) and the sha256 of every weights file, computed beside DVC's upload."""

from __future__ import annotations

from pathlib import Path

from mvctl._adapters import dvc
from mvctl.common.hashing import FileHash, sha256_file, sha256_tree, total_size
from mvctl.common.progress import ProgressSink
from mvctl.errors import OperationalError
from mvctl.formats.manifest import DatasetEntry, WeightsEntry, WeightsFile
from mvctl.registry.inputs import Inputs


def track(
    project: dvc.DvcProject, root: Path, inputs: Inputs
) -> tuple[dvc.TrackedPath, tuple[DatasetEntry, ...]]:
    # Imports and pipeline outputs keep the stage that produced them; plain paths are
    # (re-)added so the record matches what is in the work tree now.
    to_add = []
    for path in (inputs.weights, *inputs.data):
        known = project.tracked(path) if project.may_track(path) else None
        plain = known is None or (known.dvcfile == f"{path}.dvc" and known.source is None)
        if plain and (root / path).exists():
            to_add.append(path)
    project.add(to_add)

    winfo = project.tracked(inputs.weights)
    if winfo is None:  # pragma: no cover - just added
        raise OperationalError(f"DVC does not track {inputs.weights}")
    dataset = []
    for path in inputs.data:
        info = project.tracked(path)
        if info is None:  # pragma: no cover - just added
            raise OperationalError(f"DVC does not track {path}")
        source = None
        if info.source is not None:
            source = {
                "repo": info.source.repo,
                "rev": info.source.rev or "",
                "rev_lock": info.source.rev_lock or "",
                "path": info.source.path,
            }
        dataset.append(DatasetEntry(path, info.md5, info.size, info.nfiles, source))
    return winfo, tuple(dataset)


def sha256_of(path: Path, sink: ProgressSink) -> tuple[list[FileHash], str | None]:
    """A file's hash (and no tree), or a directory's per-file hashes and tree hash."""
    advance = sink.task(f"hashing {path.name}", total_size(path))
    if path.is_file():
        return [sha256_file(path, advance)], None
    return sha256_tree(path, advance)


def weights_entry(
    project: dvc.DvcProject, info: dvc.TrackedPath, hashed: tuple[list[FileHash], str | None]
) -> WeightsEntry:
    files, tree = hashed
    if not info.is_dir:
        return WeightsEntry(info.path, info.md5, files[0].sha256, files[0].size)
    md5s = dict(project.dir_listing(info.md5))
    entries = tuple(WeightsFile(f.path, md5s.get(f.path, ""), f.sha256, f.size) for f in files)
    return WeightsEntry(info.path, info.md5, tree or "", sum(f.size for f in files), entries)
