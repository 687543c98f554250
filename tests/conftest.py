"""Fixtures: real git repos, a bare git remote and a directory DVC remote, all in tmp.

Every test runs with HOME, git identity and DVC's global state isolated, so nothing on the
machine (or a developer's own config) leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mvctl.registry.initialise import init


def run(*args: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=check
    )


def git(cwd: Path, *args: str) -> str:
    return run("git", *args, cwd=cwd).stdout


def mvctl(cwd: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it, in a subprocess."""
    return run(sys.executable, "-m", "mvctl", *args, cwd=cwd, check=check)


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """HOME, git identity and DVC's global state, all private to ``home``."""
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n")
    for key in list(os.environ):
        if key.startswith(("GIT_", "DVC_")):
            monkeypatch.delenv(key)
    # The tools of this interpreter's environment (dvc, gto, mvctl) come first on PATH.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada Tester")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Ada Tester")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "ada@example.com")
    monkeypatch.setenv("DVC_SITE_CACHE_DIR", str(home / "dvc-site-cache"))
    monkeypatch.setenv("DVC_GLOBAL_CONFIG_DIR", str(home / ".config" / "dvc"))
    monkeypatch.setenv("DVC_SYSTEM_CONFIG_DIR", str(home / "dvc-system"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("home")
    isolate(monkeypatch, home)
    return home


def make_registry(base: Path) -> Registry:
    """A registry repo under ``base`` with a bare 'origin' and a directory DVC remote."""
    root = base / "repo"
    origin = base / "origin.git"
    storage = base / "dvc-storage"
    run("git", "init", "-q", "--bare", "-b", "main", origin, cwd=base)
    run("git", "init", "-q", "-b", "main", root, cwd=base)
    git(root, "remote", "add", "origin", str(origin))
    (root / "README.md").write_text("# training repo\n")
    (root / "params.yaml").write_text("train:\n  C: 1.0\n  layers: [64, 32]\n")
    git(root, "add", "README.md", "params.yaml")
    git(root, "commit", "-q", "-m", "initial")
    init(root, str(storage))
    return Registry(root, origin, storage)


@dataclass
class Registry:
    """A registry repo with a bare git remote ('origin') and a directory DVC remote."""

    root: Path
    origin: Path
    storage: Path

    def write(self, rel: str, content: str | bytes) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def train(self, weights: bytes = b"weights-v1", auc: float = 0.91, rows: int = 3) -> None:
        """Stand-in for a training run: weights, a dataset, metrics and params."""
        self.write("models/model.bin", weights)
        self.write("data/train.csv", "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(rows)))
        self.write("metrics.json", json.dumps({"auc": auc, "loss": {"train": 0.2, "val": 0.3}}))

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def tags(self) -> list[str]:
        return sorted(self.git("tag", "--list").split())

    def status(self) -> str:
        """git status including ignored files, less DVC's own cache and temp files."""
        out = self.git("status", "--porcelain", "--untracked-files=all", "--ignored")
        return "\n".join(ln for ln in out.splitlines() if not ln[3:].startswith(".dvc/"))

    def storage_files(self) -> list[str]:
        return sorted(str(p.relative_to(self.storage)) for p in self.storage.rglob("*"))

    def snapshot(self) -> tuple[str, list[str], list[str], str]:
        """Everything a refused command must leave unchanged."""
        return (self.status(), self.tags(), self.storage_files(), self.git("rev-parse", "HEAD"))


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    reg = make_registry(tmp_path)
    monkeypatch.chdir(reg.root)
    yield reg


@dataclass(frozen=True)
class Release:
    """One version a template registers as fraud (vX.Y.Z numbered in order unless given)."""

    weights: bytes
    auc: float = 0.91  # what metrics.json reports (Registry.train writes the inputs)
    data: tuple[str, ...] = ("data/train.csv",)
    metrics: bool = True  # register metrics.json
    push: bool | None = None  # as RegisterRequest.push, and for the promotions below
    promote: tuple[str, ...] = ()  # channels moved to this version right after it
    date: str | None = None  # GIT_COMMITTER_DATE while it is registered and promoted
    version: str | None = None
    # Instead of Registry.train: the weights go to models/model.bin, these files beside.
    files: tuple[tuple[str, str], ...] | None = None


def build_registry(
    base: Path,
    mp: pytest.MonkeyPatch,
    releases: tuple[Release, ...],
    config: str | None = None,
    promotions: tuple[tuple[str, str], ...] = (),
) -> Registry:
    """A registry under ``base``: ``config`` committed as mvctl.yaml, then each release
    registered (and promoted), then each (version, channel) of ``promotions`` promoted."""
    from mvctl.channels.promotion import promote
    from mvctl.registry.register import RegisterRequest, register

    reg = make_registry(base)
    if config is not None:
        reg.write("mvctl.yaml", config)
        reg.git("commit", "-q", "-am", "Registry config")
    for release in releases:
        if release.date:
            mp.setenv("GIT_COMMITTER_DATE", release.date)
        if release.files is None:
            reg.train(weights=release.weights, auc=release.auc)
        else:
            reg.write("models/model.bin", release.weights)
            for rel, content in release.files:
                reg.write(rel, content)
        version = register(
            RegisterRequest(
                model="fraud",
                cwd=reg.root,
                weights="models/model.bin",
                data=release.data,
                metrics_file="metrics.json" if release.metrics else None,
                version=release.version,
                push=release.push,
            )
        ).manifest.version
        for channel in release.promote:
            promote(reg.root, "fraud", version, channel, push=release.push)
    for version, channel in promotions:
        promote(reg.root, "fraud", version, channel)
    return reg


RegistryFactory = Callable[..., Path]


@pytest.fixture(scope="module")
def registry_factory(tmp_path_factory: pytest.TempPathFactory) -> RegistryFactory:
    """``registry_factory(*releases, config=..., promotions=...)``: the directory of a
    template registry (see build_registry) built once per module and arguments, under its
    own HOME. Tests take a private copy of it with copy_registry."""
    built: dict[tuple[object, ...], Path] = {}

    def factory(
        *releases: Release,
        config: str | None = None,
        promotions: tuple[tuple[str, str], ...] = (),
    ) -> Path:
        key = (releases, config, promotions)
        if key not in built:
            base = tmp_path_factory.mktemp("template")
            home = base / "home"
            home.mkdir()
            with pytest.MonkeyPatch.context() as mp:
                isolate(mp, home)
                build_registry(base, mp, releases, config, promotions)
            built[key] = base
        return built[key]

    return factory


def build_template(base: Path, config_text: str, aucs: dict[str, float]) -> Registry:
    """A registry under ``base`` with ``config_text`` as mvctl.yaml and one published
    version per entry of ``aucs`` (the metric each reports); copy it with copy_registry."""
    releases = tuple(
        Release(weights=version.encode(), auc=auc, version=version, push=True)
        for version, auc in aucs.items()
    )
    with pytest.MonkeyPatch.context() as mp:
        return build_registry(base, mp, releases, config_text)


def copy_registry(
    template: Path, tmp_path: Path, *, storage: bool = True, publish: bool = True
) -> Registry:
    """A private copy of a template registry (repo, bare origin, DVC store), rewired to its
    own origin; with ``storage`` its committed DVC remote names the copy's store too (one
    `dvc remote modify` and a commit, ~1 s), and with ``publish`` that commit is pushed."""
    import shutil

    base = tmp_path / "copy"
    shutil.copytree(template, base, symlinks=True, ignore=shutil.ignore_patterns("home"))
    registry = Registry(base / "repo", base / "origin.git", base / "dvc-storage")
    registry.git("remote", "set-url", "origin", str(registry.origin))
    if storage:
        run("dvc", "remote", "modify", "mvctl", "url", str(registry.storage), cwd=registry.root)
        registry.git("commit", "-q", "-am", "Storage of this copy")
        if publish:
            registry.git("push", "-q", "origin", "main")
    return registry


def remote_tags(origin: Path) -> dict[str, str]:
    """tag name -> object id, as the bare remote (what every host follows) has them."""
    out = git(origin, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags/")
    return dict(line.split(" ", 1) for line in out.splitlines())


def remote_holder(origin: Path, model: str, channel: str) -> str | None:
    """The version the remote's alias points at (by the version tag on its commit)."""
    out = git(origin, "for-each-ref", "--format=%(refname:short) %(*objectname)", "refs/tags/")
    peeled = dict(line.split(" ", 1) for line in out.splitlines())
    commit = peeled.get(f"{model}@{channel}")
    versions = [
        name.split("@", 1)[1]
        for name, obj in peeled.items()
        if name.startswith(f"{model}@v") and obj == commit and name[-1] not in "!d"
    ]
    return versions[0] if versions else None


def git_shim(directory: Path, real_git: str) -> Path:
    """A ``git`` first on PATH that runs the real one, and on the Nth call (or the first call
    whose subcommand is MVCTL_SHIM_ON) signals its parent (the mvctl process) with
    MVCTL_SHIM_SIGNAL: before that call runs (MVCTL_SHIM_WHEN=before) or after it (after).
    With MVCTL_SHIM_EXIT it signals nothing and fails that call after it ran (a connection
    lost once the remote had the push). MVCTL_SHIM_COUNT names a file counting the calls.
    A fault injector for tests only."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "git"
    shim.write_text(
        f"""#!/bin/sh
count_file="${{MVCTL_SHIM_COUNT:-/dev/null}}"
n=$(( $(cat "$count_file" 2>/dev/null || echo 0) + 1 ))
[ "$count_file" = /dev/null ] || echo "$n" > "$count_file"
hit=no
[ -n "$MVCTL_SHIM_AT" ] && [ "$n" = "$MVCTL_SHIM_AT" ] && hit=yes
[ -n "$MVCTL_SHIM_ON" ] && [ "$1" = "$MVCTL_SHIM_ON" ] && hit=yes
[ -n "$MVCTL_SHIM_ON" ] && [ "$1" = "--git-dir" ] && [ "$3" = "$MVCTL_SHIM_ON" ] && hit=yes
if [ "$hit" = yes ] && [ "${{MVCTL_SHIM_WHEN:-after}}" = before ]; then
  kill -s "${{MVCTL_SHIM_SIGNAL:-KILL}}" "$PPID"; sleep 5; exit 1
fi
"{real_git}" "$@"
code=$?
if [ "$hit" = yes ] && [ -n "$MVCTL_SHIM_EXIT" ]; then
  echo "fatal: the remote end hung up unexpectedly" >&2; exit "$MVCTL_SHIM_EXIT"
fi
if [ "$hit" = yes ]; then
  kill -s "${{MVCTL_SHIM_SIGNAL:-KILL}}" "$PPID"; sleep 5
fi
exit $code
"""
    )
    shim.chmod(0o755)
    return shim
