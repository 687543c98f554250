"""DVC adapter: the only module that imports DVC. Analytics are off for every call."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        raise OperationalError(f"DVC failed to {action}: {_one_line(exc)}") from exc
    except OSError as exc:
        raise OperationalError(f"DVC failed to {action}: {exc}") from exc
    except Exception as exc:  # the boundary: DVC's dependencies raise their own errors
        # (sqlite3 on a full disk, fsspec and cloud SDK errors): one line, no traceback.
        raise OperationalError(
            f"DVC failed to {action}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text += f" ({' '.join(str(cause).split())})"
    return text or type(exc).__name__


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

    def push(self, paths: Sequence[str], remote: str | None = None) -> int:
        if not paths:
            return 0
        with _converted("push to its remote"):
            pushed = self._repo.push(
                targets=[os.fspath(self.root / p) for p in paths], remote=remote
            )
        return int(pushed or 0)

    def _declared(self, name: str) -> Any:
        return _declared_in(self.root / "dvc.yaml", name)

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


def download(
    workdir: Path,
    config_text: str,
    objects: Sequence[tuple[str, Path]],
    remote: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Download DVC objects (md5, destination) straight from a registry's DVC remote, with
    no git repo and no DVC cache: ``config_text`` is the registry's ``.dvc/config``; the
    host's own DVC config (credentials) applies on top; ``remote`` names a remote from any of
    them, or is a URL that replaces the default. A ``.dir`` object becomes a directory."""
    disable_analytics()
    from dvc.repo import Repo

    _quiet_logging()
    dvc_dir = workdir / ".dvc"
    dvc_dir.mkdir(parents=True, exist_ok=True)
    (dvc_dir / "config").write_text(config_text, encoding="utf-8")
    local = "[core]\n    no_scm = true\n"
    name = remote
    if remote and any(c in remote for c in "\n\r\"'[]"):
        raise OperationalError(f"invalid DVC remote {remote!r}")
    if remote and ("://" in remote or remote.startswith("/")):
        name = "mvctl-host"
        local += f"['remote \"{name}\"']\n    url = {remote}\n"
    (dvc_dir / "config.local").write_text(local, encoding="utf-8")
    with _converted("download artifacts from its remote"):
        repo = Repo(os.fspath(workdir))
        try:
            odb = repo.cloud.get_remote_odb(name, "mvctl pull")
            for md5, dest in objects:
                _download_object(odb, md5, dest, progress)
        finally:
            repo.close()


def _download_object(
    odb: Any, md5: str, dest: Path, progress: Callable[[int], None] | None
) -> None:
    def fetch(oid: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        source = odb.oid_to_path(oid)
        if not odb.fs.exists(source):
            raise OperationalError(
                f"object {oid} is missing from the DVC remote",
                hint="was the version's data pushed? ('dvc push' in the registry repo)",
            )
        odb.fs.get_file(source, os.fspath(target))
        if progress:
            progress(target.stat().st_size)

    if not md5.endswith(".dir"):
        fetch(md5, dest)
        return
    listing = dest.parent / f".{dest.name}.dir"
    fetch(md5, listing)
    try:
        entries = json.loads(listing.read_text(encoding="utf-8"))
    finally:
        listing.unlink(missing_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        relpath = Path(str(entry["relpath"]))
        if relpath.is_absolute() or ".." in relpath.parts:
            raise OperationalError(f"directory listing {md5} names an unsafe path {relpath}")
        fetch(str(entry["md5"]), dest / relpath)


def _declared_in(path: Path, name: str) -> Any:
    from mvctl import yamlio

    if not path.is_file():
        return None
    data = yamlio.load_file(path)
    artifacts = data.get("artifacts") if isinstance(data, dict) else None
    return artifacts.get(name) if isinstance(artifacts, dict) else None


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
