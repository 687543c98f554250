"""Lineage derived from commit history (DESIGN.md): the parent of version V is the nearest
ancestor commit of V's commit that carries a version tag of the same model, looking along
first parents first, then other parents. Manifests are never consulted, so a hand-edited
manifest cannot change the answer, and neither can which branch is checked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl.errors import unknown_model, unknown_version
from mvctl.formats.names import Version, check_model
from mvctl.lineage.diff import summary
from mvctl.registry.parents import derive
from mvctl.registry.read import model_info, model_tags, open_registry


@dataclass(frozen=True)
class LineageNode:
    version: str
    commit: str
    parent: str | None
    children: tuple[str, ...]
    channels: tuple[str, ...]
    metrics: dict[str, Any]
    created: str
    deregistered: bool
    summary: str  # what changed from the parent, one line

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "commit": self.commit,
            "parent": self.parent,
            "children": list(self.children),
            "channels": list(self.channels),
            "metrics": self.metrics,
            "created": self.created,
            "deregistered": self.deregistered,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class LineageReport:
    model: str
    nodes: dict[str, LineageNode]  # SemVer order
    roots: tuple[str, ...]
    focus: str | None = None  # set when the report is one version's ancestry

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "focus": self.focus,
            "roots": list(self.roots),
            "versions": [n.to_dict() for n in self.nodes.values()],
        }


def report(root: Path, model: str, version: str | None = None) -> LineageReport:
    """The whole version tree of ``model``, or the ancestry of one ``version``."""
    check_model(model)
    git = open_registry(root)
    mt = model_tags(git, model)
    if not mt.versions:
        raise unknown_model(model)
    if version is not None and version not in mt.versions:
        Version.parse(version)  # a malformed version is a usage error, not a missing one
        raise unknown_version(model, version)
    tree = derive(git, model, {v: r.commit for v, r in mt.versions.items()})
    infos = {v: model_info(model, v, mt) for v in mt.versions}
    keep = tree.ancestry(version) if version else list(infos)
    nodes: dict[str, LineageNode] = {}
    for v in sorted(keep, key=lambda v: Version.parse(v).sort_key()):
        info, parent = infos[v], tree.parents[v]
        nodes[v] = LineageNode(
            version=v,
            commit=info.commit,
            parent=parent,
            children=tuple(c for c in tree.children[v] if c in keep),
            channels=info.channels,
            metrics=info.metrics,
            created=info.created,
            deregistered=info.deregistered,
            summary=summary(infos[parent], info) if parent else "first version",
        )
    roots = tuple(v for v in tree.roots if v in nodes)
    return LineageReport(model, nodes, roots, focus=version)
