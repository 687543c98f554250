"""Content hashes for weights: sha256 per file and a tree hash for directories."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mvctl.errors import OperationalError

Progress = Callable[[int], None]
"""Called with the number of bytes just hashed."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileHash:
    path: str  # relative to the hashed root (the file's own name for a single file)
    sha256: str
    size: int


def sha256_file(path: Path, progress: Progress | None = None) -> FileHash:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
    except OSError as exc:
        raise OperationalError(f"cannot read {path}: {exc.strerror}") from exc
    return FileHash(path.name, digest.hexdigest(), size)


def files_under(root: Path) -> list[Path]:
    """Regular files below ``root`` in a stable order; links out of the tree are refused."""
    resolved_root = root.resolve()
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(resolved_root):
            raise OperationalError(f"{path} links outside {root}", hint="copy the file instead")
        if path.is_file():
            found.append(path)
    return found


def sha256_tree(root: Path, progress: Progress | None = None) -> tuple[list[FileHash], str]:
    """Per-file hashes of a directory and a tree hash over (relative path, sha256) pairs."""
    entries = []
    for path in files_under(root):
        one = sha256_file(path, progress)
        entries.append(FileHash(path.relative_to(root).as_posix(), one.sha256, one.size))
    tree = hashlib.sha256()
    for entry in entries:
        tree.update(f"{entry.path}\0{entry.sha256}\n".encode())
    return entries, tree.hexdigest()


def total_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in files_under(path))
