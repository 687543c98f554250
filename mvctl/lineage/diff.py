"""``mvctl diff``: what changed between two versions, grouped as a reviewer reads it."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from mvctl._adapters.git import GitRepo
from mvctl.common import yamlio
from mvctl.errors import MvctlError
from mvctl.formats.layout import DVC_YAML, REGISTRY_DIR, tracked_files
from mvctl.formats.manifest import DatasetEntry, Manifest, WeightsEntry
from mvctl.formats.values import flatten
from mvctl.registry.read import VersionInfo, load_manifest, open_registry, resolve

Status = Literal["same", "changed", "added", "removed"]


@dataclass(frozen=True)
class PathDiff:
    """A weights or dataset path; for directories, which files changed inside."""

    path: str
    status: Status
    old_hash: str | None
    new_hash: str | None
    old_size: int | None
    new_size: int | None
    files_added: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    files_modified: tuple[str, ...] = ()


@dataclass(frozen=True)
class ValueChange:
    key: str
    status: Status
    old: Any
    new: Any


@dataclass(frozen=True)
class MetricDelta:
    key: str
    old: float | None
    new: float | None
    delta: float | None
    relative: float | None  # delta / |old|; None when old is 0 or missing


@dataclass(frozen=True)
class PackageChange:
    name: str
    change: Literal["added", "removed", "upgraded", "downgraded", "changed"]
    old: str | None
    new: str | None


@dataclass(frozen=True)
class CodeChange:
    path: str
    status: str  # git's letter: A, M, D, T
    added: int | None
    deleted: int | None


@dataclass(frozen=True)
class VersionDiff:
    model: str
    old: VersionInfo
    new: VersionInfo
    weights: tuple[PathDiff, ...]
    dataset: tuple[PathDiff, ...]
    params: tuple[ValueChange, ...]
    environment: tuple[ValueChange, ...]  # python, platform
    packages: tuple[PackageChange, ...]
    metrics: tuple[MetricDelta, ...]
    code: tuple[CodeChange, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        def version(info: VersionInfo) -> dict[str, Any]:
            return {"version": info.version, "commit": info.commit, "channels": list(info.channels)}

        return {
            "model": self.model,
            "old": version(self.old),
            "new": version(self.new),
            "identical": self.identical,
            "weights": [asdict(p) for p in self.weights],
            "dataset": [asdict(p) for p in self.dataset],
            "params": [asdict(c) for c in self.params],
            "environment": [asdict(c) for c in self.environment],
            "packages": [asdict(c) for c in self.packages],
            "metrics": [asdict(m) for m in self.metrics],
            "code": [asdict(c) for c in self.code],
            "notes": list(self.notes),
        }

    @property
    def identical(self) -> bool:
        return (
            all(p.status == "same" for p in (*self.weights, *self.dataset))
            and not (self.params or self.environment or self.packages)
            and not (self.metrics or self.code)
        )


def diff(root: Path, model: str, old_ref: str, new_ref: str) -> VersionDiff:
    """Compare two versions of ``model``; each ref is a version (v1.4.0) or a channel."""
    git = open_registry(root)
    old, _ = resolve(git, f"{model}@{old_ref}")
    new, _ = resolve(git, f"{model}@{new_ref}")
    a = load_manifest(git, model, old.version, old.commit)
    b = load_manifest(git, model, new.version, new.commit)
    notes: list[str] = []
    return VersionDiff(
        model=model,
        old=old,
        new=new,
        weights=_weights(a.weights, b.weights),
        dataset=_dataset(root, a.dataset, b.dataset, notes),
        params=value_changes(flatten(a.params), flatten(b.params)),
        environment=_env(a.environment, b.environment),
        packages=package_changes(a.packages, b.packages),
        metrics=metric_deltas(a.metrics, b.metrics),
        code=_code(git, old, new, a, b),
        notes=tuple(notes),
    )


Entry = TypeVar("Entry", WeightsEntry, DatasetEntry)


def _compare_paths(
    old: Sequence[Entry], new: Sequence[Entry], key: Callable[[Entry], str]
) -> list[tuple[str, Status, Entry | None, Entry | None]]:
    by_old, by_new = {e.path: e for e in old}, {e.path: e for e in new}
    found: list[tuple[str, Status, Entry | None, Entry | None]] = []
    for path in sorted(by_old.keys() | by_new.keys()):
        a, b = by_old.get(path), by_new.get(path)
        if a is None:
            found.append((path, "added", None, b))
        elif b is None:
            found.append((path, "removed", a, None))
        else:
            found.append((path, "same" if key(a) == key(b) else "changed", a, b))
    return found


def _files_changed(
    old: Mapping[str, str], new: Mapping[str, str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    added = tuple(sorted(new.keys() - old.keys()))
    removed = tuple(sorted(old.keys() - new.keys()))
    modified = tuple(sorted(p for p in old.keys() & new.keys() if old[p] != new[p]))
    return added, removed, modified


def _weights(old: Sequence[WeightsEntry], new: Sequence[WeightsEntry]) -> tuple[PathDiff, ...]:
    result = []
    for path, status, a, b in _compare_paths(old, new, lambda w: w.sha256):
        inner: tuple[tuple[str, ...], ...] = ((), (), ())
        if status == "changed" and a and b and (a.files or b.files):
            inner = _files_changed(
                {f.path: f.sha256 for f in a.files}, {f.path: f.sha256 for f in b.files}
            )
        result.append(
            PathDiff(
                path,
                status,
                a.sha256 if a else None,
                b.sha256 if b else None,
                a.size if a else None,
                b.size if b else None,
                *inner,
            )
        )
    return tuple(result)


def _dataset(
    root: Path, old: Sequence[DatasetEntry], new: Sequence[DatasetEntry], notes: list[str]
) -> tuple[PathDiff, ...]:
    compared = _compare_paths(old, new, lambda d: d.md5)
    dirs = {
        x.md5
        for _, status, a, b in compared
        if status == "changed" and a and b and a.is_dir and b.is_dir
        for x in (a, b)
    }
    listings = _dir_listings(root, dirs, notes) if dirs else {}
    result = []
    for path, status, a, b in compared:
        inner: tuple[tuple[str, ...], ...] = ((), (), ())
        if a and b and a.md5 in listings and b.md5 in listings:
            inner = _files_changed(listings[a.md5], listings[b.md5])
        result.append(
            PathDiff(
                path,
                status,
                a.md5 if a else None,
                b.md5 if b else None,
                a.size if a else None,
                b.size if b else None,
                *inner,
            )
        )
    return tuple(result)


def _dir_listings(root: Path, md5s: set[str], notes: list[str]) -> dict[str, dict[str, str]]:
    # Only here does diff need DVC: reading `.dir` listings, never the data itself. Deferred:
    # `mvctl --help` imports this module (through the renderers), and the adapter costs ~5 ms.
    from mvctl._adapters import dvc

    listings: dict[str, dict[str, str]] = {}
    with dvc.open_project(root) as project:
        for md5 in sorted(md5s):
            try:
                listings[md5] = dict(project.dir_listing(md5))
            except MvctlError as exc:
                notes.append(exc.message)
    return listings


def value_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[ValueChange, ...]:
    changes = []
    for key in sorted(old.keys() | new.keys()):
        if key not in old:
            changes.append(ValueChange(key, "added", None, new[key]))
        elif key not in new:
            changes.append(ValueChange(key, "removed", old[key], None))
        elif old[key] != new[key]:
            changes.append(ValueChange(key, "changed", old[key], new[key]))
    return tuple(changes)


def _env(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[ValueChange, ...]:
    keys = ("python", "platform")
    return value_changes({k: old.get(k) for k in keys}, {k: new.get(k) for k in keys})


def package_changes(old: Mapping[str, str], new: Mapping[str, str]) -> tuple[PackageChange, ...]:
    from packaging.version import InvalidVersion, Version

    changes = []
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a == b:
            continue
        if a is None:
            changes.append(PackageChange(name, "added", None, b))
        elif b is None:
            changes.append(PackageChange(name, "removed", a, None))
        else:
            try:
                up = Version(str(b)) > Version(str(a))
                changes.append(PackageChange(name, "upgraded" if up else "downgraded", a, b))
            except InvalidVersion:
                changes.append(PackageChange(name, "changed", a, b))
    return tuple(changes)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def metric_deltas(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[MetricDelta, ...]:
    """Metrics whose value differs (or that appear or disappear), with deltas."""
    flat_old, flat_new = flatten(old), flatten(new)
    deltas = []
    for key in sorted(flat_old.keys() | flat_new.keys()):
        a, b = _number(flat_old.get(key)), _number(flat_new.get(key))
        if a == b:
            continue
        delta = b - a if a is not None and b is not None else None
        relative = delta / abs(a) if delta is not None and a not in (None, 0.0) else None
        if relative is not None and not math.isfinite(relative):
            relative = None
        deltas.append(MetricDelta(key, a, b, delta, relative))
    return tuple(deltas)


def _code(
    git: GitRepo, old: VersionInfo, new: VersionInfo, a: Manifest, b: Manifest
) -> tuple[CodeChange, ...]:
    if old.commit == new.commit:
        return ()
    # Files register writes for tracked paths are not the user's code.
    tracked = [e.path for m in (a, b) for e in m.weights] + [
        e.path for m in (a, b) for e in m.dataset
    ]
    written = set(tracked_files(tracked))
    changes = []
    for status, path, added, deleted in git.changed_files(old.commit, new.commit):
        if path in written or path.startswith(REGISTRY_DIR):
            continue
        if path == DVC_YAML and _same_without_artifacts(git, old.commit, new.commit):
            continue
        changes.append(CodeChange(path, status, added, deleted))
    return tuple(changes)


def _same_without_artifacts(git: GitRepo, old: str, new: str) -> bool:
    """dvc.yaml differs only in the ``artifacts:`` section register maintains."""

    def rest(commit: str) -> Any:
        text = git.read_blob(commit, DVC_YAML)
        data = yamlio.loads(text, DVC_YAML) if text else {}
        if isinstance(data, dict):
            data.pop("artifacts", None)
        return data or {}

    return bool(rest(old) == rest(new))


def summary(parent: VersionInfo, child: VersionInfo, key_metrics: int = 2) -> str:
    """One line: what changed from ``parent`` to ``child``, from the tags' fingerprints."""
    a, b = parent.fingerprint, child.fingerprint
    if not a or not b:
        return "(no fingerprint in the version tags)"
    parts = []
    if a.get("weights") != b.get("weights"):
        parts.append("weights")
    data_a, data_b = a.get("data") or {}, b.get("data") or {}
    added = sorted(data_b.keys() - data_a.keys())
    removed = sorted(data_a.keys() - data_b.keys())
    changed = sorted(p for p in data_a.keys() & data_b.keys() if data_a[p] != data_b[p])
    parts += [f"+data {p}" for p in added] + [f"-data {p}" for p in removed]
    parts += [f"data {p}" for p in changed]
    for key, label in (("params", "params"), ("env", "environment"), ("code", "code")):
        if a.get(key) != b.get(key):
            parts.append(label)
    text = ("changed: " + ", ".join(parts)) if parts else "no change to inputs"
    deltas = metric_deltas(parent.metrics, child.metrics)[:key_metrics]
    shown = [f"{d.key} {d.delta:+.4g}" for d in deltas if d.delta is not None]
    return text + (f"; {', '.join(shown)}" if shown else "")
