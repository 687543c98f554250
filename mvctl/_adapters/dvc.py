"""DVC adapter: the only module that imports DVC. Analytics are off for every call."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl._adapters import dvcfiles
from mvctl._adapters.dvcfiles import one_line
from mvctl.common.progress import ProgressSink
from mvctl.common.yamlio import read_text
from mvctl.errors import MvctlError, OperationalError

if TYPE_CHECKING:
    from dvc.repo import Repo

DEFAULT_REMOTE = "mvctl"


@dataclass(frozen=True)
class ImportSource:
    """Where ``dvc import`` took a path from."""

    repo: str
    rev: str | None
    rev_lock: str | None
    path: str


@dataclass(frozen=True)
class TrackedPath:
    """What DVC records about one tracked path (file or directory)."""

    path: str  # repo-relative, POSIX
    md5: str  # DVC's content hash; directories end in '.dir'
    size: int | None
    nfiles: int | None
    dvcfile: str  # the .dvc or dvc.yaml file that records it
    source: ImportSource | None

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


def disable_analytics() -> None:
    """DVC must never phone home from mvctl, for in-process calls and child processes alike."""
    os.environ["DVC_NO_ANALYTICS"] = "1"
    os.environ.setdefault("DVC_STUDIO_OFFLINE", "1")


def _quiet_logging() -> None:
    # DVC installs stdout handlers at import and chats at INFO ("Initialized DVC
    # repository."); mvctl reports outcomes itself, so only DVC's warnings get through.
    logging.getLogger("dvc").setLevel(logging.WARNING)


@contextmanager
def _converted(action: str) -> Iterator[None]:
    from dvc.exceptions import DvcException

    try:
        yield
    except MvctlError:
        raise
    except DvcException as exc:
        raise OperationalError(f"DVC failed to {action}: {one_line(exc)}") from exc
    except OSError as exc:
        raise OperationalError(f"DVC failed to {action}: {exc}") from exc
    except Exception as exc:  # the boundary: DVC's dependencies raise their own errors
        # (sqlite3 on a full disk, fsspec and cloud SDK errors): one line, no traceback.
        raise OperationalError(
            f"DVC failed to {action}: {type(exc).__name__}: {one_line(exc)}"
        ) from exc


def is_initialised(root: Path) -> bool:
    return (root / ".dvc").is_dir()


def init(root: Path) -> list[str]:
    """Run ``dvc init``; return the files it created, repo-relative, for the caller to commit."""
    disable_analytics()
    from dvc.repo import Repo

    _quiet_logging()
    with _converted("initialise"):
        Repo.init(os.fspath(root)).close()
    created = [".dvc/config", ".dvc/.gitignore", ".dvcignore"]
    return [p for p in created if (root / p).exists()]


def default_remote(root: Path) -> tuple[str, str] | None:
    """The (name, url) of the repo's default DVC remote, from every config level."""
    disable_analytics()
    from dvc.config import Config

    with _converted("read its config"):
        config = Config(dvc_dir=os.fspath(root / ".dvc"))
    name = config.get("core", {}).get("remote")
    remotes: dict[str, dict[str, Any]] = config.get("remote", {})
    if name and name in remotes:
        return name, str(remotes[name].get("url", ""))
    return None


def set_default_remote(root: Path, url: str, name: str = DEFAULT_REMOTE) -> None:
    """Add ``name`` -> ``url`` to the repo's committed config and make it the default."""
    disable_analytics()
    from dvc.config import Config

    with _converted("configure the remote"):
        config = Config(dvc_dir=os.fspath(root / ".dvc"))
        with config.edit("repo") as conf:
            conf["remote"][name] = {"url": url}
            conf["core"]["remote"] = name


class DvcProject:
    """An open DVC repo; use ``with open_project(root) as project``."""

    def __init__(self, repo: Repo, root: Path) -> None:
        self._repo = repo
        self.root = root

    def add(self, paths: Sequence[str]) -> None:
        if not paths:
            return
        with _converted(f"track {', '.join(paths)}"):
            self._repo.scm_context.quiet = True
            self._repo.add([os.fspath(self.root / p) for p in paths])

    def may_track(self, path: str) -> bool:
        """Cheap: could DVC track ``path`` already (a .dvc file, or a locked pipeline)?
        False spares building DVC's index for the common case of new artifacts."""
        return (self.root / f"{path}.dvc").exists() or (self.root / "dvc.lock").exists()

    def tracked(self, path: str) -> TrackedPath | None:
        """What DVC records for exactly ``path``, or None when DVC does not track it."""
        from dvc.exceptions import OutputNotFoundError

        with _converted(f"read what it tracks for {path}"):
            try:
                outs = self._repo.find_outs_by_path(os.fspath(self.root / path))
            except OutputNotFoundError:
                return None
        out = outs[0]
        hash_info = out.hash_info
        if not hash_info or not hash_info.value:
            raise OperationalError(
                f"DVC has no recorded hash for {path}",
                hint="run 'dvc repro' or 'dvc commit' for the stage that produces it",
            )
        stage = out.stage
        source = None
        if stage.is_import:
            dep = stage.deps[0]
            def_repo = getattr(dep, "def_repo", {}) or {}
            source = ImportSource(
                repo=str(def_repo.get("url", "")),
                rev=def_repo.get("rev"),
                rev_lock=def_repo.get("rev_lock"),
                path=str(getattr(dep, "def_path", "")),
            )
        return TrackedPath(
            path=path,
            md5=str(hash_info.value),
            size=out.meta.size if out.meta else None,
            nfiles=out.meta.nfiles if out.meta else None,
            dvcfile=Path(stage.path).resolve().relative_to(self.root).as_posix(),
            source=source,
        )

    def is_import(self, path: str) -> bool:
        info = self.tracked(path)
        return info is not None and info.source is not None

    def dir_listing(self, md5: str) -> list[tuple[str, str]]:
        """(relpath, md5) of each file of a tracked directory, from DVC's ``.dir`` object:
        the local cache when it has it, else the default remote (the listing only, never
        the files)."""
        cache_path = Path(self._repo.cache.local.oid_to_path(md5))
        try:
            raw = cache_path.read_text(encoding="utf-8")
        except OSError:
            raw = self._remote_object(md5)
        try:
            entries = json.loads(raw)
            return sorted((str(e["relpath"]), str(e["md5"])) for e in entries)
        except (ValueError, KeyError, TypeError) as exc:
            raise OperationalError(f"DVC's listing of directory {md5} is corrupt") from exc

    def _remote_object(self, md5: str) -> str:
        with _converted(f"read directory listing {md5} from the remote"):
            odb = self._repo.cloud.get_remote_odb(None, "mvctl diff")
            try:
                with odb.fs.open(odb.oid_to_path(md5), mode="r", encoding="utf-8") as handle:
                    return str(handle.read())
            except FileNotFoundError as exc:
                raise OperationalError(
                    f"DVC's listing of directory {md5} is neither cached nor in the remote",
                    hint="push the registry's artifacts with 'dvc push'",
                ) from exc

    def push(
        self,
        paths: Sequence[str],
        remote: str | None = None,
        progress: ProgressSink | None = None,
        label: str = "uploading",
    ) -> int:
        """``dvc push`` of ``paths``. With ``progress``, one task of the paths' bytes: their
        objects are first copied to the remote with a byte count (DVC's own bars count
        files), then DVC's push finds them there and does the rest (a directory's listing,
        a version-aware remote's metadata); what was there already or was linked, not
        copied, completes the task at the end."""
        if not paths:
            return 0
        with _converted("push to its remote"):
            uploaded = None
            if progress is not None:
                uploaded = _Uploaded(progress.task, label, [self.tracked(p) for p in paths])
                if uploaded.total and self._plain_remote(remote):
                    uploaded.copy(self._repo, remote, self._object_ids(uploaded.objects))
            pushed = self._repo.push(
                targets=[os.fspath(self.root / p) for p in paths], remote=remote
            )
            if uploaded is not None:
                uploaded.finish()
        return int(pushed or 0)

    def _object_ids(self, tracked: list[TrackedPath]) -> set[str]:
        """Every object of ``tracked``: a directory's listing with each of its files (DVC's
        transfer sends a listing only once its files are there)."""
        ids = {t.md5 for t in tracked}
        for t in tracked:
            if t.is_dir:
                ids.update(oid for _, oid in self.dir_listing(t.md5))
        return ids

    def _plain_remote(self, remote: str | None) -> bool:
        """A remote DVC pushes objects to by id: one configured (else DVC's push says so,
        in its words), not a worktree or version-aware one."""
        config = self._repo.config
        name = remote or config.get("core", {}).get("remote")
        options: dict[str, Any] = config.get("remote", {}).get(name) or {} if name else {}
        return bool(options) and not (options.get("worktree") or options.get("version_aware"))

    def _declared(self, name: str) -> Any:
        path = self.root / "dvc.yaml"
        if not path.is_file():
            return None
        return dvcfiles.artifacts(read_text(path), str(path)).get(name)

    def set_artifact(
        self, name: str, path: str, *, description: str | None, labels: Sequence[str]
    ) -> None:
        """Declare ``name`` under ``artifacts:`` in the top-level dvc.yaml (comments kept)."""
        from dvc.annotations import Artifact

        fields: dict[str, Any] = {"path": path, "type": "model"}
        if description:
            fields["desc"] = description
        if labels:
            fields["labels"] = list(labels)
        if self._declared(name) == fields:
            return  # unchanged: spare the comment-preserving rewrite of dvc.yaml
        with _converted(f"declare artifact {name} in dvc.yaml"):
            self._repo.artifacts.add(
                name, Artifact(**fields), dvcfile=os.fspath(self.root / "dvc.yaml")
            )


class _Uploaded:
    """The byte count of one push: the bytes DVC's transfer reports per object copied,
    then (:meth:`finish`) the rest: objects the remote had already, or linked."""

    def __init__(
        self,
        task: Callable[[str, int | None], Callable[[int], None]],
        label: str,
        tracked: list[TrackedPath | None],
    ) -> None:
        self.objects = [t for t in tracked if t is not None]
        self.total = sum(t.size or 0 for t in self.objects)
        self._advance = task(label, self.total)
        self._done = 0
        self._lock = threading.Lock()  # DVC copies on several threads

    def add(self, amount: int) -> None:
        with self._lock:
            amount = min(amount, self.total - self._done)  # never past the total
            self._done += amount
        if amount > 0:
            self._advance(amount)

    def copy(self, repo: Repo, remote: str | None, ids: set[str]) -> None:
        from dvc_data.hashfile.db import get_index
        from dvc_data.hashfile.hash_info import HashInfo

        # Only the count depends on this copy: whatever fails here (an object missing
        # from the cache, an import's data), DVC's push tries again and reports.
        with contextlib.suppress(Exception):
            odb = repo.cloud.get_remote_odb(remote, "push")
            cache = repo.cache.local
            repo.cloud.transfer(
                cache,
                odb,
                {HashInfo("md5", oid) for oid in ids},
                dest_index=get_index(odb),
                cache_odb=cache,
                callback=_byte_callback(self.add),
            )

    def finish(self) -> None:
        self.add(self.total - self._done)


def _byte_callback(add: Callable[[int], None]) -> Any:
    """An fsspec callback for DVC's transfer: the transfer counts files on it (ignored);
    each object copied reports on a branch of it, and its bytes go to ``add``: as they are
    copied where the filesystem reports them (a cloud upload, a local copy over 1 GB),
    and whatever the copy did not report once it has succeeded."""
    from fsspec.callbacks import Callback  # type: ignore[import-untyped]

    class Bytes(Callback):  # type: ignore[misc]
        def __init__(self, source: str) -> None:
            super().__init__()
            self.source = source
            self.reported = 0

        def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
            delta, self.reported = self.value - self.reported, self.value
            add(delta)

        def __exit__(self, exc_type: object, *rest: object) -> None:
            if exc_type is None:  # else the end of the push completes the count
                with contextlib.suppress(OSError):
                    add(Path(self.source).stat().st_size - self.reported)

    class Files(Callback):  # type: ignore[misc]
        def branched(self, path_1: Any, path_2: Any, **kwargs: Any) -> Callback:
            if str(path_1).endswith(".dir"):  # a directory's listing: not the artifact's
                return Callback()
            return Bytes(str(path_1))

    return Files()


@contextmanager
def open_project(root: Path) -> Iterator[DvcProject]:
    disable_analytics()
    from dvc.repo import Repo

    _quiet_logging()
    with _converted("open the repository"):
        repo = Repo(os.fspath(root))
    try:
        yield DvcProject(repo, root)
    finally:
        repo.close()
