"""A serving host's side of DVC: open a registry's remote with no repo and no cache, and
read objects by validated id, never more bytes than the manifest declares."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mvctl._adapters.dvc import _converted, _quiet_logging, disable_analytics
from mvctl._adapters.dvcfiles import (
    check_dvc_remote,
    check_object_id,
    safe_relpath,
)
from mvctl.errors import OperationalError

_CHUNK = 1 << 20
_LISTING_CAP = 64 << 20  # a .dir listing of a million files is ~100 MB: refuse the absurd
HOST_REMOTE = "mvctl-host"


class SizeExceeded(OperationalError):
    """The remote sent more bytes than the manifest declares."""


class RemoteStore:
    """A registry's DVC remote, opened for reading objects by (validated) id."""

    def __init__(self, odb: Any, progress: Callable[[int], None] | None) -> None:
        self._odb = odb
        self._progress = progress

    def fetch(self, md5: str, dest: Path, max_size: int, *, counted: bool = True) -> None:
        """Stream object ``md5`` into the new file ``dest``; fail once it exceeds
        ``max_size`` bytes (an endless or oversized object never fills the disk). Its bytes
        advance the progress unless not ``counted`` (a directory's listing: not weights)."""
        check_object_id(md5, "a download")
        source = self._odb.oid_to_path(md5)
        with _converted(f"download object {md5}"):
            if not self._odb.fs.exists(source):
                raise OperationalError(
                    f"object {md5} is missing from the DVC remote",
                    hint="was the version's data pushed? ('dvc push' in the registry repo)",
                )
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(dest, flags, 0o644)
            written = 0
            with os.fdopen(fd, "wb") as out, self._odb.fs.open(source, mode="rb") as src:
                while chunk := src.read(min(_CHUNK, max_size - written + 1)):
                    written += len(chunk)
                    if written > max_size:
                        raise SizeExceeded(
                            f"object {md5} in the DVC remote is larger than the "
                            f"{max_size} bytes the manifest declares",
                            hint="the DVC remote holds a wrong object; "
                            "the host keeps serving what it had",
                        )
                    out.write(chunk)
                    if self._progress and counted:
                        self._progress(len(chunk))

    def listing(self, md5: str, scratch: Path) -> list[tuple[str, str]]:
        """(relpath, md5) of each file of directory object ``md5``, validated: relative
        paths with no '..', each once, and object ids only."""
        if not md5.endswith(".dir"):
            raise OperationalError(f"object {md5} is not a directory listing")
        self.fetch(md5, scratch, _LISTING_CAP, counted=False)
        try:
            entries = json.loads(scratch.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise OperationalError(f"DVC's listing of directory {md5} is corrupt") from exc
        finally:
            scratch.unlink(missing_ok=True)
        if not isinstance(entries, list):
            raise OperationalError(f"DVC's listing of directory {md5} is corrupt")
        found: list[tuple[str, str]] = []
        for entry in entries:
            relpath = entry.get("relpath") if isinstance(entry, dict) else None
            oid = entry.get("md5") if isinstance(entry, dict) else None
            if not isinstance(relpath, str) or not safe_relpath(relpath):
                raise OperationalError(f"directory listing {md5} names an unsafe path")
            found.append((relpath, check_object_id(oid, f"directory listing {md5}")))
        if len({p for p, _ in found}) != len(found) or any(o.endswith(".dir") for _, o in found):
            raise OperationalError(f"DVC's listing of directory {md5} is corrupt")
        return found


@contextmanager
def remote_store(
    workdir: Path,
    registry_remote: tuple[str, str] | None,
    remote: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[RemoteStore]:
    """Open a registry's DVC remote with no git repo and no DVC cache. ``registry_remote``
    is the (name, url) taken from the registry's committed config, validated; of it only the
    URL is used. ``remote`` names a remote of the host's config, or is a URL that replaces
    the registry's. The host's own options (credentials) for a remote apply only with the
    URL the host configured for it. Every file DVC writes (its site cache, temp files,
    state) stays inside ``workdir``."""
    disable_analytics()
    from configobj import ConfigObj  # type: ignore[import-untyped]

    url = registry_remote[1] if registry_remote else None
    name: str | None = None
    own = False
    if remote is not None:
        remote = check_dvc_remote(remote)
        url, name = (remote, None) if "://" in remote or remote.startswith("/") else (None, remote)
    if url is not None:
        name, own = _remote_for(url)
    dvc_dir = workdir / ".dvc"
    dvc_dir.mkdir(parents=True, exist_ok=True)
    site = workdir / "site-cache"
    config = ConfigObj(interpolation=False, list_values=False)
    config["core"] = {"no_scm": "true", "site_cache_dir": os.fspath(site)}
    if name:
        config["core"]["remote"] = name
    if url is not None and not own:
        config[f'remote "{name}"'] = {"url": url}
    with (dvc_dir / "config").open("wb") as handle:
        config.write(handle)
    _quiet_logging()
    # The environment outranks any config: a host's site cache lives in workdir too.
    saved = {k: os.environ.get(k) for k in ("DVC_SITE_CACHE_DIR",)}
    os.environ["DVC_SITE_CACHE_DIR"] = os.fspath(site)
    try:
        from dvc.repo import Repo

        with _converted("open its remote"):
            repo = Repo(os.fspath(workdir))
        try:
            with _converted("open its remote"):
                odb = repo.cloud.get_remote_odb(name or None, "mvctl pull")
            yield RemoteStore(odb, progress)
        finally:
            repo.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _remote_for(url: str) -> tuple[str, bool]:
    """The remote to open ``url`` under: the host's own remote for that very URL (its
    credentials and options apply), else a name the host's config does not use, so that no
    option the host set for a remote (a user, a password) ever travels to a URL the host
    did not choose: a registry commit names its remote, and could name the host's."""
    from dvc.config import Config

    with _converted("read the host's DVC config"):
        remotes: dict[str, dict[str, Any]] = dict(Config(dvc_dir=None).get("remote", {}))
    for name, options in sorted(remotes.items()):
        if str(options.get("url", "")).rstrip("/") == url.rstrip("/"):
            return name, True
    name = HOST_REMOTE
    while name in remotes:
        name += "-x"
    return name, False
