"""The serving host's side of git: reach a remote by URL, and a scratch bare cache for
depth-1 fetches of the one commit an alias names. Nothing here needs a work tree."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from mvctl._adapters.gitrun import GitFailed, run
from mvctl.errors import OperationalError
from mvctl.formats.names import redacted_url


def check_url(url: str) -> str:
    """A repository URL or path as git takes it; never something git could read as an option."""
    if not url or url.startswith("-") or any(c in url for c in "\n\r\0"):
        raise OperationalError(f"invalid repository URL {redacted_url(url)!r}")
    return url


def ls_remote_commit(url: str, ref: str, cwd: Path) -> str | None:
    """The commit ``ref`` (a tag) points at on the remote, from one `git ls-remote`."""
    where = redacted_url(url)  # a password in the URL never reaches output
    out = run(["ls-remote", "--", check_url(url), ref, f"{ref}^{{}}"], cwd, f"reach {where}")
    found: dict[str, str] = {}
    for line in out.splitlines():
        obj, _, name = line.partition("\t")
        found[name] = obj
    return found.get(f"{ref}^{{}}") or found.get(ref)


_OID_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class RemoteRef:
    """A tag as a remote advertises it: the tag object, and the commit it peels to (the
    same id for a lightweight tag)."""

    object: str
    commit: str


def ls_remote_tags(
    url: str, refs: Sequence[str], cwd: Path, globs: Sequence[str] = ()
) -> dict[str, RemoteRef]:
    """Every one of ``refs`` (tags) the remote has, and every tag matching one of ``globs``,
    from one `git ls-remote`: a host following several channels still makes one request
    per poll."""
    where = redacted_url(url)
    patterns = [p for ref in [*refs, *globs] for p in (ref, f"{ref}^{{}}")]
    out = run(["ls-remote", "--", check_url(url), *patterns], cwd, f"reach {where}")
    found: dict[str, str] = {}
    for line in out.splitlines():
        obj, _, name = line.partition("\t")
        if _OID_RE.fullmatch(obj):  # anything else is no ref of ours
            found[name] = obj
    matched = [
        name
        for name in found
        if not name.endswith("^{}") and any(fnmatchcase(name, g) for g in globs)
    ]
    return {
        ref: RemoteRef(found[ref], found.get(f"{ref}^{{}}", found[ref]))
        for ref in dict.fromkeys([*refs, *matched])
        if ref in found
    }


@dataclass(frozen=True)
class Fetched:
    """What a fetch of an alias brought: its tag object (a commit for a lightweight tag),
    that object's type, and the commit it peels to."""

    object: str
    kind: str
    commit: str


class GitDir:
    """A bare repository mvctl keeps as a scratch cache (a serving host's shallow fetches).

    It holds one fetch at a time: :meth:`scratch` empties it before a fetch (so a lock file
    or a half-written pack left by a killed fetch never wedges or fills it) and after the
    caller has read what it needs, so what a commit holds never accumulates on the host."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> GitDir:
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            run(["init", "-q", "--bare", "--template=", str(path)], path, "create the host cache")
        return cls(path)

    @classmethod
    @contextmanager
    def scratch(cls, path: Path) -> Iterator[GitDir]:
        """An empty cache at ``path`` (a real directory or nothing: the caller checked),
        removed again on exit. Only the process holding the host's lock calls this, so no
        git process of another mvctl can be using it."""
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        try:
            yield cls.create(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def run(self, *args: str, action: str, stdin: str | None = None) -> str:
        # A blob the filtered fetch left on the server stays there (git 2.44+ honours this;
        # older ones find no URL for the promisor remote, which is only ever given to fetch).
        env = {**os.environ, "GIT_NO_LAZY_FETCH": "1"}
        return run(["--git-dir", str(self.path), *args], self.path, action, stdin, env=env)

    def fetch_shallow(self, url: str, ref: str, into: str) -> str:
        """Fetch just ``ref``'s commit (depth 1, no history) into ``into``; return the commit.
        Blobs over BLOB_LIMIT stay on the server where it filters (GitHub, GitLab, and any
        git with uploadpack.allowFilter): the host reads only small files. The URL is given
        on the command line as a promisor remote, never written to the cache's config, so a
        missing blob is never fetched later."""
        self.run(
            "-c",
            f"remote.{_CACHE_REMOTE}.url={check_url(url)}",
            "-c",
            f"remote.{_CACHE_REMOTE}.promisor=true",
            "fetch",
            "--quiet",
            "--depth=1",
            f"--filter=blob:limit={BLOB_LIMIT}",
            "--no-tags",
            "--",
            _CACHE_REMOTE,
            f"+{ref}:{into}",
            action=f"fetch {ref} from {redacted_url(url)}",
        )
        return self.run("rev-parse", "--verify", f"{into}^{{commit}}", action="read it").strip()

    def fetch_alias(self, url: str, ref: str, into: str, *, files: bool) -> Fetched:
        """Fetch the alias ``ref``: with ``files``, its commit and the small files in it (as
        :meth:`fetch_shallow`); without, its tag object and commit alone (no tree, no blob:
        what a host needs to read a channel's weight for a version it already holds)."""
        if files:
            commit = self.fetch_shallow(url, ref, into)
        else:
            self.run(
                "-c",
                f"remote.{_CACHE_REMOTE}.url={check_url(url)}",
                "-c",
                f"remote.{_CACHE_REMOTE}.promisor=true",
                "fetch",
                "--quiet",
                "--depth=1",
                "--filter=tree:0",
                "--no-tags",
                "--",
                _CACHE_REMOTE,
                f"+{ref}:{into}",
                action=f"fetch {ref} from {redacted_url(url)}",
            )
            commit = self.run(
                "rev-parse", "--verify", f"{into}^{{commit}}", action="read it"
            ).strip()
        obj = self.run("rev-parse", "--verify", into, action="read it").strip()
        kind = self.run("cat-file", "-t", obj, action="read it").strip()
        return Fetched(obj, kind, commit)

    def fetch_refs(self, url: str, refspecs: Sequence[str]) -> None:
        """One fetch of every ref ``refspecs`` map (patterns: a ref the remote lacks is no
        error), their tag objects and commits alone (depth 1, no tree, no blob): all a poll
        needs to resolve aliases, in one request to the git server. Local refs the patterns
        match that the remote no longer has are removed (--prune): after it, those refs are
        the remote's, whatever an earlier fetch into the same cache brought."""
        try:
            self.run(
                "-c",
                f"remote.{_CACHE_REMOTE}.url={check_url(url)}",
                "-c",
                f"remote.{_CACHE_REMOTE}.promisor=true",
                "fetch",
                "--quiet",
                "--prune",
                "--depth=1",
                "--filter=tree:0",
                "--no-tags",
                "--",
                _CACHE_REMOTE,
                *refspecs,
                action=f"fetch the channel aliases from {redacted_url(url)}",
            )
        except GitFailed as exc:
            # git (2.39 at least) fails a shallow fetch that matches no ref at all, saying
            # nothing (every alias followed gone: a channel cleared); a second request, on
            # this failure alone, tells that apart from a real one.
            if exc.stderr.strip():
                raise
            sources = [spec.lstrip("+").partition(":")[0] for spec in refspecs]
            if ls_remote_tags(url, [], self.path, sources):
                raise
            # Nothing there: what the prune would have left of the patterns' refs is none.
            self._drop([spec.partition(":")[2] for spec in refspecs])

    def _drop(self, patterns: Sequence[str]) -> None:
        """Delete the local refs matching ``patterns`` (``refs/...`` globs of our own)."""
        out = self.run("for-each-ref", "--format=%(refname)", *patterns, action="list the cache")
        if out.strip():
            lines = "".join(f"delete {ref}\n" for ref in out.split())
            self.run("update-ref", "--stdin", stdin=lines, action="empty the cache")

    def local_refs(self, prefix: str) -> dict[str, Fetched]:
        """Every ref under ``prefix`` as :meth:`fetch_alias` describes one (its object, the
        object's type, the commit it peels to: the object itself when it peels to none)."""
        listed = self.run(
            "for-each-ref",
            "--format=%(refname) %(objectname) %(objecttype)",
            prefix,
            action="list the fetched aliases",
        )
        rows = [line.split(" ") for line in listed.splitlines()]
        rows = [r for r in rows if len(r) == 3 and _OID_RE.fullmatch(r[1])]
        if not rows:
            return {}
        peeled = self.run(
            "cat-file",
            "--batch-check=%(objectname) %(objecttype)",
            stdin="".join(f"{obj}^{{commit}}\n" for _, obj, _ in rows),
            action="peel the fetched aliases",
        ).splitlines()
        found: dict[str, Fetched] = {}
        for (name, obj, kind), line in zip(rows, peeled, strict=False):
            commit, _, what = line.partition(" ")
            ok = what == "commit" and _OID_RE.fullmatch(commit)
            found[name] = Fetched(obj, kind, commit if ok else obj)
        return found

    def tag_message(self, obj: str, cap: int) -> str | None:
        """The message of tag object ``obj`` (None when it is larger than ``cap`` bytes: a
        tag no registry writes, never read into memory)."""
        size = self.run("cat-file", "-s", obj, action="read the alias tag").strip()
        if not size.isdigit() or int(size) > cap:
            return None
        raw = self.run("cat-file", "tag", obj, action="read the alias tag")
        _, _, message = raw.partition("\n\n")  # headers, a blank line, the message
        return message

    def read_blob(self, commit: str, path: str) -> str | None:
        try:
            return self.run("cat-file", "blob", f"{commit}:{path}", action="read a file")
        except GitFailed:
            return None


BLOB_LIMIT = 1 << 20  # the largest file a host reads from a commit (a manifest, a .dvc file)
_CACHE_REMOTE = "mvctl-registry"
