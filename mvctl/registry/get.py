"""``mvctl get`` from a registry: the current one (resolved as ``show`` resolves a ref) or
a git remote's (resolved with one `git ls-remote`, read as untrusted); the download itself
is mvctl.serving.get's."""

from __future__ import annotations

from mvctl._adapters.dvcfiles import check_dvc_remote
from mvctl._adapters.gitdir import GitDir
from mvctl.common.progress import ProgressSink
from mvctl.registry.read import open_registry, resolve_version
from mvctl.serving.commit import read_plan
from mvctl.serving.get import Got, Options, Wanted, get_remote, save


def get(
    wanted: Wanted,
    options: Options,
    repo: str | None = None,
    progress: ProgressSink | None = None,
) -> Got:
    """The weights of the version ``wanted`` names, verified, written where ``options``
    say. Without ``repo``, from the registry holding ``options.cwd``."""
    if options.dvc_remote is not None:
        check_dvc_remote(options.dvc_remote)
    if repo is not None:
        return get_remote(repo, wanted, options, progress)
    git = open_registry(options.cwd)
    info = resolve_version(git, wanted.ref)
    # The commit is read through the same validation as a remote's: one reader of
    # manifests for every download, whoever wrote the commit.
    plan = read_plan(wanted.model, GitDir(git.common_dir()), info.commit, options.dvc_remote)
    return save(plan, info.commit, wanted, info.version, options, progress)
