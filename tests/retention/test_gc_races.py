"""Hostile findings against gc's publishing (issue 14): what others publish while gc runs.
A channel created between the sync and the push, another model's version this clone never
fetched, a leftover deregistration of a version promoted since, ``--yes --local`` on a
shared DVC remote, and a version registered while gc deletes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.errors import ConflictError
from mvctl.publishing.sync import sync_git
from mvctl.registry.read import load_manifest, model_tags
from mvctl.retention.prune import gc
from tests.conftest import RegistryFactory, git_shim, mvctl, remote_holder, remote_tags
from tests.retention._common import (
    four_versions,
    other_clone,
    push_deregistrations,
    stored,
    weights,
)

PRUNE = ("gc", "fraud", "--keep-gold", "0", "--keep-recent", "1", "--yes")


def _weights_oid(root: Path, model: str, version: str) -> str:
    git = GitRepo.open(root)
    commit = model_tags(git, model).versions[version].commit
    return load_manifest(git, model, version, commit).weights[0].md5


def test_a_channel_created_between_the_sync_and_the_push_refuses_the_push(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    repo = GitRepo.open(reg.root)
    synced = sync_git(repo, "origin")
    states = {"fraud": channels.load(repo, "fraud")}
    plan = gc(reg.root, "fraud", keep_gold=0, keep_recent=1).plan
    assert "v2.0.0" in {v.version for v in plan.pruned}
    # Someone starts staging (a channel fraud never used) on v2 after our sync.
    other = other_clone(reg, tmp_path)
    moved = mvctl(other, "promote", "fraud", "v2.0.0", "--to", "staging")
    assert moved.returncode == 0, moved.stderr
    assert remote_holder(reg.origin, "fraud", "staging") == "v2.0.0"

    with pytest.raises(ConflictError):
        push_deregistrations(repo, states, plan, synced)
    assert "fraud@v2.0.0!" not in remote_tags(reg.origin)
    assert not [t for t in reg.tags() if t.endswith("!")]  # taken back here


def test_gc_of_one_model_keeps_another_models_version_this_clone_never_fetched(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    other = other_clone(reg, tmp_path)
    # In another clone, churn is registered with fraud v1's very weights, and published.
    (other / "models").mkdir(exist_ok=True)
    (other / "models" / "churn.bin").write_bytes(weights("v1.0.0"))
    done = mvctl(other, "register", "churn", "--weights", "models/churn.bin")
    assert done.returncode == 0, done.stdout + done.stderr
    churn = _weights_oid(other, "churn", "v0.1.0")
    assert churn == _weights_oid(reg.root, "fraud", "v1.0.0") and churn in stored(reg)

    got = mvctl(reg.root, *PRUNE)
    assert got.returncode == 0, got.stderr
    assert "fraud@v1.0.0!" in remote_tags(reg.origin)  # fraud v1 was pruned all the same
    assert churn in stored(reg), "gc deleted churn v0.1.0's weights"


def test_a_rerun_takes_back_a_leftover_deregistration_of_a_version_promoted_since(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    git_shim(shim, str(Path(real).resolve()))
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "push",
        "MVCTL_SHIM_WHEN": "before",
    }
    killed = subprocess.run(
        [sys.executable, "-m", "mvctl", *PRUNE],
        cwd=reg.root, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert killed.returncode == -9
    assert "fraud@v2.0.0!" in reg.tags()  # left here, never published
    assert "fraud@v2.0.0!" not in remote_tags(reg.origin)
    v2 = _weights_oid(reg.root, "fraud", "v2.0.0")

    other = other_clone(reg, tmp_path)
    moved = mvctl(other, "promote", "fraud", "v2.0.0", "--to", "staging")
    assert moved.returncode == 0, moved.stderr

    rerun = gc(reg.root, "fraud", keep_gold=0, keep_recent=1, dry_run=False)
    assert rerun.taken_back == ("fraud@v2.0.0!",)
    assert remote_holder(reg.origin, "fraud", "staging") == "v2.0.0"
    published = remote_tags(reg.origin)
    assert "fraud@v2.0.0!" not in published and "fraud@v2.0.0!" not in reg.tags()
    assert {"fraud@v1.0.0!", "fraud@v3.0.0!"} <= set(published)  # the others finish
    assert v2 in stored(reg)
    shown = mvctl(reg.root, "gc", "fraud", "--keep-gold", "0", "--keep-recent", "1")
    assert "held by staging" in shown.stdout


def test_yes_local_is_refused_with_a_git_remote_and_yes_decides_on_its_tags(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    v1 = _weights_oid(reg.root, "fraud", "v1.0.0")
    other = other_clone(reg, tmp_path)
    moved = mvctl(other, "promote", "fraud", "v1.0.0", "--to", "staging")
    assert moved.returncode == 0, moved.stderr
    (reg.root / "mvctl.yaml").write_text(
        (reg.root / "mvctl.yaml").read_text() + "push: never\n"
    )  # even so: the DVC remote is shared

    local = mvctl(reg.root, *PRUNE, "--local")
    assert local.returncode == 2, local.stdout + local.stderr
    assert "hint" in local.stderr.lower() and "--local" in local.stderr
    assert v1 in stored(reg)
    done = mvctl(reg.root, *PRUNE)
    assert done.returncode == 0, done.stderr
    assert v1 in stored(reg), "gc deleted what the remote's staging holds"
    assert {"fraud@v2.0.0!", "fraud@v3.0.0!"} <= set(remote_tags(reg.origin))


def test_a_failing_read_of_the_remotes_url_never_makes_gc_local(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    v1 = _weights_oid(reg.root, "fraud", "v1.0.0")
    other = other_clone(reg, tmp_path)
    moved = mvctl(other, "promote", "fraud", "v1.0.0", "--to", "staging")
    assert moved.returncode == 0, moved.stderr
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    git_shim(shim, str(Path(real).resolve()))
    env = {  # every 'git config' fails (exit 3, as for an unreadable config file)
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "config",
        "MVCTL_SHIM_EXIT": "3",
    }
    subprocess.run(
        [sys.executable, "-m", "mvctl", *PRUNE],
        cwd=reg.root, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert v1 in stored(reg), "gc went local and deleted what the remote's staging holds"


def test_a_version_registered_while_gc_runs_keeps_the_objects_it_reuses(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = four_versions(registry_factory, tmp_path, monkeypatch)
    other = other_clone(reg, tmp_path)
    (other / "models" / "model.bin").write_bytes(weights("v1.0.0"))
    real = shutil.which("git")
    assert real is not None
    # A git first on PATH for gc only: once gc's tag push has run, the other clone
    # registers v5 (with the real git) before gc goes on.
    shim = tmp_path / "shim"
    shim.mkdir()
    clean_path = os.environ["PATH"]
    (shim / "git").write_text(
        f"""#!/bin/sh
"{Path(real).resolve()}" "$@"
code=$?
if [ "$1" = push ]; then
  (cd "{other}" && PATH="{clean_path}" "{sys.executable}" -m mvctl register fraud \\
     --weights models/model.bin --version v5.0.0 >"{tmp_path}/register.log" 2>&1)
fi
exit $code
"""
    )
    (shim / "git").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{clean_path}"}
    done = subprocess.run(
        [sys.executable, "-m", "mvctl", *PRUNE],
        cwd=reg.root, env=env, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fraud@v5.0.0" in remote_tags(reg.origin), (tmp_path / "register.log").read_text()
    oid = _weights_oid(other, "fraud", "v5.0.0")
    assert oid == _weights_oid(reg.root, "fraud", "v1.0.0")
    assert oid in stored(reg), "v5.0.0, registered during gc, has lost its weights"
    assert "spared 1 object that a version registered meanwhile needs" in done.stdout
