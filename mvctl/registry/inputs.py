"""What ``register`` reads from the work tree: every path validated before DVC sees it.

A path must lie inside the work tree, outside git's, DVC's and mvctl's own directories, and
name a regular file or a directory of regular files: DVC's hashing opens whatever it is
given and would block forever on a FIFO, a socket or a device.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from mvctl.analysis import profile
from mvctl.errors import OperationalError, UsageError
from mvctl.formats import config, values
from mvctl.formats.names import shown
from mvctl.registry import environment


class InputRequest(Protocol):
    """The fields of a register request that name its inputs (RegisterRequest has them).
    Paths on the command line are relative to ``cwd``; those from mvctl.yaml to the root."""

    @property
    def model(self) -> str: ...
    @property
    def cwd(self) -> Path: ...
    @property
    def weights(self) -> str | None: ...
    @property
    def data(self) -> tuple[str, ...]: ...
    @property
    def metrics_file(self) -> str | None: ...
    @property
    def metrics(self) -> tuple[str, ...]: ...
    @property
    def params_file(self) -> str | None: ...
    @property
    def env_lock(self) -> str | None: ...


@dataclass(frozen=True)
class Inputs:
    weights: str
    data: tuple[str, ...]
    metrics: dict[str, object]
    params: dict[str, object]
    env: environment.Environment
    metrics_file: str | None


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def repo_path(root: Path, base: Path, given: str, what: str) -> str:
    """Validate a user path: inside the work tree, outside .git/.dvc/registry; return it
    repo-relative. Control characters are refused: DVC writes these paths into .gitignore
    files, one per line, where a newline would add a rule of its own."""
    if not given or any(ord(c) < 32 or ord(c) == 127 for c in given) or len(given) > 4096:
        raise UsageError(f"empty or invalid {what} path {shown(given)}")
    try:
        full = (base / given).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long for the OS
        raise UsageError(f"{what} path {shown(given)} cannot be resolved: {exc}") from None
    if not full.is_relative_to(root):
        raise UsageError(f"{what} path {shown(given)} is outside the repository {root}")
    rel = PurePosixPath(full.relative_to(root).as_posix())
    if not rel.parts or rel.parts[0] in (".git", ".dvc", ".mvctl", "registry"):
        raise UsageError(f"{what} path {shown(given)} is not a place for artifacts")
    return str(rel)


def check_kind(root: Path, rel: str, what: str, *, directory: bool = False) -> None:
    """Refuse ``rel`` unless it is a regular file (or, when allowed, a directory whose every
    entry is one); an absent path is left to the caller."""
    try:
        mode = (root / rel).stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"{what} path {shown(rel)} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(mode) and directory:
        _check_tree(root, rel, what)
    elif not stat.S_ISREG(mode):
        raise _not_a_file(rel, what, mode, directory)


def _check_tree(root: Path, rel: str, what: str) -> None:
    """Every entry under directory ``rel`` (through symlinked directories, once each)."""
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(root / rel, followlinks=True):
        info = Path(top).stat()
        if (info.st_dev, info.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((info.st_dev, info.st_ino))
        for name in files:
            path = Path(top) / name
            try:
                mode = path.stat().st_mode
            except OSError:
                continue  # a dangling symlink: DVC reports it, it cannot block
            if not stat.S_ISREG(mode):
                inner = path.relative_to(root).as_posix()
                raise _not_a_file(inner, f"{what} directory {shown(rel)}: entry", mode, False)


def _not_a_file(rel: str, what: str, mode: int, directory: bool) -> UsageError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    wanted = "a regular file or a directory" if directory else "a regular file"
    return UsageError(
        f"{what} {shown(rel)} is {kind}, not {wanted}",
        hint="give the path of the file itself; mvctl hashes and uploads only files",
    )


def read_inputs(root: Path, req: InputRequest, cfg: config.ModelConfig) -> Inputs:
    def pick(cli_value: str | None, cfg_value: str | None, what: str) -> str | None:
        found = None
        if cli_value:
            found = repo_path(root, req.cwd, cli_value, what)
        elif cfg_value:
            found = repo_path(root, root, cfg_value, what)
        if found is not None:
            check_kind(root, found, what)
        return found

    weights = _weights(root, req, cfg)
    data = _data(root, req, cfg)
    if weights in data or len(set(data)) != len(data):
        raise UsageError("weights and data paths must all be different")
    metrics: dict[str, object] = {}
    metrics_file = pick(req.metrics_file, cfg.metrics, "metrics")
    if metrics_file:
        metrics = values.read_metrics(root / metrics_file)
    metrics = values.merge(metrics, values.parse_metric_options(req.metrics))
    params_file = pick(req.params_file, cfg.params, "params")
    params = values.read_params(root / params_file) if params_file else {}
    lock = pick(req.env_lock, cfg.env_lock, "env lock")
    if lock and not (root / lock).is_file():
        raise OperationalError(f"lockfile {lock} does not exist")
    env = environment.capture(root / lock if lock else None, lock)
    profile_source(root, cfg, data)  # a bad profile: path is refused before any upload
    return Inputs(weights, data, metrics, params, env, metrics_file)


def _weights(root: Path, req: InputRequest, cfg: config.ModelConfig) -> str:
    if req.weights:
        weights = repo_path(root, req.cwd, req.weights, "weights")
    elif cfg.weights:
        weights = repo_path(root, root, cfg.weights, "weights")
    else:
        raise UsageError(
            f"no weights for {req.model}",
            hint=f"pass --weights PATH or set models.{req.model}.weights in mvctl.yaml",
        )
    if not (root / weights).exists():
        raise OperationalError(f"weights {weights} do not exist", hint="train the model first")
    check_kind(root, weights, "weights", directory=True)
    return weights


def _data(root: Path, req: InputRequest, cfg: config.ModelConfig) -> tuple[str, ...]:
    if req.data:
        data = tuple(repo_path(root, req.cwd, d, "data") for d in req.data)
    else:
        data = tuple(repo_path(root, root, d, "data") for d in cfg.data)
    for path in data:
        if not (root / path).exists() and not (root / f"{path}.dvc").exists():
            raise OperationalError(f"data path {path} does not exist")
        check_kind(root, path, "data", directory=True)
    return data


def profile_source(root: Path, cfg: config.ModelConfig, data: tuple[str, ...]) -> str | None:
    """The file to profile: the model's ``profile:`` path (validated like every other repo
    path: its profile is committed), else its first CSV/Parquet data file; None without."""
    configured = cfg.raw.get("profile")
    if configured:
        path = repo_path(root, root, str(configured), "profile")
        if not path.lower().endswith(profile.TABULAR):
            raise UsageError(
                f"profile path {shown(path)} is neither CSV nor Parquet",
                hint="point profile: at a .csv or .parquet file in the repository",
            )
        check_kind(root, path, "profile")
        if not (root / path).is_file():
            raise OperationalError(f"profile source {path} does not exist")
        return path
    return next(
        (p for p in data if p.lower().endswith(profile.TABULAR) and (root / p).is_file()), None
    )
