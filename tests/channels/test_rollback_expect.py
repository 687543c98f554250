"""``rollback(expect=...)``: the version the caller saw is checked on the freshly fetched
channel, so a confirmation given for one move never makes another."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl.channels.rollback import rollback
from mvctl.errors import ConflictError
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
    remote_holder,
    remote_tags,
)


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        *(
            Release(weights=v.encode(), version=v, push=True, promote=("production",))
            for v in ("v0.1.0", "v0.2.0", "v0.3.0")
        )
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def test_a_channel_moved_elsewhere_since_the_caller_looked_is_left_alone(
    reg: Registry, tmp_path: Path
) -> None:
    other = tmp_path / "terminal"
    git(tmp_path, "clone", "-q", str(reg.origin), str(other))
    moved = mvctl(other, "rollback", "fraud", "--to", "v0.2.0", "--reason", "v0.3.0 bad")
    assert moved.returncode == 0, moved.stderr
    before = remote_tags(reg.origin)
    with pytest.raises(ConflictError) as refused:
        rollback(reg.root, "fraud", reason="seen on v0.3.0", to="v0.1.0", expect="v0.3.0")
    assert refused.value.exit_code == 4
    assert "moved since you looked: nothing done" in refused.value.message
    assert remote_tags(reg.origin) == before
    assert set(reg.tags()) == set(before)  # fetched, and nothing written of its own
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"


def test_the_version_the_caller_saw_lets_the_rollback_go_ahead(reg: Registry) -> None:
    move = rollback(reg.root, "fraud", reason="FPR spike", to="v0.1.0", expect="v0.3.0")
    assert (move.previous, move.version, move.changed) == ("v0.3.0", "v0.1.0", True)
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
