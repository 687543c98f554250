"""Lineage derived from commit history (DESIGN.md): the parent of version V is the nearest
ancestor commit of V's commit that carries a version tag of the same model, looking along
first parents first, then other parents. Manifests are never consulted, so a hand-edited
manifest cannot change the answer, and neither can which branch is checked out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from mvctl._adapters.git import GitRepo
from mvctl.formats import tags
from mvctl.formats.names import Version


@dataclass(frozen=True)
class Lineage:
    """The version tree of one model."""

    parents: dict[str, str | None]  # version -> parent version
    children: dict[str, tuple[str, ...]]  # version -> child versions, SemVer order
    roots: tuple[str, ...]

    def ancestry(self, version: str) -> list[str]:
        """``version`` and its ancestors, nearest first."""
        chain = [version]
        seen = {version}
        parent = self.parents.get(version)
        while parent is not None and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self.parents.get(parent)
        return chain


def _nearest(
    start_parents: list[str], graph: Mapping[str, list[str]], tagged: Mapping[str, str]
) -> str | None:
    # First parents first: follow the first-parent chain through untagged join commits.
    if not start_parents:
        return None
    node: str | None = start_parents[0]
    chain: list[str] = []
    while node is not None and node not in chain:
        if node in tagged:
            return tagged[node]
        chain.append(node)
        parents = graph.get(node, [])
        node = parents[0] if parents else None
    # Then the other parents of the start and of each join on that chain, breadth first.
    queue = deque(start_parents[1:])
    for joined in chain:
        queue.extend(graph.get(joined, [])[1:])
    visited: set[str] = set()
    while queue:
        node = queue.popleft()
        if node in visited:
            continue
        visited.add(node)
        if node in tagged:
            return tagged[node]
        queue.extend(graph.get(node, []))
    return None


def _semver(version: str) -> tuple[object, ...]:
    return Version.parse(version).sort_key()


def _tagged_commits(versions: Mapping[str, str]) -> dict[str, str]:
    """commit -> version; should two versions share a commit, the higher one names it."""
    tagged: dict[str, str] = {}
    for version in sorted(versions, key=_semver):
        tagged[versions[version]] = version
    return tagged


def derive(git: GitRepo, model: str, versions: Mapping[str, str]) -> Lineage:
    """The tree of ``versions`` (version -> commit), from one simplified history walk."""
    tagged = _tagged_commits(versions)
    graph = git.decorated_graph(tags.version_glob(model), list(tagged))
    parents: dict[str, str | None] = {}
    for version, commit in versions.items():
        parents[version] = _nearest(graph.get(commit, []), graph, tagged)
    kids: dict[str, list[str]] = {v: [] for v in versions}
    for version, parent in parents.items():
        if parent is not None:
            kids[parent].append(version)
    children = {v: tuple(sorted(c, key=_semver)) for v, c in kids.items()}
    roots = tuple(sorted((v for v, p in parents.items() if p is None), key=_semver))
    return Lineage(parents, children, roots)


def parent_of_head(git: GitRepo, model: str, versions: Mapping[str, str]) -> str | None:
    """The version a registration at HEAD derives from (HEAD itself counts if tagged)."""
    tagged = _tagged_commits(versions)
    head = git.head_commit()
    if head is None or not tagged:
        return None
    if head in tagged:
        return tagged[head]
    graph = git.decorated_graph(tags.version_glob(model), [], with_head=True)
    return _nearest(graph.get(head, []), graph, tagged)
