"""Lineage derived from commit history: a version's parent is the nearest ancestor commit
that carries a version tag of the same model (first-parent order first, then other parents).
"""

from __future__ import annotations

from collections.abc import Mapping

from mvctl._adapters.git import GitRepo


def nearest_tagged_ancestor(
    git: GitRepo, commit: str, tagged: Mapping[str, str], *, include_self: bool
) -> str | None:
    """The version whose commit is the nearest ancestor of ``commit`` in ``tagged``
    (commit -> version); ``include_self`` lets ``commit`` itself count."""
    if not tagged:
        return None
    first_parent = git.first_parent_history(commit)
    start = 0 if include_self else 1
    for sha in first_parent[start:]:
        if sha in tagged:
            return tagged[sha]
    # Nothing on the first-parent chain: a version merged in from a side branch.
    for sha in git.ancestors(commit)[start:]:
        if sha in tagged:
            return tagged[sha]
    return None
