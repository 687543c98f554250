"""Rollback and promote from the alias's chain (mvctl.channels.quick): the chain a move
writes, the same decisions as from every event, the fall back to every event on any
doubt (an older alias, a forged or stale chain), `mvctl check` finding a forged chain,
and the compare-and-swap that lets one of two racing rollbacks win."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import moves
from mvctl.channels import quick as quick_module
from mvctl.channels import state as channels
from mvctl.channels.marks import mark_gold, retire
from mvctl.channels.promotion import promote
from mvctl.channels.quick import quick_state
from mvctl.channels.rollback import rollback, rollback_on
from mvctl.check import check
from mvctl.errors import ConflictError, MvctlError
from mvctl.formats import tags
from tests.conftest import Registry, RegistryFactory, Release, copy_registry

VERSIONS = tuple(f"v0.{i}.0" for i in range(1, 7))


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), version=v) for v in VERSIONS))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


def body(reg: Registry, tag: str) -> dict[str, Any]:
    message = reg.git("tag", "-l", "--format=%(contents)", tag)
    parsed: dict[str, Any] = json.loads(message.partition("\n")[2])
    return parsed


def quick(reg: Registry, channel: str = "production") -> channels.ModelState | None:
    return quick_state(GitRepo.open(reg.root), "fraud", channel)


def full_answer(reg: Registry, channel: str = "production") -> tuple[str, str, bool] | str:
    """What a plain rollback would do, decided on every event (a dry run), or its refusal."""
    ctx = moves.open_channel(reg.root, "fraud", channel, False, "origin", need_config=False)
    assert not ctx.state.partial
    try:
        move = rollback_on(ctx, channel, reason="r", dry_run=True)
    except MvctlError as exc:
        return str(exc)
    return move.version, move.event, move.changed


def quick_answer(reg: Registry, channel: str = "production") -> tuple[str, str, bool] | str:
    try:
        move = rollback(reg.root, "fraud", channel, reason="r", push=False, dry_run=True)
    except MvctlError as exc:
        return str(exc)
    return move.version, move.event, move.changed


def retag(reg: Registry, alias: str, **changes: Any) -> None:
    """Re-tag ``alias`` by hand on its own commit with its body changed: a forged hint."""
    fields = {**body(reg, alias), **changes}
    message = reg.root.parent / "alias-message"
    message.write_text(f"{alias} -> {fields['version']}\n\n{json.dumps(fields, indent=1)}\n")
    commit = reg.git("rev-parse", f"{alias}^{{commit}}").strip()
    reg.git("tag", "-f", "-a", "-F", str(message), alias, commit)


def promote_all(reg: Registry, *versions: str, channel: str = "production") -> None:
    for version in versions:
        promote(reg.root, "fraud", version, channel, push=False)


def test_a_move_writes_the_chain_the_next_counter_and_the_channels(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    promote_all(reg, "v0.1.0", channel="staging")
    promote_all(reg, "v0.3.0")
    alias = body(reg, "fraud@production")
    assert alias["chain"] == ["fraud#production#1", "fraud#production#2", "fraud#production#4"]
    assert alias["next"] == 5 and {"production", "staging"} <= set(alias["channels"])
    assert body(reg, "fraud@staging")["chain"] == ["fraud#staging#3"]
    state = quick(reg)
    assert state is not None and state.partial
    assert (state.holder("production"), state.next_counter()) == ("v0.3.0", 5)
    assert check(reg.root, offline=True).ok


def test_the_chain_is_bounded(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tags, "CHAIN_LENGTH", 3)
    promote_all(reg, *VERSIONS[:5])
    assert body(reg, "fraud@production")["chain"] == [f"fraud#production#{n}" for n in (3, 4, 5)]


def test_quick_decisions_are_those_of_every_event(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step by step through promotions, rollbacks, marks, deregistrations and moves of
    another channel, a plain rollback decided from the chain is the one every event gives
    (or it falls back to every event and so is that one too)."""
    hour = iter(range(10, 24))

    def later() -> None:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-03-01T{next(hour)}:00:00+00:00")

    later()
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0")
    assert quick_answer(reg) == full_answer(reg) == ("v0.3.0", "fraud#production#5", True)
    rollback(reg.root, "fraud", reason="bad", push=False)  # v0.4.0 bad, holds v0.3.0
    later()
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", "fraud#production#6", True)
    rollback(reg.root, "fraud", reason="bad", push=False)  # v0.3.0 bad, holds v0.2.0
    later()
    promote_all(reg, "v0.5.0", channel="staging")
    retire(reg.root, "fraud", "v0.1.0", push=False)  # the next target gone
    assert quick_answer(reg) == full_answer(reg)
    assert "v0.1.0 is deregistered" in str(full_answer(reg))
    promote_all(reg, "v0.4.0")  # a bad version promoted again: a human's word
    mark_gold(reg.root, "fraud", "v0.3.0", reason="fine after all", push=False)
    later()
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", "fraud#production#9", True)
    retire(reg.root, "fraud", "v0.2.0", push=False)  # passed: the gold mark decides
    assert quick_answer(reg) == full_answer(reg) == ("v0.3.0", "fraud#production#9", True)
    state = quick(reg)
    assert state is not None and state.next_counter() == 9


def test_an_alias_without_a_chain_is_read_in_full(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    retag(reg, "fraud@production", chain=None, next=None, channels=None)
    assert quick(reg) is None
    move = rollback(reg.root, "fraud", reason="r", push=False)
    assert (move.version, move.event) == ("v0.1.0", "fraud#production#3")
    assert body(reg, "fraud@production")["chain"][-1] == "fraud#production#3"


def test_a_forged_chain_never_chooses_a_version_the_events_forbid(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain that leaves out the rollback away from v0.2.0 would make it gold: the probe
    for the events between its entries finds the one left out, so every event decides."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T10:00:00+00:00")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    rollback(reg.root, "fraud", reason="bad", push=False)  # #4: v0.3.0 -> v0.2.0
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T11:00:00+00:00")
    rollback(reg.root, "fraud", reason="bad", push=False)  # #5: v0.2.0 -> v0.1.0
    promote_all(reg, "v0.4.0")  # #6
    forged = ["fraud#production#1", "fraud#production#2", "fraud#production#6"]
    retag(reg, "fraud@production", chain=forged)
    assert quick(reg) is None
    problems = check(reg.root, offline=True).problems
    assert len(problems) == 1 and "not the newest events of the channel" in problems[0]
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T12:00:00+00:00")
    assert quick_answer(reg)[0] == full_answer(reg)[0] == "v0.1.0"  # not v0.2.0, nor v0.3.0


@pytest.mark.parametrize(
    "changes",
    [
        {"chain": ["fraud#production#1"]},  # does not end with the alias's event
        {"chain": ["fraud#staging#1", "fraud#production#2"]},  # another channel's event
        {"chain": ["fraud#production#2", "fraud#production#1"]},  # out of order
        {"channels": ["staging"]},  # not even its own channel
        {"next": 2},  # not past its own event
        {"chain": "fraud#production#2"},  # not a list
    ],
)
def test_a_chain_that_does_not_hold_together_is_not_used(
    reg: Registry, changes: dict[str, Any]
) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    retag(reg, "fraud@production", **changes)
    assert quick(reg) is None
    assert rollback(reg.root, "fraud", reason="r", push=False).version == "v0.1.0"


def test_a_channel_moved_without_its_alias_is_read_in_full(reg: Registry) -> None:
    """An event newer than the alias's (`gto assign` moves no alias): the probe sees it."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    commit = reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    reg.git("tag", "-a", "-m", "Assign fraud v0.1.0 to production", "fraud#production#4", commit)
    assert quick(reg) is None
    assert check(reg.root, offline=True).problems  # the alias no longer agrees


def test_a_stale_next_counter_is_caught_up_by_probing(reg: Registry) -> None:
    """Other channels moved since the alias was written: their events are found by name,
    so the next event takes the next free number, as with every event read."""
    promote_all(reg, "v0.1.0", "v0.2.0")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0", channel="staging")
    state = quick(reg)
    assert state is not None and state.next_counter() == 6
    move = rollback(reg.root, "fraud", reason="r", push=False)
    assert move.event == "fraud#production#6"
    assert check(reg.root, offline=True).ok


def test_check_catches_a_next_counter_ahead_of_every_event(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    retag(reg, "fraud@production", next=40)
    [problem] = check(reg.root, offline=True).problems
    assert "next event is number 40" in problem


def test_two_racing_rollbacks_one_wins_the_other_changes_nothing(reg: Registry) -> None:
    """Both decide on the same alias (quick states), the first writes; the second's
    compare-and-swap fails: exit 4, and not a tag of its own is left behind."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    first = moves.open_channel(reg.root, "fraud", "production", False, "origin", quick=())
    second = moves.open_channel(reg.root, "fraud", "production", False, "origin", quick=())
    assert first.state.partial and second.state.partial
    won = rollback_on(first, "production", reason="first")
    before = sorted(reg.tags())
    with pytest.raises(ConflictError) as caught:
        rollback_on(second, "production", reason="second")
    assert caught.value.exit_code == 4
    assert sorted(reg.tags()) == before
    assert (won.version, won.event) == ("v0.2.0", "fraud#production#4")
    assert body(reg, "fraud#production#4")["reason"] == "first"


def test_a_quick_promotion_checks_the_version_by_name(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    retire(reg.root, "fraud", "v0.3.0", push=False)
    with pytest.raises(MvctlError, match="deregistered"):
        promote(reg.root, "fraud", "v0.3.0", "production", push=False)
    with pytest.raises(MvctlError, match=r"v9\.9\.9"):
        promote(reg.root, "fraud", "v9.9.9", "production", push=False)
    move = promote(reg.root, "fraud", "v0.4.0", "production", push=False)
    assert (move.previous, move.event) == ("v0.2.0", "fraud#production#3")


def test_a_plain_rollback_and_a_promotion_read_no_full_history(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sound chain, neither move reads the model's tags at all, nor has git list
    their names (which opens every loose tag file): the names come from the files."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")

    def refused(*args: object) -> None:
        raise AssertionError("read every tag")

    monkeypatch.setattr(GitRepo, "tags", refused)
    monkeypatch.setattr(GitRepo, "ref_names", refused)
    monkeypatch.setattr(channels, "load", refused)
    assert promote(reg.root, "fraud", "v0.4.0", "production", push=False).changed
    move = rollback(reg.root, "fraud", reason="r", push=False)
    assert (move.version, move.previous, move.event) == ("v0.3.0", "v0.4.0", "fraud#production#5")


def test_more_moves_elsewhere_than_the_probe_reaches_are_read_in_full(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quick_module, "PROBE_WINDOW", 2)
    promote_all(reg, "v0.1.0", "v0.2.0")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0", channel="staging")  # #3, #4, #5
    assert quick(reg) is None
    assert rollback(reg.root, "fraud", reason="r", push=False).event == "fraud#production#6"


# The counter is shared by every channel, ones no config names included, and an alias body's
# `next` is a hint a hand edit could inflate (both found by a hostile review).
def test_gto_assign_to_an_unconfigured_stage_shares_no_counter(reg: Registry) -> None:
    """`gto assign` to a stage in no mvctl.yaml and no alias's `channels` after the last
    production move: a full read takes the next counter after it; the chain must too."""
    promote_all(reg, "v0.1.0", "v0.2.0")  # fraud#production#1, #2: next is 3
    commit = reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    reg.git("tag", "-a", "-m", "Assign fraud v0.1.0 to edge", "fraud#edge#3", commit)
    full = full_answer(reg)
    assert full == ("v0.1.0", "fraud#production#4", True)
    assert quick_answer(reg) == full


def test_a_hand_edited_next_counter_does_not_pick_the_event_number(reg: Registry) -> None:
    """A crafted `next` far ahead of every event: the full read numbers the rollback 3."""
    promote_all(reg, "v0.1.0", "v0.2.0")
    retag(reg, "fraud@production", next=40)
    full = full_answer(reg)
    assert full == ("v0.1.0", "fraud#production#3", True)
    assert quick_answer(reg) == full
