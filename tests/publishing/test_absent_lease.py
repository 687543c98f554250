"""A lease on a ref the push does not update is ignored by git (2.39 checked), so
``push_refs(absent=...)`` sends each ref that must stay absent as its deletion leased on
nothing: a no-op while the remote lacks it, a refusal of the whole atomic push once
someone created it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo, Refused
from mvctl.publishing import publish
from tests.conftest import Registry, git, remote_tags, run

GUARD = "refs/tags/fraud@staging"


def _probe(reg: Registry, name: str) -> publish.Pending:
    reg.git("tag", name)
    obj = reg.git("rev-parse", f"refs/tags/{name}").strip()
    return publish.Pending("origin", (name,), {}, local={name: obj})


def test_a_plain_lease_on_an_unpushed_ref_is_ignored_by_git(registry: Registry) -> None:
    registry.git("push", "-q", "origin", "main")
    registry.git("tag", "fraud@staging")
    registry.git("push", "-q", "origin", GUARD)
    registry.git("tag", "probe")
    registry.git("push", "-q", f"--force-with-lease={GUARD}:", "origin", "refs/tags/probe")
    assert "probe" in remote_tags(registry.origin)  # why absent= pushes a deletion


def test_an_absent_ref_stays_absent_and_the_push_lands(registry: Registry) -> None:
    registry.git("push", "-q", "origin", "main")
    repo = GitRepo.open(registry.root)
    pushed = publish.push_refs(repo, _probe(registry, "probe"), absent=[GUARD])
    assert pushed == ["probe"]
    assert set(remote_tags(registry.origin)) == {"probe"}


def test_a_ref_created_meanwhile_refuses_the_whole_push(registry: Registry, tmp_path: Path) -> None:
    registry.git("push", "-q", "origin", "main")
    other = tmp_path / "other"
    run("git", "clone", "-q", str(registry.origin), str(other), cwd=tmp_path)
    git(other, "tag", "fraud@staging")
    git(other, "push", "-q", "origin", GUARD)
    repo = GitRepo.open(registry.root)
    with pytest.raises(Refused):
        publish.push_refs(repo, _probe(registry, "probe"), absent=[GUARD])
    assert set(remote_tags(registry.origin)) == {"fraud@staging"}  # still there, nothing else
