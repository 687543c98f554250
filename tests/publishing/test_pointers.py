"""Pointer files written after a pushed move (``pointers: true``): git first, the pointer
after it, and a pointer that cannot be written is a warning, never a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.errors import OperationalError
from mvctl.formats import config, pointer
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
    remote_tags,
    run,
)

KEY = "mvctl/channels/fraud/production.json"


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    releases = (Release(weights=w * 100, data=(), metrics=False, push=True) for w in (b"a", b"b"))
    return registry_factory(*releases)


def with_pointers(reg: Registry, store: Path | str) -> None:
    """``pointers: true`` committed, and the registry's DVC remote at ``store`` (its local
    config, as a team member's machine or a CI job would have it)."""
    path = reg.root / "mvctl.yaml"
    path.write_text(path.read_text() + "pointers: true\n")
    reg.git("commit", "-q", "-am", "Pointer files for the fleet")
    run("dvc", "remote", "modify", "--local", "mvctl", "url", str(store), cwd=reg.root)


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


def read(store: Path) -> pointer.Pointer:
    return pointer.parse((store / KEY).read_bytes(), "fraud", "production")


def test_promote_and_rollback_write_the_pointer_after_the_push(reg: Registry) -> None:
    with_pointers(reg, reg.storage)
    move = promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert move.pointers is not None and move.pointers.written == (KEY,)
    first = read(reg.storage)
    assert (first.version, first.event) == ("v0.1.0", move.event)
    assert first.commit == reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    origin_commit = git(reg.origin, "rev-parse", "fraud@production^{commit}")
    assert first.commit == origin_commit.strip()
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    back = rollback(reg.root, "fraud", reason="bad", push=True)
    now = read(reg.storage)
    assert (now.version, now.event) == ("v0.1.0", back.event)
    assert dict(now.weights) and all(len(m) == 32 for m in dict(now.weights).values())
    assert move.to_dict()["pointers"]["warning"] is None


def test_pointers_off_by_default(reg: Registry) -> None:
    move = promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert move.pointers is None and "pointers" not in move.to_dict()
    assert not (reg.storage / KEY).exists()


def test_a_local_move_writes_no_pointer(reg: Registry) -> None:
    with_pointers(reg, reg.storage)
    move = promote(reg.root, "fraud", "v0.1.0", "production", push=False)
    assert move.pointers is None and not (reg.storage / KEY).exists()


def test_mvctl_push_writes_the_pointers_of_the_aliases_it_publishes(reg: Registry) -> None:
    with_pointers(reg, reg.storage)
    promote(reg.root, "fraud", "v0.2.0", "production", push=False)
    proc = mvctl(reg.root, "push", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["pointers"]["written"] == [KEY]
    assert read(reg.storage).version == "v0.2.0"


def test_a_stopped_channel_loses_its_pointer(reg: Registry) -> None:
    from mvctl.channels.weights import stop

    with_pointers(reg, reg.storage)
    promote(reg.root, "fraud", "v0.2.0", "canary", push=True)
    canary = reg.storage / "mvctl/channels/fraud/canary.json"
    assert canary.is_file()
    move = stop(reg.root, "fraud", "canary", reason="test", push=True)
    assert move.pointers is not None and move.pointers.removed == (
        str(canary.relative_to(reg.storage)),
    )
    assert not canary.exists()


def test_a_failed_pointer_write_is_a_warning_and_the_alias_moved(
    reg: Registry, tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the store's folder should be")
    with_pointers(reg, blocked)
    proc = mvctl(reg.root, "promote", "fraud", "v0.1.0", "--to", "production", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "warning: pointer files not updated" in proc.stderr
    assert "the source of truth" in proc.stderr
    out = json.loads(proc.stdout)
    assert out["pushed"] and "source of truth" in out["pointers"]["warning"]
    assert "fraud@production" in remote_tags(reg.origin)


@pytest.mark.parametrize("line", ["pointer: true", "pointers: yes-please", "pointers: 1"])
def test_a_config_typo_is_an_error(line: str) -> None:
    with pytest.raises(OperationalError, match="pointer"):
        config.loads(f"version: 1\n{line}\n")


def test_pointers_true_parses() -> None:
    assert config.loads("version: 1\npointers: true\n").pointers
    assert not config.loads("version: 1\n").pointers
