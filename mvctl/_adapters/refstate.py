"""A stamp of where git keeps tags, from a few ``stat`` calls: it changes whenever a tag is
created, moved or deleted, so a cache keyed by it can answer without listing 20,000 refs.

git's files backend writes every loose ref by creating ``NAME.lock`` and renaming it over
``NAME`` (rename and unlink change the directory's mtime and ctime), and rewrites
``packed-refs`` the same way (a new inode). Tags live flat in ``refs/tags/`` (mvctl's names
hold no ``/``), and ``refs/replace/`` can change what an object reads as, so the stamp is
those two directories and ``packed-refs``: device, inode, mtime, ctime, size. ctime is set by
the kernel on every change and cannot be set back (``touch -d``, ``rsync -a`` and ``cp -a``
restore mtimes only).

File timestamps come from a clock that ticks every few milliseconds, so two writes within one
tick can leave a directory's times unchanged. As in git's "racy index" rule, a stamp is only
*settled*, fit to be stored, when everything in it is older than :data:`SETTLE_NS`: a write
after the stamp was taken then shows as a newer time. Any other reference storage (reftable)
has no stamp, and a cache keyed by it must read the refs.
"""

from __future__ import annotations

import contextlib
import errno
import operator
import os
import re
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

SETTLE_NS = 2_000_000_000
_PARTS = ("packed-refs", "refs/tags", "refs/replace")


@dataclass(frozen=True)
class Stamp:
    value: str
    settled: bool  # every time in it is older than SETTLE_NS: a later change must show


def tags_stamp(common_dir: Path) -> Stamp | None:
    """The stamp of the tags in the git directory ``common_dir`` (None: no stamp can be
    trusted here, read the refs)."""
    if (common_dir / "reftable").exists() or not (common_dir / "refs").is_dir():
        return None
    now = time.time_ns()
    parts = []
    newest = 0
    for rel in _PARTS:
        try:
            st = (common_dir / rel).stat()
        except FileNotFoundError:
            parts.append("-")
            continue
        except OSError:
            return None
        parts.append(f"{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_size}")
        newest = max(newest, st.st_mtime_ns, st.st_ctime_ns)
    return Stamp("/".join(parts), newest < now - SETTLE_NS)


_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
SYMBOLIC = "ref:"  # Listing.oid of a symbolic ref


@dataclass(frozen=True)
class Listing:
    """The tags whose names start with some prefixes, read from the files backend: names
    from one ``readdir`` of ``refs/tags/`` and one read of ``packed-refs``, no ref file
    opened, and the object a name points at from its own file when asked (:meth:`oid`).

    It is what ``git for-each-ref`` lists for those prefixes, without the cost that makes
    it the whole budget of a rollback at 10,000 versions: git opens every loose ref in
    ``refs/tags/`` for any listing of them. A name is listed when ``refs/tags/NAME`` is a
    regular file or a ``packed-refs`` line (the file wins: git writes it over the packed
    one); names with a ``/`` are nested tags no ``PREFIX*`` pattern matches, and
    ``NAME.lock`` a write in progress. Nothing per name is built until asked: a move at
    10,000 versions reads :attr:`text` with one pattern and a few names by :meth:`oid`.
    """

    entries: list[str]  # the loose names as read (maybe .lock files, other prefixes)
    prefixes: tuple[str, ...]
    tags_dir: Path
    packed: Packed
    packed_file: tuple[Path, tuple[int, ...] | None]  # packed-refs, and its identity as read

    @cached_property
    def loose(self) -> frozenset[str]:
        return frozenset(self.entries)

    @cached_property
    def candidates(self) -> frozenset[str]:
        """Every listed name, and maybe .lock files and names of other prefixes."""
        return self.loose | self.packed.names

    @cached_property
    def names(self) -> frozenset[str]:
        """The names listed: what ``git for-each-ref`` gives for ``prefixes``."""
        return frozenset(n for n in self.candidates if self.listed(n))

    @cached_property
    def text(self) -> str | None:
        """:attr:`candidates` one per line, each line between newlines (a name may be there
        twice, loose and packed), for one pattern to pick whole names from; None when an
        entry holds a newline itself (no ref name does) and lines would not be names."""
        loose = "\n".join(self.entries)
        if loose.count("\n") != max(len(self.entries) - 1, 0):
            return None
        return f"\n{loose}\n{self.packed.lines}\n"

    def listed(self, name: str) -> bool:
        """Whether ``name``, one of :attr:`candidates`, is listed (a prefix, no lock)."""
        return name.startswith(self.prefixes) and not name.endswith(".lock")

    def oid(self, name: str) -> str | None:
        """The object ``refs/tags/NAME`` points at; :data:`SYMBOLIC` for a symbolic ref
        (git's to resolve); None when not a tag of ``prefixes``, a broken file (which git
        leaves out of its listings, with a warning), or neither a file nor a packed line.
        The file is opened as it is now: one the listing missed was written since, and is
        what git would read (no name is resolved: ``refs/tags/NAME`` or nothing)."""
        if not self.listed(name) or _FLAT.fullmatch(name) is None:
            return None
        try:
            raw = _read_ref(self.tags_dir / name)
        except _Linked:
            return SYMBOLIC  # a symbolic ref as a link (git once wrote them)
        except (FileNotFoundError, IsADirectoryError):
            # git reads past a directory (nested tags, or one left empty) to packed-refs
            packed = self.packed.get(name)
            if packed is None and self._repacked():
                return SYMBOLIC  # packed since (a `git gc`): git's to read as it is now
            return packed
        except OSError:
            return None  # unreadable
        if raw.startswith(b"ref:"):
            return SYMBOLIC
        found = _LOOSE_OID.match(raw)
        return found[1].decode().lower() if found else None

    def _repacked(self) -> bool:
        """Whether packed-refs is another file than the one read: a name loose then may be
        in it now, its file deleted (pack-refs writes packed-refs, then deletes the files)."""
        path, identity = self.packed_file
        return _identity(path) != identity


def _identity(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)  # noqa: PTH116 - one stat
    except FileNotFoundError:
        return None
    except OSError:
        return (-1,)  # unreadable: as if changed
    return _identity_of(st)


def _identity_of(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


_FLAT = re.compile(r"[^/\x00]+")  # a name that is one file in refs/tags/, never a path


class _Linked(Exception):
    """A ref file that is a symbolic link."""


def _read_ref(path: Path) -> bytes:
    """A loose ref's first bytes, never following a link (:class:`_Linked`) nor blocking on a
    FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise _Linked(path) from None
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read(4096)


# A loose ref's object id as git reads one: at the very start, in either case, followed by
# a blank or nothing (git ignores what comes after, and calls anything else broken).
_LOOSE_OID = re.compile(rb"([0-9a-fA-F]{64}|[0-9a-fA-F]{40})(?:[ \t\n\v\f\r]|\Z)")


def list_tags(common_dir: Path, prefixes: tuple[str, ...]) -> Listing | None:
    """The tags in ``common_dir`` whose names start with one of ``prefixes`` (names without
    ``refs/tags/``), or None where the files backend cannot answer (reftable, a symbolic
    link in ``refs/tags/``, ``packed-refs`` unreadable): run git instead."""
    if (common_dir / "reftable").exists() or not (common_dir / "refs").is_dir():
        return None
    tags_dir = common_dir / "refs" / "tags"
    loose = _loose(tags_dir, prefixes)
    if loose is None:
        return None
    packed_path = common_dir / "packed-refs"
    try:
        with packed_path.open("rb") as f:
            identity: tuple[int, ...] | None = _identity_of(os.fstat(f.fileno()))
            data = f.read()
    except FileNotFoundError:
        data, identity = b"", None
    except OSError:
        return None
    if not _read_as_git_reads(common_dir, data):
        return None
    packed = Packed(data.decode("utf-8", "surrogateescape"), prefixes)
    if packed.repeated:
        return None  # git lists a name twice and reads it by bisection: git's to answer
    return Listing(loose, prefixes, tags_dir, packed, (packed_path, identity))


# A packed-refs file git reads every line of, as written: its header, then ``OID REFNAME``
# lines (each maybe followed by its peeled ``^OID``). git refuses a file with any other line,
# and leaves out a name holding a space or a control character (a CRLF file's every name).
_HEX = rb"(?:[0-9a-f]{40}|[0-9a-f]{64})"
_PACKED_FILE = re.compile(
    rb"(?:# pack-refs with:[^\n]*\n)?(?:"
    + _HEX
    + rb" refs/[^\x00-\x20\x7f]+\n(?:\^"
    + _HEX
    + rb"\n)?)*"
)
_PACKED_REF = re.compile(rb" (refs/[^\n]*)\n")  # in a well formed file, the ref lines


def _as_git_reads(data: bytes) -> bool:
    """Whether ``data`` is a packed-refs file whose tags are every ``OID refs/tags/NAME``
    line, as this module reads it: every line well formed, and, when its header says
    ``sorted``, sorted (git trusts that trait: in a file that breaks it, its bisection and
    its listing of a prefix miss lines a read of the whole file finds)."""
    if _PACKED_FILE.fullmatch(data) is None:
        return False
    header = data.partition(b"\n")[0]
    if not (header.startswith(b"# pack-refs with:") and b" sorted " in header + b" "):
        return True
    refs = _PACKED_REF.findall(data)
    return all(map(operator.lt, refs, refs[1:]))  # in git's byte order, no name twice


# The digest of the last packed-refs file found to be as git reads it (the check costs
# ~20 ms at 20,000 refs; git rewrites the file only when it packs refs or deletes a packed
# one). A memo of a function of the file's bytes, keyed by all of them: never a state.
MEMO = "mvctl/packed-refs.ok"


def _read_as_git_reads(common_dir: Path, data: bytes) -> bool:
    """:func:`_as_git_reads`, remembered by the file's SHA-256 under the git directory (a
    memo that cannot be read or written only costs the check)."""
    if not data:
        return True
    import hashlib  # only with packed refs: a loose move never pays its ~4 ms

    digest = hashlib.sha256(data).hexdigest()
    memo = common_dir / MEMO
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if memo.read_text(encoding="ascii") == digest:
            return True
    if not _as_git_reads(data):
        return False
    with contextlib.suppress(OSError):
        memo.parent.mkdir(exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")  # no tempfile import (~7 ms)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(digest)
            tmp.replace(memo)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
    return True


def _loose(tags_dir: Path, prefixes: tuple[str, ...]) -> list[str] | None:
    """The names of the regular files in ``tags_dir`` starting with ``prefixes``, less
    ``.lock`` files, and maybe other names of files there: :attr:`Listing.candidates`
    (None: a symbolic link among them, or unreadable). Loose refs are read before
    ``packed-refs``: a concurrent pack-refs writes it before deleting files."""
    try:
        st = os.stat(tags_dir)  # noqa: PTH116 - one stat, no Path per entry
        names = os.listdir(tags_dir)  # noqa: PTH208 - strings, no Path per ref
    except FileNotFoundError:
        return []
    except OSError:
        return None
    if st.st_nlink == 2:
        # No subdirectory (a directory's link count is 2 plus its subdirectories on the
        # filesystems that count them): every entry is a file, or a link that
        # :meth:`Listing.oid` refuses to follow. Strings only, none filtered: a pattern
        # over them picks whole names (tags.event_counters), and Listing.names filters.
        return names
    try:  # nested tags (or a filesystem that does not count): the entries' types say
        with os.scandir(tags_dir) as it:
            entries = [e for e in it if e.name.startswith(prefixes)]
    except OSError:
        return None
    files = {e.name for e in entries if e.is_file(follow_symlinks=False)}
    if len(files) < len(entries) and any(e.is_symlink() for e in entries):
        return None  # a symbolic ref as a link (git once wrote them): git's to resolve
    return [name for name in files if not name.endswith(".lock")]


class Packed:
    """The flat tags of a ``packed-refs`` file whose names start with some prefixes:
    :attr:`names` from one pattern over the file (the literal `` refs/tags/`` it skips to
    occurs only on tag lines: a ref name holds no space), and a name's object found when
    asked: not 20,000 lines parsed, of which a move reads a hundred. A file git wrote
    ``sorted`` (its header says so) is searched as git searches it, by bisection."""

    def __init__(self, text: str, prefixes: tuple[str, ...]) -> None:
        self.text = f"\n{text}\n"
        starts = "|".join(re.escape(p) for p in prefixes)
        pattern = rf" refs/tags/((?:{starts})[^/\n]*)\n"
        self.found = re.findall(pattern, self.text)
        self.lines = "\n".join(self.found)  # the names one per line (none holds a newline)
        header = text.partition("\n")[0]
        self.sorted = header.startswith("# pack-refs with:") and " sorted " in f"{header} "
        # A name on two lines (a file git wrote sorted was checked to hold none: list_tags).
        self.repeated = not self.sorted and len(self.found) != len(self.names)

    @cached_property
    def names(self) -> frozenset[str]:
        return frozenset(self.found)

    def get(self, name: str) -> str | None:
        """The object ``refs/tags/NAME`` names, when its line is ``OID refs/tags/NAME``. In
        a sorted file by bisection alone (a move asks for a hundred names, most absent)."""
        ref = f"refs/tags/{name}"
        if self.sorted:
            found = self._bisect(ref)
            if found is None:
                return None
            line = found
        elif name not in self.names:
            return None
        else:
            line = self._line(ref)
        oid, _, listed = line.partition(" ")
        return oid if listed == ref and _OID.fullmatch(oid) else None

    def _line(self, ref: str) -> str:
        """The first line of ``ref``, one of :attr:`names`, in an unsorted file."""
        end = self.text.find(f" {ref}\n")
        start = self.text.rfind("\n", 0, end) + 1
        return self.text[start : self.text.find("\n", end)]

    def _bisect(self, ref: str) -> str | None:
        """The line of ``ref`` in a sorted file (refs in byte order: for the ASCII names
        looked up, the order of the decoded text), or None."""
        text = self.text
        lo, hi = 0, len(text)
        while lo < hi:
            start = text.rfind("\n", 0, (lo + hi) // 2) + 1  # lo is a line's start: >= lo
            end = text.find("\n", start)
            line = text[start:end]
            if line.startswith(("^", "#")) or not line:
                if line.startswith("^") and start > lo:  # a peeled line: its ref's line
                    end = start - 1
                    start = text.rfind("\n", 0, end) + 1
                    line = text[start:end]
                else:
                    lo = end + 1
                    continue
            found = line.partition(" ")[2]
            if found == ref:
                return line
            if found < ref:
                lo = end + 1
            else:
                hi = start
        return None
