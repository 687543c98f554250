"""Nothing half-done: an undo log that returns files, HEAD and tags to how they were."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from mvctl._adapters.git import GitRepo


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary sibling and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, text.encode("utf-8"), ".mvctl-tmp")


def _replace(path: Path, content: bytes, suffix: str) -> None:
    """``content`` into ``path`` through a fsynced temporary sibling and one rename: the
    file is the old one or the new one, never a part (a full disk fails the write only)."""
    tmp = path.with_name(f".{path.name}{suffix}")
    try:
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _restore(path: Path, content: bytes | None) -> None:
    """Put ``path`` back as it was, touching it only if it changed, and atomically: a disk
    that is full makes the restore fail, never truncate a file (a user's edit included)."""
    if content is None:
        path.unlink(missing_ok=True)
        return
    try:
        if path.read_bytes() == content:
            return
    except OSError:
        pass  # gone or unreadable: write it back
    _replace(path, content, ".mvctl-undo")


class Undo:
    """Records what a write command changes and reverses it all on failure."""

    def __init__(self, git: GitRepo, head: str | None) -> None:
        self._git = git
        self._head = head
        self._files: dict[str, bytes | None] = {}
        self._created_dirs: list[Path] = []
        self._commit: str | None = None
        self._tags: list[tuple[str, str]] = []

    def snapshot(self, paths: Iterable[str]) -> None:
        """Remember ``paths`` (repo-relative) as they are now, including their absence."""
        for rel in paths:
            if rel in self._files:
                continue
            path = self._git.root / rel
            self._files[rel] = path.read_bytes() if path.is_file() else None
            missing = path.parent
            while not missing.exists() and missing != self._git.root:
                self._created_dirs.append(missing)
                missing = missing.parent

    def committed(self, commit: str) -> None:
        self._commit = commit

    def tagged(self, name: str, tag_object: str) -> None:
        self._tags.append((name, tag_object))

    def rollback(self) -> None:
        """Undo in reverse order; keep going past individual failures to undo the most."""
        for name, obj in reversed(self._tags):
            with contextlib.suppress(Exception):
                self._git.delete_tag(name, obj)
        if self._commit is not None and self._head is not None:
            with contextlib.suppress(Exception):
                self._git.move_head(self._head, self._commit)
        with contextlib.suppress(Exception):
            self._git.unstage(list(self._files), self._head)
        for rel, content in self._files.items():
            with contextlib.suppress(OSError):
                _restore(self._git.root / rel, content)
        for directory in self._created_dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()
