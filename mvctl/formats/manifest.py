"""The one place that knows the manifest schema ``mvctl/manifest/v1`` (DESIGN.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mvctl.common import yamlio
from mvctl.errors import OperationalError
from mvctl.formats.labels import window_problems
from mvctl.formats.names import NAME_RE, Version

SCHEMA = "mvctl/manifest/v1"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entries(value: Any) -> list[Mapping[str, Any]]:
    return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


@dataclass(frozen=True)
class WeightsFile:
    path: str  # relative to the weights directory
    md5: str
    sha256: str
    size: int | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsFile:
        return cls(
            _text(data.get("path")),
            _text(data.get("md5")),
            _text(data.get("sha256")),
            _count(data.get("size")),
        )


@dataclass(frozen=True)
class WeightsEntry:
    """A weights file, or a directory (md5 ends in '.dir', sha256 is the tree hash)."""

    path: str
    md5: str
    sha256: str
    size: int | None
    files: tuple[WeightsFile, ...] = ()

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightsEntry:
        return cls(
            _text(data.get("path")),
            _text(data.get("md5")),
            _text(data.get("sha256")),
            _count(data.get("size")),
            tuple(WeightsFile.from_dict(f) for f in _entries(data.get("files"))),
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "md5": self.md5,
            "sha256": self.sha256,
            "size": self.size,
        }
        if self.is_dir:
            data["nfiles"] = len(self.files)
            data["files"] = [
                {"path": f.path, "md5": f.md5, "sha256": f.sha256, "size": f.size}
                for f in self.files
            ]
        return data


@dataclass(frozen=True)
class DatasetEntry:
    path: str
    md5: str
    size: int | None
    nfiles: int | None
    source: dict[str, str] | None = None  # repo, rev, rev_lock, path for `dvc import`

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetEntry:
        source = data.get("source")
        return cls(
            _text(data.get("path")),
            _text(data.get("md5")),
            _count(data.get("size")),
            _count(data.get("nfiles")),
            {str(k): str(v) for k, v in source.items()} if isinstance(source, dict) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "md5": self.md5,
            "size": self.size,
            "nfiles": self.nfiles if self.nfiles is not None else 1,
        }
        if self.source:
            data["source"] = dict(self.source)
        return data


@dataclass(frozen=True)
class Manifest:
    model: str
    version: str
    created: str
    author: str
    weights: tuple[WeightsEntry, ...]
    dataset: tuple[DatasetEntry, ...]
    environment: dict[str, Any]
    metrics: dict[str, Any]
    params: dict[str, Any]
    code: dict[str, Any]
    parent: str | None = None
    description: str = ""
    labels: tuple[str, ...] = field(default_factory=tuple)
    profile: dict[str, Any] | None = None  # {path, source, sha256} of the reference profile
    # {start, end[, column]}: the days the training data covers (mvctl.formats.labels);
    # written only when known, so manifests without one are what they were before.
    data_window: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "model": self.model,
            "version": self.version,
            "created": self.created,
            "author": self.author,
            "description": self.description,
            "labels": list(self.labels),
            "parent": self.parent,
            "weights": [w.to_dict() for w in self.weights],
            "dataset": [d.to_dict() for d in self.dataset],
            "environment": self.environment,
            "metrics": self.metrics,
            "params": self.params,
            "code": self.code,
            "profile": self.profile,
        }
        if self.data_window is not None:
            data["data_window"] = self.data_window
        return data

    def dumps(self) -> str:
        return yamlio.dumps(self.to_dict())

    @property
    def python(self) -> str:
        """The Python version it was trained with ("3.11.7"), or "" when not recorded."""
        return _text(self.environment.get("python"))

    @property
    def packages(self) -> dict[str, str]:
        """Installed packages, normalised name -> version."""
        found = self.environment.get("packages")
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """A stored manifest (see :func:`parse`); fields it lacks read as empty, so partial
        mappings (a gate's test, a hand-written manifest) read too."""
        labels, parent, profile = data.get("labels"), data.get("parent"), data.get("profile")
        window = data.get("data_window")
        return cls(
            model=_text(data.get("model")),
            version=_text(data.get("version")),
            created=_text(data.get("created")),
            author=_text(data.get("author")),
            weights=tuple(WeightsEntry.from_dict(w) for w in _entries(data.get("weights"))),
            dataset=tuple(DatasetEntry.from_dict(d) for d in _entries(data.get("dataset"))),
            environment=_mapping(data.get("environment")),
            metrics=_mapping(data.get("metrics")),
            params=_mapping(data.get("params")),
            code=_mapping(data.get("code")),
            parent=parent if isinstance(parent, str) else None,
            description=_text(data.get("description")),
            labels=tuple(str(x) for x in labels) if isinstance(labels, list) else (),
            profile=profile if isinstance(profile, dict) else None,
            data_window=window if isinstance(window, dict) else None,
        )


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "model": str,
    "version": str,
    "created": str,
    "author": str,
    "weights": list,
    "dataset": list,
    "environment": dict,
    "metrics": dict,
    "params": dict,
    "code": dict,
}


def problems(data: Any) -> list[str]:
    """Every way ``data`` fails the manifest schema (empty when valid)."""
    if not isinstance(data, dict):
        return ["manifest is not a mapping"]
    found: list[str] = []
    for key, kind in _REQUIRED.items():
        if key not in data:
            found.append(f"missing field {key!r}")
        elif not isinstance(data[key], kind):
            found.append(f"field {key!r} has the wrong type")
    if data.get("schema") not in (None, SCHEMA):
        found.append(f"unknown schema {data.get('schema')!r}")
    if isinstance(data.get("model"), str) and not NAME_RE.match(data["model"]):
        found.append(f"invalid model name {data['model']!r}")
    if isinstance(data.get("version"), str) and not Version.is_valid(data["version"]):
        found.append(f"invalid version {data['version']!r}")
    for i, entry in enumerate(data.get("weights") or []):
        if not isinstance(entry, dict) or not all(k in entry for k in ("path", "md5", "sha256")):
            found.append(f"weights[{i}] needs path, md5 and sha256")
    for i, entry in enumerate(data.get("dataset") or []):
        if not isinstance(entry, dict) or not all(k in entry for k in ("path", "md5")):
            found.append(f"dataset[{i}] needs path and md5")
    found += window_problems(data.get("data_window"))
    labels = data.get("labels")
    if labels is not None and not (
        isinstance(labels, list) and all(isinstance(x, str) for x in labels)
    ):
        found.append("labels must be a list of strings")
    code = data.get("code")
    if isinstance(code, dict) and "commit" not in code:
        found.append("code needs a commit")
    return found


def digest(value: Any) -> str:
    """A short, stable digest of any JSON-able value."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def fingerprint(data: Mapping[str, Any], code: str) -> dict[str, Any]:
    """A compact summary of a manifest: enough to say *what* changed between two versions
    without reading either manifest (stored in the version tag's message). ``code`` is a
    digest of the code tree the version was trained from."""
    weights = data.get("weights") or []
    env = data.get("environment") or {}
    return {
        "weights": digest([(w.get("path"), w.get("sha256")) for w in weights]),
        "data": {str(d.get("path")): str(d.get("md5")) for d in data.get("dataset") or []},
        "params": digest(data.get("params") or {}),
        "env": digest([env.get("python"), env.get("platform"), env.get("packages") or {}]),
        "code": code,
    }


def parse(text: str, source: str) -> dict[str, Any]:
    """Load a stored manifest as a plain mapping, refusing one that fails the schema."""
    data = yamlio.loads(text, source)
    found = problems(data)
    if found:
        raise OperationalError(f"{source} is not a valid manifest: {'; '.join(found)}")
    result: dict[str, Any] = data
    return result
