"""``mvctl init``: make a git repo an mvctl registry (DVC, mvctl.yaml, a default remote)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mvctl._adapters import dvc
from mvctl._adapters.git import GitRepo
from mvctl.errors import PolicyError, UsageError
from mvctl.formats import config
from mvctl.formats.names import redacted_url, secret_in_url, shown
from mvctl.registry.transaction import Undo, write_atomic

EMBEDDED_STORE = ".mvctl/storage"
_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class InitResult:
    root: Path
    dvc_initialised: bool
    config_written: bool
    remote: tuple[str, str]  # (name, url) of the default DVC remote
    remote_configured: bool
    commit: str | None
    dry_run: bool

    @property
    def changed(self) -> bool:
        return self.dvc_initialised or self.config_written or self.remote_configured


def storage_url(storage: str, cwd: Path) -> str:
    """A DVC remote URL from ``--storage``: any URL as given, or a local path made absolute.
    A URL carrying a credential is refused: it would be committed to .dvc/config."""
    if not storage or storage.startswith("-") or _CONTROL.search(storage):
        raise UsageError(
            f"invalid --storage {shown(redacted_url(storage))}",
            hint="give a path or a DVC remote URL",
        )
    secret = secret_in_url(storage)
    if secret is not None:
        raise UsageError(
            # The URL itself is not repeated: a token as the user name is not masked by
            # redacted_url, and the one who typed it knows which URL they gave.
            f"--storage carries {secret}, which would be committed to .dvc/config",
            hint="give the URL without it, then keep the secret out of git:"
            f" 'dvc remote modify --local {dvc.DEFAULT_REMOTE} password ...' (or"
            " access_key_id/secret_access_key), or the environment (AWS_SECRET_ACCESS_KEY...)",
        )
    if _URL_RE.match(storage):
        return storage
    return str((cwd / storage).expanduser().resolve())


def init(cwd: Path, storage: str | None = None, *, dry_run: bool = False) -> InitResult:
    git = GitRepo.open(cwd)
    root = git.root
    wanted = storage_url(storage, cwd) if storage is not None else None
    need_dvc = not dvc.is_initialised(root)
    need_config = not (root / config.CONFIG_FILE).exists()
    current = None if need_dvc else dvc.default_remote(root)
    if current is not None and wanted is not None and current[1] != wanted:
        raise PolicyError(
            f"DVC remote {current[0]!r} already points at {redacted_url(current[1])}",
            hint=f"change it with 'dvc remote modify {current[0]} url ...' instead",
        )
    need_remote = current is None
    # An embedded store lives inside the work tree, ignored by git, at an absolute path so
    # that clones on this machine reach it too.
    url = wanted or str(root / EMBEDDED_STORE)
    # The remote as reported: an existing one may hold a password (set by hand, or in
    # .dvc/config.local), and what init reports gets printed.
    name, shown_url = current or (dvc.DEFAULT_REMOTE, url)
    remote = (name, redacted_url(shown_url))
    if dry_run or not (need_dvc or need_config or need_remote):
        return InitResult(root, need_dvc, need_config, remote, need_remote, None, dry_run)

    head = git.head_commit()
    touched = [".dvc/config", ".dvc/.gitignore", ".dvcignore", config.CONFIG_FILE, ".gitignore"]
    undo = Undo(git, head)
    undo.snapshot(touched)
    dvc_dir_existed = (root / ".dvc").exists()
    try:
        if need_dvc:
            dvc.init(root)
        if need_config:
            write_atomic(root / config.CONFIG_FILE, config.TEMPLATE)
        if need_remote:
            dvc.set_default_remote(root, url)
            if wanted is None:
                (root / EMBEDDED_STORE).mkdir(parents=True, exist_ok=True)
                _ignore(root, "/.mvctl/")
        commit = git.commit_paths(git.changed_paths(touched), "Initialise mvctl registry")
        undo.committed(commit)
    except BaseException:
        undo.rollback()
        if not dvc_dir_existed:
            _remove_tree(root / ".dvc")
        raise
    return InitResult(root, need_dvc, need_config, remote, need_remote, commit, dry_run)


def _ignore(root: Path, pattern: str) -> None:
    path = root / ".gitignore"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if pattern in text.splitlines():
        return
    if text and not text.endswith("\n"):
        text += "\n"
    write_atomic(path, f"{text}{pattern}\n")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
