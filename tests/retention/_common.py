"""Shared helpers of the gc tests: a small registry, another clone, the DVC remote's
objects, and gc's publishing step run on its own (to race it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels.state import ModelState
from mvctl.formats.config import DEFAULT_CHANNELS
from mvctl.publishing.sync import SyncResult
from mvctl.retention import deregister
from mvctl.retention.plan import GcPlan
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, git, run

VERSIONS = ("v1.0.0", "v2.0.0", "v3.0.0", "v4.0.0")


def weights(version: str) -> bytes:
    return f"weights of {version}\n".encode() * 64


def four_versions(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    """fraud v1..v4 (distinct weights, one dataset), all published; production holds v4."""
    template = registry_factory(
        *(Release(weights=weights(v), version=v) for v in VERSIONS),
        promotions=(("v4.0.0", "production"),),
    )
    copy = copy_registry(template, tmp_path)
    monkeypatch.chdir(copy.root)
    return copy


def other_clone(reg: Registry, tmp_path: Path, name: str = "other") -> Path:
    other = tmp_path / name
    run("git", "clone", "-q", str(reg.origin), str(other), cwd=tmp_path)
    git(other, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    return other


def stored(reg: Registry) -> set[str]:
    """Object ids in the DVC remote this registry pushes to (files/md5/ab/cdef -> abcdef)."""
    return {
        p.parent.name + p.name for p in (reg.storage / "files" / "md5").rglob("*") if p.is_file()
    }


def push_deregistrations(
    repo: GitRepo, states: dict[str, ModelState], plan: GcPlan, synced: SyncResult
) -> list[str]:
    """gc's write-and-publish step alone, on a sync made earlier (the race's other side
    runs in between)."""
    created = deregister.write(repo, states, plan.pruned)
    return deregister.publish_all(
        repo, states, created, synced, list(plan.models), DEFAULT_CHANNELS
    )
