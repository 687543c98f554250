"""Publishing a stop: the unassignment and the alias's deletion reach the remote together
(leased on the remote's alias), a stop made here is pending until they do, sync neither
brings a stopped alias back nor keeps one the remote stopped, an interrupted stop is
completed by a retry or `mvctl push` (never repeated), and a stop racing a promotion leaves
one winner and nothing half-done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo, Refused
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.channels.weights import set_weight, stop
from mvctl.check import check
from mvctl.formats import tags
from mvctl.publishing import publish
from mvctl.publishing.sync import sync
from tests.conftest import (
    Registry,
    build_template,
    copy_registry,
    git_shim,
    isolate,
    mvctl,
    remote_holder,
    remote_tags,
    run,
)

CONFIG = "version: 1\nchannels: [production, staging, canary, shadow]\nmodels: {fraud: {}}\n"
STOP = ("canary", "stop", "fraud", "--reason", "error rate x2")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three published versions; canary holds v0.2.0 at 20% (published)."""
    base = tmp_path_factory.mktemp("stop-template")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        reg = build_template(base, CONFIG, {"v0.1.0": 0.9, "v0.2.0": 0.9, "v0.3.0": 0.9})
        promote(reg.root, "fraud", "v0.1.0", "production")
        promote(reg.root, "fraud", "v0.2.0", "canary", weight=20)
    yield base


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def clone(reg: Registry, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    run("git", "clone", "-q", str(reg.origin), path, cwd=tmp_path)
    return path


def stops_on(origin: Path) -> list[str]:
    return sorted(n for n in remote_tags(origin) if n.startswith("fraud#canary!#"))


def holder(root: Path, channel: str = "canary") -> str | None:
    return channels.load(GitRepo.open(root), "fraud").holder(channel)


def test_a_local_stop_is_pending_until_mvctl_push(reg: Registry) -> None:
    proc = mvctl(reg.root, *STOP, "--local")
    assert proc.returncode == 0 and "kept local" in proc.stdout
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.2.0"  # hosts still see it
    status = json.loads(mvctl(reg.root, "status", "--json").stdout)
    assert status["tags"] == ["fraud#canary!#3"] and status["deletions"] == ["fraud@canary"]
    assert (
        "fraud@canary (stopped here: to be deleted on origin)" in mvctl(reg.root, "status").stdout
    )
    checked = mvctl(reg.root, "check")
    assert checked.returncode == 1 and "fraud@canary is still on origin" in checked.stdout
    dry = json.loads(mvctl(reg.root, "push", "--dry-run", "--json").stdout)
    assert dry["pushed"] == ["fraud#canary!#3", "fraud@canary"]
    assert "fraud@canary" in remote_tags(reg.origin)
    pushed = mvctl(reg.root, "push", "--json")
    assert pushed.returncode == 0, pushed.stderr
    assert "fraud@canary" not in remote_tags(reg.origin)
    assert stops_on(reg.origin) == ["fraud#canary!#3"]
    assert json.loads(mvctl(reg.root, "status", "--json").stdout)["deletions"] == []
    assert mvctl(reg.root, "check").returncode == 0


def test_a_retry_of_a_local_stop_publishes_it_instead_of_stopping_again(reg: Registry) -> None:
    stop(reg.root, "fraud", reason="bad", push=False)
    retry = mvctl(reg.root, *STOP, "--json")
    assert retry.returncode == 0, retry.stderr
    move = json.loads(retry.stdout)
    assert move["completed"] and move["event"] == "fraud#canary!#3"
    assert set(move["published"]) == {"fraud#canary!#3", "fraud@canary"}
    assert "fraud@canary" not in remote_tags(reg.origin)
    assert stops_on(reg.origin) == ["fraud#canary!#3"]
    done = mvctl(reg.root, *STOP)
    assert done.returncode == 0 and "stopped already" in done.stdout


def test_sync_follows_a_stop_made_elsewhere_and_keeps_one_made_here(
    reg: Registry, tmp_path: Path
) -> None:
    other = clone(reg, tmp_path, "other")
    stop(other, "fraud", reason="stopped over there")
    assert holder(reg.root) == "v0.2.0"  # this clone has not heard yet
    planned = sync(reg.root, dry_run=True)
    assert "fraud@canary" in planned.moved and holder(reg.root) == "v0.2.0"
    assert "fraud@canary" not in publish.status(reg.root).aliases  # not ours to push back
    result = sync(reg.root)
    assert "fraud@canary" in result.moved and "fraud#canary!#3" in result.created
    assert holder(reg.root) is None and check(reg.root).ok
    # A weight change on the stopped channel from a stale view is refused, not resurrected.
    assert mvctl(reg.root, "canary", "weight", "fraud", "30").returncode == 1
    assert "fraud@canary" not in remote_tags(reg.origin)
    # The reverse: stopped here, not yet published; sync keeps it stopped.
    promote(other, "fraud", "v0.3.0", "canary")  # a new tenure, #4, published
    sync(reg.root)
    assert holder(reg.root) == "v0.3.0"
    stop(reg.root, "fraud", reason="here", push=False)  # #5, local
    kept = sync(reg.root)
    assert kept.kept == ("fraud@canary",) and holder(reg.root) is None
    assert mvctl(reg.root, "push").returncode == 0
    fresh = clone(reg, tmp_path, "fresh")
    assert holder(fresh) is None and check(fresh).ok


def test_sync_discard_local_drops_an_unpublished_stop(reg: Registry) -> None:
    stop(reg.root, "fraud", reason="oops", push=False)
    result = sync(reg.root, discard_local=True)
    assert "fraud#canary!#3" in result.discarded
    assert holder(reg.root) == "v0.2.0" and "fraud#canary!#3" not in reg.tags()
    assert check(reg.root).ok


def test_a_stale_alias_pushed_back_over_a_stop_is_deleted_again(
    reg: Registry, tmp_path: Path
) -> None:
    stale = clone(reg, tmp_path, "stale")
    stop(reg.root, "fraud", reason="bad")
    run("git", "push", "-q", "--force", "origin", "fraud@canary", cwd=stale)  # a clumsy colleague
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.2.0"
    # A clone made now has the stale alias too: its sync takes the stop as the newest state.
    fresh = clone(reg, tmp_path, "fresh")
    assert not check(fresh, offline=True).ok  # the alias contradicts the newest event
    proc = mvctl(fresh, *STOP, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["completed"]
    assert "fraud@canary" not in remote_tags(reg.origin)
    assert stops_on(reg.origin) == ["fraud#canary!#3"]
    assert check(fresh).ok and holder(fresh) is None
    # ... and the clone that made the stop agrees.
    again = mvctl(reg.root, *STOP)
    assert again.returncode == 0 and "stopped already" in again.stdout
    assert check(reg.root).ok


def test_a_channel_is_emptied_by_a_stop_only_while_no_assignment_follows_it() -> None:
    here = ["fraud#canary#1", "fraud#canary!#2", "fraud#staging!#4", "fraud@canary"]
    there = ["fraud#canary#5", "refs/tags/other#canary!#3", "fraud#shadow#6", "fraud@v0.1.0"]
    assert tags.emptied_channels(here) == {("fraud", "canary"): 2, ("fraud", "staging"): 4}
    assert tags.emptied_channels(here, there) == {("fraud", "staging"): 4, ("other", "canary"): 3}
    # An assignment with the stop's own number is a collision of two clones, not a stop.
    assert tags.emptied_channels(["other#canary!#3"], ["other#canary#3"]) == {}
    assert tags.emptied_channels(["fraud#canary#1", "fraud@canary"], []) == {}


def lightweight(root: Path, alias: str) -> None:
    """Re-make ``alias`` as a lightweight tag on its own commit and force-push it, as
    `git tag -f M@C COMMIT` would (the commit is all such a tag says)."""
    commit = run("git", "rev-parse", f"{alias}^{{commit}}", cwd=root).stdout.strip()
    run("git", "tag", "-f", alias, commit, cwd=root)
    run("git", "push", "-q", "--force", "origin", f"refs/tags/{alias}", cwd=root)


def remote_commit(reg: Registry, ref: str) -> str:
    """The commit ``ref`` names on the remote (remote_holder reads annotated aliases only)."""
    return run("git", "rev-parse", f"{ref}^{{commit}}", cwd=reg.origin).stdout.strip()


def test_sync_keeps_a_lightweight_alias_on_the_newest_events_commit(reg: Registry) -> None:
    """Hostile finding 8: after a stop and a newer promotion, a lightweight alias (no body,
    so no event number) on that promotion's commit is the channel's state, not a leftover
    of the stop: sync keeps it, and nothing asks to delete it from the remote."""
    promote(reg.root, "fraud", "v0.1.0", "staging")  # fraud#staging#3
    stop(reg.root, "fraud", channel="staging", reason="test: stop")  # fraud#staging!#4
    promote(reg.root, "fraud", "v0.3.0", "staging")  # fraud#staging#5, after the stop
    lightweight(reg.root, "fraud@staging")
    assert check(reg.root).ok  # staging has no weight: its commit is all there is to agree on
    result = sync(reg.root)
    assert "fraud@staging" not in result.moved, "sync deleted it"
    assert holder(reg.root, "staging") == "v0.3.0"
    assert publish.status(reg.root).deletions == {}
    assert json.loads(mvctl(reg.root, "push", "--json").stdout)["pushed"] == []
    assert remote_commit(reg, "fraud@staging") == remote_commit(reg, "fraud@v0.3.0")
    assert check(reg.root).ok
    # The weighted canary too: sync keeps it; check says what its missing weight does.
    stop(reg.root, "fraud", reason="test: stop")  # fraud#canary!#6
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=20)  # fraud#canary#7
    lightweight(reg.root, "fraud@canary")
    sync(reg.root)
    assert holder(reg.root) == "v0.3.0" and "fraud@canary" in remote_tags(reg.origin)
    assert publish.status(reg.root).empty
    [problem] = check(reg.root).problems
    assert problem.startswith("fraud@canary is a lightweight tag, so it gives canary no weight")


def test_sync_brings_a_lightweight_alias_newer_than_a_stop_made_here(
    reg: Registry, tmp_path: Path
) -> None:
    """The other direction: this clone has the stop, the remote a newer promotion whose alias
    is lightweight. It is brought in, not held back as a deletion to push."""
    promote(reg.root, "fraud", "v0.1.0", "staging")  # #3
    stop(reg.root, "fraud", channel="staging", reason="test: stop")  # #4
    other = clone(reg, tmp_path, "other")
    promote(reg.root, "fraud", "v0.3.0", "staging")  # #5
    lightweight(reg.root, "fraud@staging")
    assert holder(other, "staging") is None
    result = sync(other)
    assert "fraud@staging" in result.moved and result.kept == ()
    assert holder(other, "staging") == "v0.3.0"
    assert publish.status(other).empty and check(other).ok
    assert remote_commit(reg, "fraud@staging") == remote_commit(reg, "fraud@v0.3.0")


def test_sync_orders_a_lightweight_alias_by_the_newest_assignment_on_its_commit(
    reg: Registry, tmp_path: Path
) -> None:
    """A lightweight alias names no event: it stands for the newest assignment of its
    channel on its commit. Taken for number 0, the remote's (here #4) lost to an older local
    one (#3), which the next publishing command would push back over it."""
    promote(reg.root, "fraud", "v0.1.0", "staging")  # #3
    other = clone(reg, tmp_path, "other")
    promote(reg.root, "fraud", "v0.3.0", "staging")  # #4
    lightweight(reg.root, "fraud@staging")
    result = sync(other)
    assert "fraud@staging" in result.moved and result.kept == ()
    assert holder(other, "staging") == "v0.3.0"
    assert publish.status(other).empty and check(other).ok
    # An unpublished move here is still newer than the remote's lightweight alias.
    promote(other, "fraud", "v0.2.0", "staging", push=False)  # #5, local
    assert sync(other).kept == ("fraud@staging",) and holder(other, "staging") == "v0.2.0"
    assert mvctl(other, "push").returncode == 0
    assert remote_commit(reg, "fraud@staging") == remote_commit(reg, "fraud@v0.2.0")


def test_an_alias_left_over_a_stop_is_stale_whatever_its_body_says(
    reg: Registry, tmp_path: Path
) -> None:
    """An alias is left over from a stop when no assignment is newer than the stop: a
    lightweight one, or one whose body claims a newer event than any (here number 99), is
    deleted by sync and its deletion on the remote is pending."""
    stale = clone(reg, tmp_path, "stale")
    stop(reg.root, "fraud", reason="bad")  # fraud#canary!#3, published
    for forged in ("lightweight", "counter 99"):
        if forged == "lightweight":
            lightweight(stale, "fraud@canary")
        else:
            message = tmp_path / "alias-message"
            message.write_text(
                'fraud@canary -> v0.2.0\n\n{"kind": "alias", "model": "fraud", "channel": '
                '"canary", "version": "v0.2.0", "event": "fraud#canary#99", "counter": 99, '
                '"weight": 20}\n'
            )
            at = "fraud@v0.2.0^{commit}"
            run("git", "tag", "-f", "-a", "-F", message, "fraud@canary", at, cwd=stale)
            run("git", "push", "-q", "--force", "origin", "refs/tags/fraud@canary", cwd=stale)
        assert remote_commit(reg, "fraud@canary") == remote_commit(reg, "fraud@v0.2.0"), forged
        fresh = clone(reg, tmp_path, f"fresh-{len(forged)}")
        assert holder(fresh) == "v0.2.0", forged
        result = sync(fresh)
        assert "fraud@canary" in result.moved and holder(fresh) is None, forged
        assert list(publish.status(fresh).deletions) == ["fraud@canary"], forged
        assert mvctl(fresh, "push").returncode == 0, forged
        assert "fraud@canary" not in remote_tags(reg.origin) and check(fresh).ok, forged


def test_a_stop_whose_number_someone_else_published_first_is_a_conflict(
    reg: Registry, tmp_path: Path
) -> None:
    other = clone(reg, tmp_path, "other")
    stop(reg.root, "fraud", reason="x", push=False)  # local #3
    set_weight(other, "fraud", 50)  # origin's #3: the same number
    theirs = remote_tags(reg.origin)
    proc = mvctl(reg.root, "push")
    assert proc.returncode == 4 and "sync --discard-local" in proc.stderr
    assert remote_tags(reg.origin) == theirs  # the canary still serves, at 50%
    retry = mvctl(reg.root, *STOP)
    assert retry.returncode == 4 and remote_tags(reg.origin) == theirs
    assert mvctl(reg.root, "sync", "--discard-local").returncode == 0
    assert holder(reg.root) == "v0.2.0" and "fraud#canary!#3" not in reg.tags()
    again = mvctl(reg.root, *STOP, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["event"] == "fraud#canary!#4"
    assert json.loads(again.stdout)["previous_weight"] == 50
    assert "fraud@canary" not in remote_tags(reg.origin)


def test_the_lease_holds_for_a_deletion_on_this_git(reg: Registry, tmp_path: Path) -> None:
    """git 2.39: `push --atomic --force-with-lease=REF:OLD origin EVENT :REF` is a compare-
    and-swap for a deletion too: a stale OLD refuses both refs."""
    git = GitRepo.open(reg.root)
    old = remote_tags(reg.origin)["fraud@canary"]
    reg.git("tag", "-a", "-m", "a stop", "fraud#canary!#9", "fraud@v0.2.0^{commit}")
    set_weight(clone(reg, tmp_path, "other"), "fraud", 50)  # the remote's alias moves on
    refspecs = ["refs/tags/fraud#canary!#9", ":refs/tags/fraud@canary"]
    with pytest.raises(Refused):
        git.push("origin", refspecs, leases={"refs/tags/fraud@canary": old})
    theirs = remote_tags(reg.origin)
    assert "fraud@canary" in theirs and "fraud#canary!#9" not in theirs  # neither landed
    git.push("origin", refspecs, leases={"refs/tags/fraud@canary": theirs["fraud@canary"]})
    theirs = remote_tags(reg.origin)
    assert "fraud@canary" not in theirs and "fraud#canary!#9" in theirs


# --- killed at every git step, then a retry ------------------------------------------------


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    real = shutil.which("git")
    assert real is not None
    directory = tmp_path / "shim"
    git_shim(directory, str(Path(real).resolve()))
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def _run(reg: Registry, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvctl", *args],
        cwd=reg.root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _git_calls(reg: Registry, tmp_path: Path, *args: str) -> int:
    probe = tmp_path / "probe"
    shutil.copytree(reg.root.parent, probe, symlinks=True)
    copy = Registry(probe / "repo", probe / "origin.git", probe / "dvc-storage")
    copy.git("remote", "set-url", "origin", str(copy.origin))
    counter = tmp_path / "count"
    proc = _run(copy, {"MVCTL_SHIM_COUNT": str(counter)}, *args)
    assert proc.returncode == 0, proc.stderr
    return int(counter.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["KILL", "TERM"])
def test_killed_at_every_git_step_a_retry_stops_exactly_once(
    reg: Registry, shim: Path, tmp_path: Path, signal: str
) -> None:
    steps = _git_calls(reg, tmp_path, *STOP)
    assert steps >= 4  # ls-remote, for-each-ref, update-ref, push at least
    pristine = tmp_path / "pristine"
    shutil.copytree(reg.root.parent, pristine, symlinks=True)
    for step in range(1, steps + 1):
        shutil.rmtree(reg.root.parent)
        shutil.copytree(pristine, reg.root.parent, symlinks=True)
        count = tmp_path / f"calls-{signal}-{step}"
        env = {"MVCTL_SHIM_AT": str(step), "MVCTL_SHIM_SIGNAL": signal}
        killed = _run(reg, {**env, "MVCTL_SHIM_COUNT": str(count)}, *STOP)
        assert int(count.read_text()) >= step
        if signal == "KILL":
            assert killed.returncode == -9, (step, killed.stderr)
        else:
            assert killed.returncode == 130, (step, killed.stderr)
            assert "interrupted" in killed.stderr and "Traceback" not in killed.stderr
        retry = mvctl(reg.root, *STOP)
        assert retry.returncode == 0, (step, retry.stderr)
        # Exactly one stop on the remote, no alias, and nothing else moved.
        assert stops_on(reg.origin) == ["fraud#canary!#3"], (step, remote_tags(reg.origin))
        assert "fraud@canary" not in remote_tags(reg.origin), step
        assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0", step
        assert check(reg.root).ok, (step, check(reg.root).problems)
        # ... and a push afterwards has nothing left to do.
        assert json.loads(mvctl(reg.root, "push", "--json").stdout)["pushed"] == [], step


@pytest.mark.slow
def test_killed_after_the_local_write_mvctl_push_completes_the_stop(
    reg: Registry, shim: Path
) -> None:
    killed = _run(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_WHEN": "before"}, *STOP)
    assert killed.returncode == -9
    assert "fraud@canary" in remote_tags(reg.origin)  # the fleet still has the canary
    proc = mvctl(reg.root, "push")
    assert proc.returncode == 0, proc.stderr
    assert "fraud@canary" not in remote_tags(reg.origin)
    assert stops_on(reg.origin) == ["fraud#canary!#3"]
    again = mvctl(reg.root, *STOP)
    assert again.returncode == 0 and "stopped already" in again.stdout
    assert stops_on(reg.origin) == ["fraud#canary!#3"]


# --- a stop racing a promotion --------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_a_stop_racing_a_promotion_has_one_winner_and_nothing_half_done(
    reg: Registry, tmp_path: Path, round_: int
) -> None:
    racers = [clone(reg, tmp_path, f"clone{i}") for i in range(2)]
    commands = [["canary", "stop", "fraud", "--reason", "race"],
                ["promote", "fraud", "v0.3.0", "--to", "canary", "--weight", "30"]]  # fmt: skip
    if round_ % 2:
        commands.reverse()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mvctl", *cmd, "--json"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd, cwd in zip(commands, racers, strict=True)
    ]
    won: list[str] = []
    for proc, cwd in zip(procs, racers, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 4), err
        if proc.returncode == 0:
            won.append(json.loads(out)["event"])
        else:
            # The loser left nothing of its own: its clone holds only the remote's events.
            local = channels.load(GitRepo.open(cwd), "fraud")
            theirs = remote_tags(reg.origin)
            assert all(e.name in theirs for e in local.events), err
            assert check(cwd).ok, check(cwd).problems
    assert won
    fresh = clone(reg, tmp_path, "fresh")
    state = channels.load(GitRepo.open(fresh), "fraud")
    assert {e.name for e in state.channel_events("canary")} == {"fraud#canary#2", *won}
    assert check(fresh).ok, check(fresh).problems
    newest = state.channel_events("canary")[-1]
    assert (state.holder("canary") is None) == (newest.kind == "stop")
