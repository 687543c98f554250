"""Where a poll learns what the followed aliases name, in git (the source of truth):

- :class:`LsRemote` (plain polling, the default): one ``git ls-remote`` per poll for every
  alias and the deregistrations, then a fetch of the alias's tag object for a channel
  that moved to a version the host keeps (its weight is in the tag's message);
- :class:`FetchedAliases` (for hosts woken by a pointer file): one ``git fetch --prune`` of
  every followed alias and every deregistration (tag objects and commits, no tree) into a
  cache kept between polls, resolved from the local objects: a change costs the git server
  one request, and a poll no ``git init``.

Either way what comes from the remote is untrusted; the commit and alias checks of
:mod:`mvctl.serving.commit` and :mod:`mvctl.serving.download` run on it as they are."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from mvctl._adapters.gitdir import Fetched, GitDir, RemoteRef, ls_remote_tags
from mvctl.errors import OperationalError
from mvctl.formats import tags
from mvctl.serving.download import AliasRead, alias_read, read_alias
from mvctl.serving.layout import META, real_dir
from mvctl.serving.request import PullRequest

CACHE = "aliases.git"  # under DIR/.mvctl: the last fetch of the aliases
_LOCAL = "refs/mvctl/remote/"


class AliasSource(Protocol):
    def remote_refs(
        self, req: PullRequest, dest: Path, refs: Mapping[str, str], retired: str
    ) -> dict[str, RemoteRef]:
        """The remote's ``refs`` (channel -> tag ref) and the tags matching ``retired``."""
        ...

    def alias(self, req: PullRequest, dest: Path, channel: str) -> AliasRead:
        """``channel``'s alias tag as the remote has it (validated: its weight)."""
        ...


class LsRemote:
    def remote_refs(
        self, req: PullRequest, dest: Path, refs: Mapping[str, str], retired: str
    ) -> dict[str, RemoteRef]:
        return ls_remote_tags(req.repo, list(refs.values()), dest, [retired])

    def alias(self, req: PullRequest, dest: Path, channel: str) -> AliasRead:
        return read_alias(req, dest, channel)


class FetchedAliases:
    """One fetch per poll into ``DIR/.mvctl/aliases.git``, created once and kept: the fetch
    forces every ref its patterns match and prunes those the remote no longer has, so after
    it the cache's refs under ``refs/mvctl/remote/`` that a poll looks up are the remote's,
    whatever an earlier poll fetched (objects of earlier polls stay, found by hash alone).
    A failed fetch removes the cache: a killed or broken one is never fetched into twice."""

    def __init__(self) -> None:
        self._cache: GitDir | None = None
        self._fetched: dict[str, Fetched] = {}

    def remote_refs(
        self, req: PullRequest, dest: Path, refs: Mapping[str, str], retired: str
    ) -> dict[str, RemoteRef]:
        path = dest / META / CACHE
        real_dir(path)  # a planted link is refused before anything is removed through it
        self._cache, self._fetched = None, {}
        cache = GitDir.create(path)
        # Patterns, so that an alias the remote lacks (a stopped canary) is no error; a
        # pattern may bring a longer name too (M@production-eu), which is never looked up.
        # Every name looked up below matches one of them, so none is a stale one.
        wanted = [*refs.values(), retired]
        specs = [_spec(ref if "*" in ref else f"{ref}*") for ref in wanted]
        try:
            cache.fetch_refs(req.repo, specs)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)  # the next poll starts from an empty one
            raise
        self._cache = cache
        self._fetched = {
            f"refs/tags/{name.removeprefix(_LOCAL)}": got
            for name, got in cache.local_refs(_LOCAL).items()
        }
        found = {ref: self._fetched[ref] for ref in refs.values() if ref in self._fetched}
        prefix = retired.removesuffix("*!")
        found |= {
            name: got
            for name, got in self._fetched.items()
            if name.startswith(prefix) and name.endswith("!")
        }
        return {name: RemoteRef(got.object, got.commit) for name, got in found.items()}

    def alias(self, req: PullRequest, dest: Path, channel: str) -> AliasRead:
        name = tags.alias_tag(req.model, channel)
        got = self._fetched.get(f"refs/tags/{name}")
        if self._cache is None or got is None:  # pragma: no cover - read after remote_refs
            raise OperationalError(f"{name} was not fetched")
        return alias_read(self._cache, got, name)


def _spec(pattern: str) -> str:
    """``+refs/tags/X*:refs/mvctl/remote/X*`` (a pattern of one '*', as git takes it)."""
    return f"+{pattern}:{_LOCAL}{pattern.removeprefix('refs/tags/')}"
