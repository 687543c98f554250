"""Git adapter: every git operation mvctl performs in a work tree, run as git subprocesses.

git itself is the interface: one subprocess per operation, no object database in Python.
That keeps a rollback or a `list` free of GitPython's import and repository set-up cost
(~60 ms, a fifth of a rollback's budget). User-supplied strings never reach git as
options: names are validated before they get here, and paths are always passed after a
``--`` separator. Remotes (push, ls-remote, fetch) live in gitremote, running git in
gitrun, the serving host's cache in gitdir.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mvctl._adapters.gitobjects import parse_tag_object, read_named
from mvctl._adapters.gitremote import PUSH_GRACE, Declined, PushInterrupted, Refused, Remotes
from mvctl._adapters.gitrun import GitFailed, run, stderr_line
from mvctl._adapters.refstate import SYMBOLIC, Listing, Stamp, list_tags, tags_stamp
from mvctl.errors import ConflictError, OperationalError

__all__ = [
    "PUSH_GRACE",
    "Declined",
    "GitFailed",
    "GitRepo",
    "PushInterrupted",
    "Refused",
    "Stamp",
    "TagRecord",
]

TAG_PREFIX = "refs/tags/"
_FIELD = "%00"
_REF_FORMAT = _FIELD.join(
    [
        "%(refname)",
        "%(objecttype)",
        "%(objectname)",
        "%(*objectname)",
        "%(taggername) %(taggeremail)",
        "%(taggerdate:iso-strict)",
        "%(contents)",
    ]
)
_NFIELDS = 7


@dataclass(frozen=True)
class TagRecord:
    """A tag as for-each-ref sees it; ``commit`` is the peeled target."""

    name: str
    object: str
    commit: str
    annotated: bool
    tagger: str
    date: str
    message: str


class GitRepo(Remotes):
    """A git work tree, opened at its top level."""

    def __init__(self, root: Path, common_dir: Path | None = None) -> None:
        self.root = root
        self._committer: str | None = None
        self._common_dir = common_dir

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        not_a_repo = OperationalError(
            f"{path} is not inside a git work tree",
            hint="run 'git init' first, or cd into your repository",
        )
        if not path.is_dir():
            raise not_a_repo
        try:
            out = run(
                ["rev-parse", "--is-bare-repository", "--show-toplevel", "--git-common-dir"],
                path,
                "find the repo",
            )
        except GitFailed as exc:
            raise not_a_repo from exc
        lines = out.splitlines()
        if lines[0] == "true" or len(lines) < 2:
            raise OperationalError(f"{path} is a bare git repository", hint="use a clone")
        common = (path / lines[2]).resolve() if len(lines) > 2 else None
        return cls(Path(lines[1]).resolve(), common)

    def run(self, *args: str, action: str) -> str:
        return run(args, self.root, action)

    def _run_stdin(self, args: Sequence[str], stdin: str, action: str) -> str:
        return run(args, self.root, action, stdin=stdin)

    # --- reading -----------------------------------------------------------------------

    def common_dir(self) -> Path:
        """The git directory shared by every work tree of the repository (where refs live)."""
        if self._common_dir is None:
            out = self.run("rev-parse", "--git-common-dir", action="find the git directory")
            self._common_dir = (self.root / out.strip()).resolve()
        return self._common_dir

    def tags_stamp(self) -> Stamp | None:
        """A stamp that changes whenever any tag changes (mvctl._adapters.refstate)."""
        return tags_stamp(self.common_dir())

    def head_commit(self) -> str | None:
        try:
            return self.run(
                "rev-parse", "--verify", "-q", "HEAD^{commit}", action="read HEAD"
            ).strip()
        except GitFailed:
            return None

    def current_branch(self) -> str | None:
        try:
            name = self.run("symbolic-ref", "-q", "--short", "HEAD", action="read branch")
        except GitFailed:
            return None
        return name.strip() or None

    def committer(self) -> str:
        """git's committer identity with its timestamp ('Name <email> 1700000000 +0000'),
        read once per command: it is who tags, and when."""
        if self._committer is None:
            out = self.run("var", "GIT_COMMITTER_IDENT", action="read the git identity")
            self._committer = out.strip()
        return self._committer

    def ident(self) -> str:
        """The acting identity, 'Name <email>', as git would record it."""
        return self.committer().rsplit(" ", 2)[0]

    def dirty_paths(self) -> list[str]:
        """Tracked files with uncommitted changes (staged or not), repo-relative."""
        out = self.run(
            "status", "--porcelain=v1", "-z", "--untracked-files=no", action="read status"
        )
        paths: list[str] = []
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":  # renames carry their source as the next entry
                i += 1
        return paths

    def changed_paths(self, paths: Sequence[str]) -> list[str]:
        """Of ``paths``, those that differ from HEAD (including new untracked ones)."""
        if not paths:
            return []
        out = self.run(
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
            *paths,
            action="read status",
        )
        return [e[3:] for e in out.split("\0") if len(e) >= 4]

    def is_tracked(self, path: str) -> bool:
        out = self.run("ls-files", "-z", "--", path, action="list tracked files")
        return bool(out.strip("\0"))

    def tags(self, *patterns: str) -> list[TagRecord]:
        """All tags matching for-each-ref ``patterns``, with their peeled commits and messages."""
        out = self.run(
            "for-each-ref", f"--format={_REF_FORMAT}{_FIELD}", *patterns, action="list tags"
        )
        fields = out.split("\0")
        records: list[TagRecord] = []
        for start in range(0, len(fields) - _NFIELDS, _NFIELDS):
            ref, otype, obj, peeled, tagger, date, message = fields[start : start + _NFIELDS]
            annotated = otype == "tag"
            records.append(
                TagRecord(
                    name=ref.lstrip("\n").removeprefix("refs/tags/"),
                    object=obj,
                    commit=peeled if annotated else obj,
                    annotated=annotated,
                    tagger=tagger.strip() if annotated else "",
                    date=date,
                    message=message if annotated else "",
                )
            )
        return records

    def read_blob(self, commit: str, path: str) -> str | None:
        try:
            return self.run("cat-file", "blob", f"{commit}:{path}", action="read a file")
        except GitFailed:
            return None

    def decorated_graph(
        self, decorate_glob: str, starts: Sequence[str], *, with_head: bool = False
    ) -> dict[str, list[str]]:
        """History reachable from ``starts`` simplified to the commits that ``decorate_glob``
        tags (plus HEAD when asked, and the merges where their lines join): commit -> its
        rewritten parents, first parent first. Git walks every commit in C; what comes back
        grows with the number of tagged commits, not with the length of history."""
        if not starts and not with_head:
            return {}
        args = [
            "log",
            "--simplify-by-decoration",
            f"--decorate-refs={decorate_glob}",
            "--parents",
            "--format=%H %P",
            "--stdin",
        ]
        if with_head:
            args.insert(3, "--decorate-refs=HEAD")
        revs = [*starts, *(["HEAD"] if with_head else [])]
        out = self._run_stdin(args, "\n".join(revs) + "\n", action="walk history")
        graph: dict[str, list[str]] = {}
        for line in out.splitlines():
            # --parents turns on parent rewriting, so %P names simplified parents.
            commit, *parents = line.split()
            graph[commit] = parents
        return graph

    def tree_entries(self, commit: str) -> list[tuple[str, str, str]]:
        """(mode, object id, path) of every file in ``commit``'s tree."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", commit, action="list a tree")
        entries = []
        for entry in out.split("\0"):
            if entry:
                meta, path = entry.split("\t", 1)
                mode, _, obj = meta.split(" ")
                entries.append((mode, obj, path))
        return entries

    def changed_files(self, old: str, new: str) -> list[tuple[str, str, int | None, int | None]]:
        """(status, path, lines added, lines deleted) of each file changed from ``old`` to
        ``new``; counts are None for binary files."""
        status_out = self.run(
            "diff", "--name-status", "-z", "--no-renames", old, new, "--", action="diff commits"
        )
        fields = [f for f in status_out.split("\0") if f]
        statuses = dict(zip(fields[1::2], fields[0::2], strict=True))
        numstat = self.run(
            "diff", "--numstat", "-z", "--no-renames", old, new, "--", action="diff commits"
        )
        counts: dict[str, tuple[int | None, int | None]] = {}
        for entry in numstat.split("\0"):
            if not entry:
                continue
            added, deleted, path = entry.split("\t", 2)
            counts[path] = (
                int(added) if added.isdigit() else None,
                int(deleted) if deleted.isdigit() else None,
            )
        return [(statuses[p], p, *counts.get(p, (None, None))) for p in sorted(statuses)]

    def commit_paths(self, paths: Sequence[str], message: str) -> str:
        """Commit exactly ``paths`` (leaving anything else staged alone); return the commit."""
        self.run("add", "--", *paths, action="stage files")
        self.run(
            "commit", "-q", "--no-edit", "-m", message, "--only", "--", *paths, action="commit"
        )
        sha = self.head_commit()
        if sha is None:  # pragma: no cover - git just made the commit
            raise OperationalError("git commit produced no HEAD")
        return sha

    def unstage(self, paths: Sequence[str], commit: str | None) -> None:
        """Return the index entries of ``paths`` to ``commit`` (or remove them if none)."""
        if not paths:
            return
        if commit is None:
            self.run(
                "rm",
                "-q",
                "--cached",
                "--ignore-unmatch",
                "-r",
                "--",
                *paths,
                action="unstage files",
            )
        else:
            self.run("reset", "-q", commit, "--", *paths, action="unstage files")

    def commit_on_new_branch(
        self, branch: str, base: str, files: dict[str, str], message: str
    ) -> str:
        """Commit ``files`` on top of ``base`` as new branch ``branch`` through a private
        index, leaving the work tree, the real index and the checked-out branch untouched."""
        import os
        import tempfile

        with tempfile.TemporaryDirectory(prefix="mvctl-index-") as tmp:
            env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            run(["read-tree", base], self.root, "read the base tree", env=env)
            for path, text in files.items():
                blob = self._run_stdin(["hash-object", "-w", "--stdin"], text, "store a file")
                run(
                    ["update-index", "--add", "--cacheinfo", f"100644,{blob.strip()},{path}"],
                    self.root,
                    "stage a file",
                    env=env,
                )
            tree = run(["write-tree"], self.root, "write a tree", env=env).strip()
        commit = self._run_stdin(["commit-tree", tree, "-p", base], message, "commit").strip()
        self.update_refs([f"create refs/heads/{branch} {commit}"], what=f"branch {branch}")
        return commit

    def read_blobs(self, specs: Sequence[str]) -> dict[str, str | None]:
        """Many ``REV:PATH`` blobs through one ``git cat-file --batch``."""
        if not specs:
            return {}
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=("\n".join(specs) + "\n").encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise OperationalError(f"git failed to read files: {stderr_line(proc.stderr.decode())}")
        out, pos = proc.stdout, 0
        found: dict[str, str | None] = {}
        for spec in specs:
            end = out.index(b"\n", pos)
            header = out[pos:end].decode().split()
            pos = end + 1
            if len(header) == 3 and header[1] == "blob":
                size = int(header[2])
                found[spec] = out[pos : pos + size].decode("utf-8", "replace")
                pos += size + 1
            else:
                found[spec] = None
                if len(header) == 3:  # an object that is not a blob: skip its body
                    pos += int(header[2]) + 1
        return found

    def move_head(self, new: str, expected: str) -> None:
        """Compare-and-swap HEAD (and its branch) from ``expected`` to ``new``."""
        self.run("update-ref", "-m", "mvctl: undo", "HEAD", new, expected, action="move HEAD")

    def make_tags(self, specs: Sequence[tuple[str, str, str]]) -> list[str]:
        """Write annotated tag objects for (name, commit, message) without refs; return their
        ids. One `git hash-object` validates and stores them all; the tagger is the acting
        identity."""
        import tempfile

        tagger = self.committer()
        with tempfile.TemporaryDirectory(prefix="mvctl-tags-") as tmp:
            paths = []
            for i, (name, commit, message) in enumerate(specs):
                path = Path(tmp) / str(i)
                path.write_text(
                    f"object {commit}\ntype commit\ntag {name}\ntagger {tagger}\n\n"
                    f"{message.rstrip()}\n",
                    encoding="utf-8",
                )
                paths.append(str(path))
            out = self._run_stdin(
                ["hash-object", "-t", "tag", "-w", "--stdin-paths"],
                "\n".join(paths) + "\n",
                action="create tags",
            )
        return out.split()

    def create_annotated_tag(self, name: str, commit: str, message: str) -> str:
        """Create tag ``name`` only if it does not exist yet (CAS); return the tag object."""
        [obj] = self.make_tags([(name, commit, message)])
        self.update_refs([f"create refs/tags/{name} {obj}"], what=f"tag {name}")
        return obj

    def update_refs(self, commands: Sequence[str], what: str) -> None:
        """Apply ``git update-ref --stdin`` commands as one atomic transaction: all or none.
        ``create`` fails if the ref exists; ``update``/``delete`` with an old value fail if
        the ref moved: the compare-and-swap every write to a channel relies on."""
        try:
            self._run_stdin(["update-ref", "--stdin"], "\n".join(commands) + "\n", f"update {what}")
        except GitFailed as exc:
            raise ConflictError(
                f"{what} was changed by someone else first ({stderr_line(exc.stderr)})",
                hint="nothing was changed; run the command again",
            ) from exc

    def delete_tag(self, name: str, expected: str) -> None:
        self.run("update-ref", "-d", f"refs/tags/{name}", expected, action=f"delete tag {name}")

    def refs(self, prefix: str) -> list[str]:
        out = self.run("for-each-ref", "--format=%(refname)", prefix, action="list refs")
        return out.split()

    def named_tags(self, names: Sequence[str]) -> dict[str, TagRecord | None]:
        """Tags by exact name (no ``refs/tags/``), read without listing the others. A name
        that does not exist is left out; one that is not an annotated tag on a commit (a
        lightweight tag, a tag of a tag) maps to None: it exists, but reads as no record."""
        refs = {n: f"{TAG_PREFIX}{n}" for n in names}
        return self._records(names, read_named(self.root, list(refs.values())), refs)

    @staticmethod
    def _records(
        names: Sequence[str],
        raw: dict[str, tuple[str, str, bytes] | None],
        keys: dict[str, str],
    ) -> dict[str, TagRecord | None]:
        found: dict[str, TagRecord | None] = {}
        for name in names:
            entry = raw[keys[name]]
            if entry is None:
                continue
            tag = parse_tag_object(entry[0], entry[2]) if entry[1] == "tag" else None
            if tag is None or tag.target_type != "commit":
                found[name] = None
                continue
            found[name] = TagRecord(
                name, tag.object, tag.target, True, tag.tagger, tag.date, tag.message
            )
        return found

    def listed_tags(self, *prefixes: str) -> ListedTags:
        """The tags whose names start with ``prefixes`` (no ``refs/tags/``): their names,
        and a reader of those among them asked for by name. Read from git's files
        without a listing where they allow (mvctl._adapters.refstate.Listing), else
        listed by git."""
        listing = list_tags(self.common_dir(), prefixes)
        if listing is not None:
            return ListedTags(self, None, listing)
        names = frozenset(self.ref_names(*(f"{TAG_PREFIX}{p}*" for p in prefixes)))
        return ListedTags(self, names, None)

    def tags_at(self, objects: dict[str, str]) -> dict[str, TagRecord | None]:
        """Tags by name from the object ids they point at (read as :meth:`named_tags`
        reads them): no name is resolved, so none can stand for another ref."""
        return self._records(list(objects), read_named(self.root, list(objects.values())), objects)

    def ref_objects(self, *patterns: str) -> list[tuple[str, str]]:
        """(name without ``refs/tags/``, object id) of the tags matching ``patterns``: as
        cheap as :meth:`ref_names`, and enough to tell whether any of them changed."""
        out = self.run(
            "for-each-ref", "--format=%(objectname) %(refname)", *patterns, action="list tags"
        )
        found = []
        for line in out.splitlines():
            obj, _, ref = line.partition(" ")
            found.append((ref.removeprefix(TAG_PREFIX), obj))
        return found

    def ref_names(self, *patterns: str) -> list[str]:
        """The names (without ``refs/tags/``) of the tags matching ``patterns``, nothing else:
        no object is opened, so it costs what listing the refs costs."""
        out = self.run("for-each-ref", "--format=%(refname)", *patterns, action="list tags")
        return [line.removeprefix(TAG_PREFIX) for line in out.splitlines()]


@dataclass(frozen=True)
class ListedTags:
    """What :meth:`GitRepo.listed_tags` answers: ``names``, and :meth:`read`."""

    git: GitRepo
    listed: frozenset[str] | None  # the names git listed (None: read from the files)
    listing: Listing | None

    @property
    def candidates(self) -> frozenset[str]:
        """The names listed, and maybe others (Listing.candidates)."""
        return self.listing.candidates if self.listing is not None else self.listed or frozenset()

    @property
    def names(self) -> frozenset[str]:
        """The names listed, exactly."""
        return self.listing.names if self.listing is not None else self.listed or frozenset()

    @property
    def text(self) -> str | None:
        """:attr:`candidates` one per line between newlines (a name maybe twice), for one
        pattern over all of them; None when a line would not be a name."""
        if self.listing is not None:
            return self.listing.text
        return "\n" + "\n".join(self.names) + "\n"

    def read(self, names: Sequence[str]) -> dict[str, TagRecord | None]:
        """:meth:`GitRepo.named_tags` of ``names``, those listed only: git resolves
        ``refs/tags/NAME`` as a revision, so with no such tag it would read
        ``refs/tags/refs/tags/NAME`` (or a branch of that name), which anyone who can push
        a tag can make. From the files, each is read by the object its own file names."""
        objects = {n: self.listing.oid(n) for n in names} if self.listing else {}
        if self.listing is None or SYMBOLIC in objects.values():
            return self.git.named_tags([n for n in names if n in self.names])
        return self.git.tags_at({n: oid for n, oid in objects.items() if oid is not None})
