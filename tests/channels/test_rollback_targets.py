"""The versions a forced rollback may pick (rollback_targets) are exactly those that
``rollback --to`` accepts, and a rollback asked for through the dashboard records who
asked, while every other event stays byte-identical."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.marks import retire
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback, rollback_targets
from mvctl.errors import MvctlError, UsageError
from mvctl.formats import tags
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, run

VERSIONS = ("v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0")


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), version=v) for v in VERSIONS))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


def targets(reg: Registry, channel: str = "production") -> tuple[str, ...]:
    return rollback_targets(channels.load(GitRepo.open(reg.root), "fraud"), channel)


def accepted(reg: Registry, channel: str = "production") -> set[str]:
    """What `rollback --to` takes, asked version by version (dry runs: nothing moves)."""
    state = channels.load(GitRepo.open(reg.root), "fraud")
    current = state.holder(channel)
    ok = set()
    for version in VERSIONS:
        try:
            move = rollback(reg.root, "fraud", channel, reason="r", to=version, dry_run=True)
        except MvctlError:
            continue
        if version != current:
            assert move.version == version
            ok.add(version)
    return ok


def test_targets_are_what_rollback_to_accepts(reg: Registry) -> None:
    assert targets(reg) == ()
    for version in ("v0.1.0", "v0.2.0", "v0.3.0"):
        promote(reg.root, "fraud", version, "production", push=False)
    # Newest tenure first; never the version it holds, never one it never served (v0.4.0).
    assert targets(reg) == ("v0.2.0", "v0.1.0")
    assert set(targets(reg)) == accepted(reg)
    rollback(reg.root, "fraud", reason="bad", push=False)  # v0.3.0 -> v0.2.0: v0.3.0 is bad
    assert targets(reg) == ("v0.1.0",)
    assert set(targets(reg)) == accepted(reg)
    promote(reg.root, "fraud", "v0.4.0", "production", push=False)
    retire(reg.root, "fraud", "v0.1.0", push=False)  # deregistered: no target any more
    assert targets(reg) == ("v0.2.0",)
    assert set(targets(reg)) == accepted(reg)
    assert targets(reg, "staging") == ()


def test_a_requested_rollback_records_the_requester(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=False)
    promote(reg.root, "fraud", "v0.2.0", "production", push=False)
    move = rollback(
        reg.root, "fraud", reason="spike", to="v0.1.0", push=False, requested_by="Ada", via="ui"
    )
    assert (move.requested_by, move.via) == ("Ada", "ui")
    assert move.to_dict()["requested_by"] == "Ada"
    message = reg.git("tag", "-l", "--format=%(contents)", move.event)
    title, body = tags.parse_message(message)
    assert "(requested by Ada via ui)" in title
    assert (body["requested_by"], body["via"]) == ("Ada", "ui")
    events = channels.history(reg.root, "fraud")
    assert (events[-1].requested_by, events[-1].via) == ("Ada", "ui")
    # A promotion (no requester) writes neither key: its body is as before.
    first = tags.parse_message(reg.git("tag", "-l", "--format=%(contents)", events[0].name))[1]
    assert "requested_by" not in first
    assert "via" not in first
    assert "requested_by" not in events[0].to_dict()
    # GTO still reads the history with the new keys in it.
    gto = json.loads(run("gto", "history", "fraud", "--json", cwd=reg.root).stdout)
    assert any(e["event"] == "assignment" and e["version"] == "v0.1.0" for e in gto)


def test_a_requester_name_is_checked(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=False)
    promote(reg.root, "fraud", "v0.2.0", "production", push=False)
    before = reg.tags()
    with pytest.raises(UsageError):
        rollback(reg.root, "fraud", reason="r", push=False, requested_by="x\x1b[2J", via="ui")
    with pytest.raises(UsageError):
        rollback(reg.root, "fraud", reason="r", push=False, requested_by="x" * 101, via="ui")
    assert reg.tags() == before


def test_event_bodies_without_a_requester_are_unchanged() -> None:
    body = tags.EventBody("rollback", "fraud", "production", "v0.1.0", "v0.2.0", 3, "r", "a", "t")
    assert "requested_by" not in body.to_dict()
    assert "via" not in body.to_dict()
    again = tags.EventBody.from_dict({**body.to_dict(), "requested_by": "Ada", "via": "ui"})
    assert (again.requested_by, again.via) == ("Ada", "ui")
    assert tags.EventBody.from_dict(again.to_dict()) == again
