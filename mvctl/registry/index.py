"""A derived index of what ``list``, ``list MODEL`` and ``history MODEL`` show (and ``show``
reads from), so that they stay instant at 10,000 versions: never a second source of truth,
only a memo of one read of the refs, kept under the git directory (``mvctl/index/``: never
committed, never pushed; deleting it is always safe).

A view (a model's versions, its events, the summary of every model) is a function of tags:
their names and the objects they point at (tag objects never change). An index file holds
one view's rows with two keys, and is used only when one of them says the tags are still
those it was built from:

- the *stamp* of git's ref storage (mvctl._adapters.refstate), read with three ``stat``
  calls: equal, no tag of any model changed since, and the rows answer without running git;
- the *digest* of the view's tag names and objects, from the same read of the refs that
  builds the rows: equal, the refs changed elsewhere (another model, another channel's
  file) and the rows are still this view's.

Otherwise the rows are built from the refs as before and the file rewritten, atomically (a
temporary file renamed over it: concurrent writers each leave a whole file, and any of them
is right for its keys). A file that is not whole and ours (its checksum, format, mvctl
version, view, model and row columns) is ignored and rebuilt; a directory that cannot be
written only costs the next command the full read. ``mvctl check`` and the moves never read
it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from mvctl import __version__
from mvctl._adapters.git import GitRepo, TagRecord

FORMAT = 1
T = TypeVar("T")
R = TypeVar("R")
S = TypeVar("S")
Row = list[Any]
# Listed with the tags into the digest: `git replace` changes what a tag object reads as,
# not its id, so the refs' objects alone would call an index built before it the same.
REPLACE = "refs/replace/"


@dataclass(frozen=True)
class Rows(Generic[T]):
    """How one view's items become rows and back. ``columns`` names their fields in order:
    a file written by other code (the same version number, other fields) is rebuilt."""

    columns: tuple[str, ...]
    to_row: Callable[[T], Row]
    from_row: Callable[[Row], T]


@dataclass(frozen=True)
class _Stored:
    stamp: str | None
    digest: str
    payload: bytes
    rows: list[Row]


def rows_of(kind: type[T], to_row: Callable[[T], Row], from_row: Callable[[Row], T]) -> Rows[T]:
    """:class:`Rows` of a dataclass, its columns its fields."""
    return Rows(tuple(f.name for f in dataclasses.fields(kind)), to_row, from_row)  # type: ignore[arg-type]


def index_path(git: GitRepo, view: str, model: str) -> Path:
    """Where the index of ``view`` of ``model`` (a checked name) lives."""
    return git.common_dir() / "mvctl" / "index" / view / f"{model}.json"


def cached(
    git: GitRepo,
    view: str,
    model: str,
    patterns: Sequence[str],
    build: Callable[[list[TagRecord]], list[T]],
    rows: Rows[T],
) -> list[T]:
    """``build(git.tags(*patterns))``, from the index when its keys say it is the same."""
    return _memo(git, view, model, _reader(git, patterns), build, rows, None, reads_more=False)


def cached_as(
    git: GitRepo,
    view: str,
    model: str,
    patterns: Sequence[str],
    build: Callable[[list[TagRecord]], list[T]],
    rows: Rows[T],
    shape: Callable[[Row], S],
) -> list[S]:
    """:func:`cached`, each item given as ``shape`` of its row: from the index, what a
    command prints is made from the rows at once, not from items revived first (at 10,000
    versions, ``list MODEL --json`` spent more on the items than on reading the file)."""
    read = _reader(git, patterns)
    return _memo(git, view, model, read, build, rows, shape, reads_more=False)


def _reader(git: GitRepo, patterns: Sequence[str]) -> Callable[[], tuple[str, list[TagRecord]]]:
    def read() -> tuple[str, list[TagRecord]]:
        listed = git.tags(*patterns, REPLACE)
        records = [r for r in listed if not r.name.startswith(REPLACE)]
        return _digest((r.name, r.object) for r in listed), records

    return read


def peek(git: GitRepo, view: str, model: str, rows: Rows[T]) -> list[T] | None:
    """What :func:`cached` would answer from the index alone (its stamp equal), or None:
    for a reader that has a cheaper way than the full read when the index is stale."""
    stamp = git.tags_stamp()
    stored = _load(index_path(git, view, model), view, model, rows.columns)
    if stored is None or stamp is None or stored.stamp != stamp.value:
        return None
    return _revive(stored.rows, rows.from_row)


def cached_by_names(
    git: GitRepo,
    view: str,
    key: str,
    patterns: Sequence[str],
    build: Callable[[list[tuple[str, str]]], list[T]],
    rows: Rows[T],
) -> list[T]:
    """``build`` of the (name, object) of the tags matching ``patterns``, from the index when
    its keys say it is the same. ``build`` may read some of those tags itself (by name):
    what it answers is kept only when the stamp shows that no tag changed meanwhile."""

    def read() -> tuple[str, list[tuple[str, str]]]:
        listed = git.ref_objects(*patterns, REPLACE)
        refs = [ref for ref in listed if not ref[0].startswith(REPLACE)]
        return _digest(listed), refs

    return _memo(git, view, key, read, build, rows, None, reads_more=True)


def _memo(
    git: GitRepo,
    view: str,
    model: str,
    read: Callable[[], tuple[str, R]],
    build: Callable[[R], list[T]],
    rows: Rows[T],
    shape: Callable[[Row], Any] | None,
    *,
    reads_more: bool,
) -> list[Any]:
    """The view's items (``shape`` of their rows, when given)."""
    revive = shape or rows.from_row
    stamp = git.tags_stamp()  # before reading the refs: a change after it shows as another
    path = index_path(git, view, model)
    stored = _load(path, view, model, rows.columns)
    if stored is not None and stamp is not None and stored.stamp == stamp.value:
        revived = _revive(stored.rows, revive)
        if revived is not None:
            return revived
    digest, refs = read()
    settled = stamp.value if stamp is not None and stamp.settled else None
    if stored is not None and stored.digest == digest:
        revived = _revive(stored.rows, revive)
        if revived is not None:
            if settled is not None:
                header = _header(view, model, rows.columns, settled, digest, stored.payload)
                _save(path, header, stored.payload)
            return revived
    items = build(refs)
    built = [rows.to_row(item) for item in items]
    answer = items if shape is None else [shape(row) for row in built]
    if reads_more and (settled is None or git.tags_stamp() != stamp):
        return answer  # a tag may have changed between the listing and build's own reads
    try:
        payload = json.dumps(built, ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError):
        return answer  # a value JSON would not give back as it is: no index
    if json.loads(payload) == built:  # what a later read revives is what was built
        _save(path, _header(view, model, rows.columns, settled, digest, payload), payload)
    return answer


def _digest(refs: Iterable[tuple[str, str]]) -> str:
    text = "".join(f"{name}\0{obj}\n" for name, obj in refs)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def _header(
    view: str, model: str, columns: tuple[str, ...], stamp: str | None, digest: str, payload: bytes
) -> bytes:
    fields = {
        "format": FORMAT,
        "mvctl": __version__,
        "view": view,
        "model": model,
        "columns": list(columns),
        "stamp": stamp,
        "digest": digest,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return json.dumps(fields).encode() + b"\n"


def _load(path: Path, view: str, model: str, columns: tuple[str, ...]) -> _Stored | None:
    """The index at ``path`` when it is whole and is this view of this model."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head, sep, payload = data.partition(b"\n")
    try:
        header = json.loads(head)
        if not (
            sep
            and isinstance(header, dict)
            and header.get("format") == FORMAT
            and header.get("mvctl") == __version__
            and header.get("view") == view
            and header.get("model") == model
            and header.get("columns") == list(columns)
            and isinstance(header.get("digest"), str)
            and isinstance(header.get("stamp"), str | None)
            and header.get("sha256") == hashlib.sha256(payload).hexdigest()
        ):
            return None
        rows = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return None
    return _Stored(header["stamp"], header["digest"], payload, rows)


def _revive(rows: list[Row], from_row: Callable[[Row], S]) -> list[S] | None:
    try:
        return [from_row(row) for row in rows]
    except (TypeError, KeyError, ValueError):
        return None  # not rows of this mvctl: rebuild


def _save(path: Path, header: bytes, payload: bytes) -> None:
    """Write the index whole or not at all; failing to write it is no error of the command."""
    import tempfile  # only when writing: a read that hits the index never needs it

    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(header)
            out.write(payload)
        Path(tmp).replace(path)
        tmp = None
    except OSError:
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink()
