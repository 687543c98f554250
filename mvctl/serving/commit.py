"""Reading a registry commit on a host: everything in it is untrusted.

Object ids, sizes, paths and file kinds are validated before use; only the remote URL is
taken from the committed DVC config. A commit that fails is a RefusedCommit: the host
keeps serving what it had and skips that commit until the alias moves."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mvctl._adapters import dvcfiles
from mvctl._adapters.gitdir import BLOB_LIMIT, GitDir
from mvctl._adapters.gitrun import GitFailed
from mvctl.errors import OperationalError
from mvctl.formats import manifest as manifest_schema
from mvctl.formats import tags
from mvctl.formats.layout import manifest_path
from mvctl.formats.names import shown
from mvctl.serving.layout import TMP_PREFIX, VERSIONS
from mvctl.serving.request import PullRequest

_BLOB_CAP = BLOB_LIMIT  # a manifest, a .dvc file or a DVC config is a few kB
_NAME_MAX = 255  # bytes in one file name (ext4, xfs, apfs...)
_PATH_MAX = 4096  # bytes in a path the kernel takes
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


TAG_CAP = 64 << 10  # an alias tag is a few hundred bytes; a bigger one is no registry's


class RefusedCommit(OperationalError):
    """The alias names a commit (or is a tag) whose contents fail validation: refused
    until the alias moves. ``alias`` is the tag object refused (the commit for a
    lightweight tag, or when only the commit is known)."""

    def __init__(
        self, commit: str, message: str, hint: str | None = None, *, alias: str | None = None
    ) -> None:
        super().__init__(message, hint)
        self.commit = commit
        self.alias = alias or commit


def alias_weight(message: str | None) -> float | None:
    """A channel's share of traffic in percent, from its alias tag's message (a title, a
    blank line, then the body, as formats.tags writes it): None when the body names no
    weight. Anything else than a number in (0, 100] is refused: the tag is untrusted."""
    if message is None:
        raise OperationalError(f"the alias tag is larger than {TAG_CAP} bytes")
    _, body = tags.parse_message(message)
    weight = body.get("weight")
    if weight is None:
        if not body and "weight" in message.partition("\n")[2]:
            # A body that names a weight no parser takes (an integer of 5000 digits): not
            # "no weight", which would put a canary at whatever a server makes of none.
            raise OperationalError("the alias tag's body names a weight that cannot be read")
        return None
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or not 0 < weight <= 100
    ):
        huge = isinstance(weight, int) and not -(10**12) < weight < 10**12
        text = "(a huge integer)" if huge else shown(str(weight)[:40])  # never str() of it
        raise OperationalError(f"the alias tag's weight {text} is not a number in (0, 100]")
    return float(weight)


@dataclass(frozen=True)
class Weights:
    path: str  # in the registry
    name: str  # the file or directory under versions/NAME
    md5: str
    sha256: str
    size: int
    files: tuple[tuple[str, str, str, int], ...] = ()  # (path, md5, sha256, size) of a dir

    @property
    def is_dir(self) -> bool:
        return self.md5.endswith(".dir")


@dataclass(frozen=True)
class Plan:
    """What a commit asks the host to download, every field validated."""

    version: str
    manifest: str
    weights: Weights
    remote: tuple[str, str] | None  # (name, url) from the committed .dvc/config


def _check_relpath(value: object, what: str) -> str:
    """A normalised relative POSIX path: no '..', no '.', no empty or absolute parts."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 4096
        or any(c in value for c in "\0\\\n\r")
        or any(part in ("", ".", "..") for part in value.split("/"))
    ):
        raise OperationalError(f"{what} is not a safe relative path: {shown(str(value))}")
    if any(len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX for part in value.split("/")):
        raise OperationalError(f"{what} has a name longer than {_NAME_MAX} bytes")
    return value


def _check_fits(dest: Path, version: str, weights: Weights) -> None:
    """Every path the download creates fits in PATH_MAX: the longest is a file of the
    weights under ``versions/.tmp-VERSION-XXXXXXXX/payload/``."""
    base = len(os.fsencode(dest / VERSIONS)) + len(f"/{TMP_PREFIX}{version}-XXXXXXXX/payload/")
    longest = max((len(f[0].encode()) + 1 for f in weights.files), default=0)
    if base + len(weights.name.encode()) + longest >= _PATH_MAX:
        raise OperationalError(
            f"weights {shown(weights.path)} have paths too long for {dest} ({_PATH_MAX} bytes)"
        )


def _check_size(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise OperationalError(f"{what} has no valid size (a non-negative integer)")
    return value


def _check_sha256(value: object, what: str) -> str:
    if not isinstance(value, str) or not _SHA256_RE.fullmatch(value):
        raise OperationalError(f"{what} has no valid sha256")
    return value


def _read_file(cache: GitDir, commit: str, path: str) -> str | None:
    """A regular file of ``commit`` as UTF-8 text (None when absent); a symlink, a
    submodule, a huge or non-UTF-8 file is refused."""
    try:
        listing = cache.run(
            "--literal-pathspecs", "ls-tree", "-l", "-z", commit, "--", path, action=f"list {path}"
        )
    except GitFailed:  # a blob the filtered fetch left on the server: it is too big
        raise OperationalError(f"{path} is larger than {_BLOB_CAP} bytes") from None
    for item in listing.split("\0"):
        meta, _, name = item.partition("\t")
        if name != path:
            continue
        fields = meta.split()
        if len(fields) != 4 or fields[0] not in ("100644", "100755") or fields[1] != "blob":
            raise OperationalError(f"{path} is not a regular file in the commit")
        if not fields[3].isdigit() or int(fields[3]) > _BLOB_CAP:
            raise OperationalError(f"{path} is larger than {_BLOB_CAP} bytes")
        text = cache.run("cat-file", "blob", fields[2], action=f"read {path}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise OperationalError(f"{path} is not UTF-8 text") from None
        return text
    return None


def read_commit(req: PullRequest, cache: GitDir, commit: str, dest: Path) -> Plan:
    """What ``commit`` asks a host to download into ``dest`` (see :func:`read_plan`), and
    every path of it fits under ``dest``."""
    plan = read_plan(req.model, cache, commit, req.dvc_remote)
    _check_fits(dest, plan.version, plan.weights)
    return plan


def read_plan(model: str, cache: GitDir, commit: str, dvc_remote: str | None) -> Plan:
    """The weights of ``model``'s version on ``commit`` (an untrusted commit: every field
    validated), and the DVC remote of its committed config unless ``dvc_remote`` replaces
    it."""
    where = manifest_path(model)
    text = _read_file(cache, commit, where)
    if text is None:
        raise OperationalError(f"the commit has no manifest of {model}")
    manifest = manifest_schema.parse(text, where)
    version = str(manifest["version"])
    if manifest["model"] != model:
        raise OperationalError(f"{where} is a manifest of {shown(str(manifest['model']))}")
    weights = manifest["weights"]
    if len(weights) != 1 or not isinstance(weights[0], dict):
        raise OperationalError(f"{model} {version} lists {len(weights)} weights entries")
    entry: dict[str, Any] = weights[0]
    path = _check_relpath(entry.get("path"), "the weights path")
    what = f"weights {path}"
    md5 = dvcfiles.check_object_id(entry.get("md5"), what)
    files: list[tuple[str, str, str, int]] = []
    if md5.endswith(".dir"):
        listed = entry.get("files")
        if not isinstance(listed, list) or not listed:
            raise OperationalError(f"{what} is a directory with no list of files")
        for i, item in enumerate(listed):
            if not isinstance(item, dict):
                raise OperationalError(f"{what}: files[{i}] is not a mapping")
            rel = _check_relpath(item.get("path"), f"{what}: files[{i}]")
            oid = dvcfiles.check_object_id(item.get("md5"), f"{what}: {rel}")
            if oid.endswith(".dir"):
                raise OperationalError(f"{what}: {rel} has a directory's object id")
            files.append(
                (
                    rel,
                    oid,
                    _check_sha256(item.get("sha256"), rel),
                    _check_size(item.get("size"), rel),
                )
            )
        if len({f[0] for f in files}) != len(files):
            raise OperationalError(f"{what} lists a file twice")
    plan = Weights(
        path=path,
        name=path.rsplit("/", 1)[-1],
        md5=md5,
        sha256=_check_sha256(entry.get("sha256"), what),
        size=_check_size(entry.get("size"), what),
        files=tuple(sorted(files)),
    )
    _check_dvcfile(cache, commit, plan)
    remote = None
    if dvc_remote is None:
        config = _read_file(cache, commit, ".dvc/config")
        if config is None:
            raise OperationalError("the commit has no .dvc/config: no DVC remote")
        remote = dvcfiles.remote_from_config(config, ".dvc/config")
    return Plan(version=version, manifest=text, weights=plan, remote=remote)


def _check_dvcfile(cache: GitDir, commit: str, weights: Weights) -> None:
    where = f"{weights.path}.dvc"
    text = _read_file(cache, commit, where)
    out = dvcfiles.single_out(text, where) if text is not None else None
    if (
        not isinstance(out, dict)
        or out.get("md5") != weights.md5
        or out.get("path", weights.name) != weights.name
        or (not weights.is_dir and out.get("size", weights.size) != weights.size)
    ):
        raise OperationalError(f"{where} does not match the manifest")
