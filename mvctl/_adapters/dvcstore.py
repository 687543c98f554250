"""The registry's DVC objects by id, for retention: where each is stored and how big it is
(the default DVC remote and the local cache), which the checked-out workspace uses, and
their removal. Everything goes through DVC's filesystem API (``odb.fs``), so a cloud remote
works like a directory one."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters.dvc import _converted, _quiet_logging, disable_analytics
from mvctl._adapters.dvcfiles import check_object_id
from mvctl.errors import OperationalError

_LISTING_CAP = 64 << 20


@dataclass(frozen=True)
class Stored:
    """Where an object is: its size in the remote and in the local cache (None: absent)."""

    remote: int | None
    cache: int | None

    @property
    def size(self) -> int:
        """The bytes removing it frees: the remote's copy, else the cache's."""
        if self.remote is not None:
            return self.remote
        return self.cache or 0

    @property
    def present(self) -> bool:
        return self.remote is not None or self.cache is not None


class ObjectStore:
    """The default DVC remote and the local cache of an open registry repo."""

    def __init__(self, repo: Any, remote_odb: Any) -> None:
        self._repo = repo
        self._remote = remote_odb
        self._cache = repo.cache.local

    def _size(self, odb: Any, oid: str) -> int | None:
        path = odb.oid_to_path(oid)
        with _converted(f"look up object {oid}"):
            try:
                return int(odb.fs.size(path))
            except FileNotFoundError:
                return None

    def stored(self, oid: str) -> Stored:
        check_object_id(oid, "a manifest")
        return Stored(self._size(self._remote, oid), self._size(self._cache, oid))

    def listing(self, oid: str) -> list[str] | None:
        """The object ids of a directory object's files (from the cache, else the remote),
        or None when neither has the listing any more."""
        check_object_id(oid, "a manifest")
        for odb in (self._cache, self._remote):
            path = odb.oid_to_path(oid)
            with _converted(f"read directory listing {oid}"):
                try:
                    if int(odb.fs.size(path)) > _LISTING_CAP:
                        raise OperationalError(f"directory listing {oid} is too large")
                    with odb.fs.open(path, mode="r", encoding="utf-8") as handle:
                        raw = handle.read()
                except FileNotFoundError:
                    continue
            try:
                return sorted(
                    check_object_id(e["md5"], f"directory listing {oid}") for e in json.loads(raw)
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise OperationalError(f"DVC's listing of directory {oid} is corrupt") from exc
        return None

    def workspace_objects(self) -> set[str]:
        """Every object the checked-out workspace's ``.dvc`` files and dvc.lock name, with
        directory listings expanded: what ``dvc checkout`` here would need."""
        found: set[str] = set()
        with _converted("read the workspace's DVC files"):
            outs = list(self._repo.index.outs)
        for out in outs:
            value = out.hash_info.value if out.hash_info else None
            if not value:
                continue
            oid = check_object_id(str(value), str(out))
            found.add(oid)
            if oid.endswith(".dir"):
                found.update(self.listing(oid) or ())
        return found

    def remove(self, oid: str) -> None:
        """Remove ``oid`` from the remote and the local cache (absent already: fine)."""
        check_object_id(oid, "a removal")
        for odb in (self._remote, self._cache):
            path = odb.oid_to_path(oid)
            with _converted(f"remove object {oid}"), suppress(FileNotFoundError):
                odb.fs.rm(path)


@contextmanager
def open_store(root: Path) -> Iterator[ObjectStore]:
    """The objects of the registry repo at ``root``: its default DVC remote and cache."""
    disable_analytics()
    from dvc.repo import Repo

    _quiet_logging()
    with _converted("open the repository"):
        repo = Repo(os.fspath(root))
    try:
        with _converted("open its default remote"):
            odb = repo.cloud.get_remote_odb(None, "mvctl gc")
        yield ObjectStore(repo, odb)
    finally:
        repo.close()
