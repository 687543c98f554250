"""DVC adapter: the only module that imports DVC. Analytics are off for every call."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl.common import yamlio
from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.formats.names import redacted_url

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


# --- the serving host: everything read from a registry commit is untrusted ---------------

OBJECT_ID_RE = re.compile(r"[0-9a-f]{32}(\.dir)?")
_REMOTE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Schemes of DVC's remote types; anything else in a committed config is refused.
_SCHEMES = frozenset(
    "s3 gs gcs azure az ssh hdfs webhdfs http https webdav webdavs oss gdrive file".split()  # noqa: SIM905
)
_CHUNK = 1 << 20
_LISTING_CAP = 64 << 20  # a .dir listing of a million files is ~100 MB: refuse the absurd
HOST_REMOTE = "mvctl-host"


def check_object_id(value: object, what: str) -> str:
    """A DVC object id (md5, '.dir' for a directory) and nothing else: DVC joins it into a
    path, so an id with a '/' would name any file on the host."""
    if not isinstance(value, str) or not OBJECT_ID_RE.fullmatch(value):
        raise OperationalError(f"{what} has an invalid object id {_shown(value)}")
    return value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 50 else text[:47] + "..."


def check_remote_url(url: str, what: str) -> str:
    """A remote URL a host may use: a known DVC scheme or an absolute local path, with
    nothing that could end a config line or start an option."""
    if (
        not url
        or len(url) > 2048
        or url.startswith("-")
        or any(c in url for c in "\n\r\0\"'#;[]")
        or url != url.strip()
    ):
        raise OperationalError(f"{what} has an invalid DVC remote URL {_shown_url(url)}")
    scheme, sep, rest = url.partition("://")
    if sep:
        if scheme.lower() not in _SCHEMES or not rest:
            raise OperationalError(f"{what} has a DVC remote of unknown kind {_shown_url(url)}")
        return url
    if not url.startswith("/") or ".." in url.split("/"):
        raise OperationalError(
            f"{what} has a DVC remote that is not an absolute path or URL: {_shown_url(url)}",
            hint="on the host, name the store with --dvc-remote",
        )
    return url


def _shown_url(url: str) -> str:
    return _shown(redacted_url(url))


def check_dvc_remote(remote: str) -> str:
    """``--dvc-remote``: a remote name of the host's DVC config, or a URL (or absolute
    path) that replaces the registry's. Usage input: a bad one is a UsageError."""
    if "://" in remote or remote.startswith("/"):
        try:
            return check_remote_url(remote, "--dvc-remote")
        except OperationalError as exc:
            raise UsageError(exc.message, hint="give a DVC remote URL or absolute path") from None
    if not _REMOTE_NAME_RE.fullmatch(remote):
        raise UsageError(
            f"invalid --dvc-remote {_shown_url(remote)}",
            hint="give a remote name of your DVC config, or a URL",
        )
    return remote


def remote_from_config(text: str, what: str) -> tuple[str, str]:
    """The default remote (name, url) of a registry's committed ``.dvc/config``. Nothing
    else in it applies on a host (cache and site-cache dirs, remote options, core flags)."""
    from configobj import ConfigObj, ConfigObjError  # type: ignore[import-untyped]

    try:
        conf = ConfigObj(text.splitlines(), interpolation=False, list_values=False)
    except (ConfigObjError, ValueError, TypeError) as exc:
        raise OperationalError(f"{what} is not a valid DVC config: {_one_line(exc)}") from None
    core = conf.get("core")
    name = core.get("remote") if isinstance(core, dict) else None
    if not isinstance(name, str) or not _REMOTE_NAME_RE.fullmatch(name):
        raise OperationalError(
            f"{what} names no valid default DVC remote", hint="pass --dvc-remote NAME|URL"
        )
    for section, values in conf.items():
        match = re.fullmatch(r'\s*remote\s*"(.*)"\s*', str(section))
        if match and match[1] == name and isinstance(values, dict):
            url = values.get("url")
            if isinstance(url, str):
                return name, check_remote_url(url, what)
    raise OperationalError(f"{what} has no URL for its default DVC remote {name!r}")


class SizeExceeded(OperationalError):
    """The remote sent more bytes than the manifest declares."""


class RemoteStore:
    """A registry's DVC remote, opened for reading objects by (validated) id."""

    def __init__(self, odb: Any, progress: Callable[[int], None] | None) -> None:
        self._odb = odb
        self._progress = progress

    def fetch(self, md5: str, dest: Path, max_size: int) -> None:
        """Stream object ``md5`` into the new file ``dest``; fail once it exceeds
        ``max_size`` bytes (an endless or oversized object never fills the disk)."""
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
                    if self._progress:
                        self._progress(len(chunk))

    def listing(self, md5: str, scratch: Path) -> list[tuple[str, str]]:
        """(relpath, md5) of each file of directory object ``md5``, validated: relative
        paths with no '..', each once, and object ids only."""
        if not md5.endswith(".dir"):
            raise OperationalError(f"object {md5} is not a directory listing")
        self.fetch(md5, scratch, _LISTING_CAP)
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
            if not isinstance(relpath, str) or not _safe_relpath(relpath):
                raise OperationalError(f"directory listing {md5} names an unsafe path")
            found.append((relpath, check_object_id(oid, f"directory listing {md5}")))
        if len({p for p, _ in found}) != len(found) or any(o.endswith(".dir") for _, o in found):
            raise OperationalError(f"DVC's listing of directory {md5} is corrupt")
        return found


def _safe_relpath(path: str) -> bool:
    parts = path.split("/")
    return (
        0 < len(path) <= 4096
        and not any(c in path for c in "\0\\")
        and all(p not in ("", ".", "..") for p in parts)
    )


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
    from configobj import ConfigObj

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


def _declared_in(path: Path, name: str) -> Any:
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
