"""Channels: promote through gates, roll back, history, retire, mark-gold, check, sync,
races (locally and against one bare remote), and review by pull request."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.marks import mark_gold, retire
from mvctl.channels.promotion import promote, validate
from mvctl.channels.review import apply, propose
from mvctl.channels.rollback import rollback
from mvctl.channels.state import history
from mvctl.check import check
from mvctl.errors import OperationalError, PolicyError, UsageError
from mvctl.publishing.sync import sync
from mvctl.registry.read import show
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
    run,
)

GATES = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.90}
        - {metric: auc, max_drop: 0.01}
"""
AUCS = {"v0.1.0": 0.91, "v0.2.0": 0.85, "v0.3.0": 0.93}


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    """Three registered versions with production gates, built once and copied per test."""
    releases = (Release(weights=v.encode(), auc=auc, push=True) for v, auc in AUCS.items())
    return registry_factory(*releases, config=GATES)


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, publish=False)
    monkeypatch.chdir(registry.root)
    return registry


def holder(reg: Registry, channel: str = "production") -> str | None:
    return channels.load(GitRepo.open(reg.root), "fraud").holder(channel)


def test_promote_through_gates_override_and_roll_back_twice(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = promote(reg.root, "fraud", "v0.1.0", "production", reason="launch")
    assert (first.kind, first.previous, first.event) == ("promote", None, "fraud#production#1")
    assert first.gates is not None and first.gates.passed

    tags_before = reg.tags()
    with pytest.raises(PolicyError, match=r"auc >= 0\.9"):
        promote(reg.root, "fraud", "v0.2.0", "production")
    assert reg.tags() == tags_before  # refused: nothing written
    with pytest.raises(UsageError, match="--reason"):
        promote(reg.root, "fraud", "v0.2.0", "production", force=True)

    forced = promote(reg.root, "fraud", "v0.2.0", "production", force=True, reason="hotfix")
    assert forced.kind == "override"
    assert [r.ok for r in forced.gates.results] == [False, False]  # type: ignore[union-attr]
    third = promote(reg.root, "fraud", "v0.3.0", "production")
    assert third.previous == "v0.2.0" and holder(reg) == "v0.3.0"

    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T12:00:00+00:00")
    back = rollback(reg.root, "fraud", reason="false positives up")
    assert (back.previous, back.version) == ("v0.3.0", "v0.2.0")  # v0.2.0 was replaced: gold
    retried = rollback(reg.root, "fraud", reason="still bad")  # right after: a retry
    assert not retried.changed and "retry" in retried.note and holder(reg) == "v0.2.0"
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T12:30:00+00:00")
    again = rollback(reg.root, "fraud", reason="still bad")
    assert (again.previous, again.version) == ("v0.2.0", "v0.1.0")  # v0.3.0 is bad now
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T13:00:00+00:00")
    with pytest.raises(PolicyError, match="rolled back away from"):
        rollback(reg.root, "fraud", reason="once more")
    assert holder(reg) == "v0.1.0"

    events = history(reg.root, "fraud")
    assert [(e.kind, e.previous, e.version, e.reason) for e in events] == [
        ("promote", None, "v0.1.0", "launch"),
        ("override", "v0.1.0", "v0.2.0", "hotfix"),
        ("promote", "v0.2.0", "v0.3.0", ""),
        ("rollback", "v0.3.0", "v0.2.0", "false positives up"),
        ("rollback", "v0.2.0", "v0.1.0", "still bad"),
    ]
    assert all(e.actor == "Ada Tester <ada@example.com>" for e in events)
    assert events[1].gates[0]["ok"] is False
    assert check(reg.root).ok
    assert show(reg.root, "fraud@production").info.version == "v0.1.0"


@pytest.mark.slow
def test_gto_and_dvc_agree_with_the_alias(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GTO orders events by tag time (one-second resolution): give each event its own second
    # through git's own clock rather than sleeping.
    for second, (action, version) in enumerate(
        [("promote", "v0.1.0"), ("promote", "v0.3.0"), ("rollback", "v0.1.0")]
    ):
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-01-01T00:00:{second:02d}+00:00")
        if action == "promote":
            promote(reg.root, "fraud", version, "production", push=True)
        else:
            rollback(reg.root, "fraud", to=version, reason="drift", push=True)
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    ours = show(reg.root, "fraud@production").info.version
    assert ours == "v0.1.0"
    gto = json.loads(run("gto", "show", "fraud#production", "--json", cwd=reg.root).stdout)
    assert [v["version"] for v in gto] == [ours]  # GTO sees production on v0.1.0 alone
    out = tmp_path / "got"
    out.mkdir()
    run("dvc", "artifacts", "get", str(reg.origin), "fraud", "--stage", "production", cwd=out)
    assert (out / "model.bin").read_bytes() == ours.encode()


def test_rollback_refusals_and_explicit_targets(reg: Registry) -> None:
    with pytest.raises(PolicyError, match="holds no version"):
        rollback(reg.root, "fraud", reason="x")
    promote(reg.root, "fraud", "v0.1.0", "production")
    with pytest.raises(PolicyError, match="held no other version"):
        rollback(reg.root, "fraud", reason="x")
    with pytest.raises(UsageError, match="--reason"):
        rollback(reg.root, "fraud", reason=" ", to="v0.2.0")
    promote(reg.root, "fraud", "v0.2.0", "production", force=True, reason="hotfix")
    promote(reg.root, "fraud", "v0.3.0", "production")
    # A human chooses among the versions the channel served: no gates, even for a version
    # that fails them (v0.2.0's auc is under the production gate).
    moved = rollback(reg.root, "fraud", reason="known good", to="v0.2.0")
    assert moved.version == "v0.2.0" and moved.kind == "rollback"
    tags_before = reg.tags()
    assert not rollback(reg.root, "fraud", reason="x", to="v0.2.0").changed  # idempotent
    assert reg.tags() == tags_before
    with pytest.raises(OperationalError, match=r"no version v9\.9\.9"):
        rollback(reg.root, "fraud", reason="x", to="v9.9.9")


def test_mark_gold_and_retire(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "staging")
    promote(reg.root, "fraud", "v0.3.0", "staging")
    rollback(reg.root, "fraud", channel="staging", reason="try v1")
    promote(reg.root, "fraud", "v0.2.0", "staging")
    # v0.1.0 was replaced by a promotion: gold. v0.3.0 was rolled back from: bad.
    assert (
        rollback(reg.root, "fraud", channel="staging", reason="r", dry_run=True).version == "v0.1.0"
    )
    with pytest.raises(PolicyError, match="held by staging"):
        retire(reg.root, "fraud", "v0.2.0")
    retired = retire(reg.root, "fraud", "v0.1.0", reason="leaks PII")
    assert retired.tag == "fraud@v0.1.0!"
    with pytest.raises(PolicyError, match="no version to roll"):
        rollback(reg.root, "fraud", channel="staging", reason="r")
    with pytest.raises(PolicyError, match="deregistered"):
        promote(reg.root, "fraud", "v0.1.0", "canary")
    # Vouching for the bad one by hand makes it a target again.
    mark_gold(reg.root, "fraud", "v0.3.0", reason="root cause fixed upstream")
    assert rollback(reg.root, "fraud", channel="staging", reason="r").version == "v0.3.0"
    assert check(reg.root).ok
    # GTO still reads the registry with the deregistration and gold tags in it.
    shown = json.loads(run("gto", "show", "fraud", "--json", cwd=reg.root).stdout)
    assert {v["version"] for v in shown} >= {"v0.2.0", "v0.3.0"}


def test_promote_same_version_is_a_no_op_and_unknown_channel_refused(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "staging")
    tags_before = reg.tags()
    again = promote(reg.root, "fraud", "v0.1.0", "staging")
    assert not again.changed and reg.tags() == tags_before
    with pytest.raises(UsageError, match="unknown channel"):
        promote(reg.root, "fraud", "v0.1.0", "prod")
    with pytest.raises(UsageError):
        promote(reg.root, "fraud", "v0.1.0", "--force")


def test_validate_reports_without_moving(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.3.0", "production")
    report = validate(reg.root, "fraud", "v0.1.0", "production")
    assert report.holder == "v0.3.0"
    assert [r.ok for r in report.results] == [True, False]  # min ok; drop of 0.02 > 0.01
    assert holder(reg) == "v0.3.0"
    proc = mvctl(
        reg.root, "validate", "fraud", "v0.1.0", "--channel", "production", "-f", "markdown"
    )
    assert proc.returncode == 1
    assert "| auc drops at most 0.01 | ❌ **fail** |" in proc.stdout
    assert "### fraud: `v0.3.0` → `v0.1.0`" in proc.stdout  # the diff against the holder
    ok = mvctl(reg.root, "validate", "fraud", "v0.3.0", "--channel", "production", "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["passed"] is True


def test_check_finds_an_alias_moved_by_hand(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production")
    reg.git("tag", "-f", "-a", "-m", "by hand", "fraud@production", "fraud@v0.2.0^{commit}")
    report = check(reg.root)
    assert not report.ok
    assert any("newest event fraud#production#1" in p for p in report.problems)
    proc = mvctl(reg.root, "check")
    assert proc.returncode == 1
    assert "newest event" in proc.stdout


def _race(commands: list[list[str]], cwds: list[Path]) -> list[str | None]:
    """Run the commands at once; each must succeed or exit 4. Returns, per command, the
    event it wrote, "" if it had nothing to do (already there), None if it lost a race."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mvctl", *cmd, "--json"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd, cwd in zip(commands, cwds, strict=True)
    ]
    results: list[str | None] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 4), err
        if proc.returncode == 4:
            assert "changed by someone else" in err or "refused the push" in err
            results.append(None)
        else:
            move = json.loads(out)
            results.append(move["event"] if move["changed"] else "")
    return results


@pytest.mark.slow
def test_local_race_every_command_succeeds_or_exits_4(reg: Registry) -> None:
    for version in ("v0.1.0", "v0.2.0", "v0.3.0"):  # every version served staging: gold
        promote(reg.root, "fraud", version, "staging", push=False)
    # Rollbacks all go to v0.1.0, which nothing rolls back away from: each racer's move
    # stays allowed whatever the others did first.
    targets = ["v0.1.0", "v0.3.0", "v0.1.0", "v0.2.0", "v0.1.0", "v0.3.0"]
    commands = [
        ["promote", "fraud", v, "--to", "staging", "--local"]
        if i % 2
        else ["rollback", "fraud", "-c", "staging", "--to", v, "--reason", "race", "--local"]
        for i, v in enumerate(targets)
    ]
    written = _race(commands, [reg.root] * len(commands))
    assert any(written)
    assert check(reg.root, offline=True).ok
    state = channels.load(GitRepo.open(reg.root), "fraud")
    # Exactly the events the winners wrote (plus the first promotions): none orphaned.
    first = {"fraud#staging#1", "fraud#staging#2", "fraud#staging#3"}
    assert {e.name for e in state.events} == first | {w for w in written if w}


@pytest.mark.slow
def test_remote_race_against_one_bare_remote(reg: Registry, tmp_path: Path) -> None:
    clones = []
    for i in range(5):
        clone = tmp_path / f"clone{i}"
        run("git", "clone", "-q", str(reg.origin), clone, cwd=tmp_path)
        clones.append(clone)
    targets = ["v0.1.0", "v0.2.0", "v0.3.0", "v0.2.0", "v0.1.0"]
    commands = [["promote", "fraud", v, "--to", "canary", "--push"] for v in targets]
    written = _race(commands, clones)
    assert any(written)
    fresh = tmp_path / "fresh"
    run("git", "clone", "-q", str(reg.origin), fresh, cwd=tmp_path)
    assert check(fresh).ok
    state = channels.load(GitRepo.open(fresh), "fraud")
    # The remote holds exactly the winners' events. Two racers asking for the same move in
    # the same second write byte-identical tags, so both succeed with one event between them.
    assert {e.name for e in state.channel_events("canary")} == {w for w in written if w}
    # Each loser left nothing behind locally either.
    for clone, result in zip(clones, written, strict=True):
        local = channels.load(GitRepo.open(clone), "fraud")
        if result is None:
            assert all(e.name in {x.name for x in state.events} for e in local.events)
            assert check(clone).ok


def test_push_conflict_is_exit_4_and_leaves_nothing(reg: Registry, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), other, cwd=tmp_path)
    promote(reg.root, "fraud", "v0.1.0", "staging", push=True)
    # The other clone decides from the remote's state, so it sees v0.1.0 and wins cleanly.
    assert promote(other, "fraud", "v0.3.0", "staging", push=True).previous == "v0.1.0"
    # Our local alias is now stale; a push makes us sync first and then succeed on top.
    moved = promote(reg.root, "fraud", "v0.2.0", "staging", push=True)
    assert (moved.previous, moved.event) == ("v0.3.0", "fraud#staging#3")
    assert git(reg.origin, "rev-parse", "fraud@staging^{commit}") == git(
        reg.origin, "rev-parse", "fraud@v0.2.0^{commit}"
    )


def test_sync_moves_aliases_only_forward(reg: Registry, tmp_path: Path) -> None:
    other = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), other, cwd=tmp_path)
    promote(other, "fraud", "v0.1.0", "shadow", push=True)
    promote(other, "fraud", "v0.3.0", "shadow", push=True)
    tags_before = reg.tags()
    planned = sync(reg.root, dry_run=True)
    assert "fraud@shadow" in planned.moved and reg.tags() == tags_before
    result = sync(reg.root)
    assert "fraud@shadow" in result.moved and "fraud#shadow#2" in result.created
    assert holder(reg, "shadow") == "v0.3.0"
    # A newer local, unpushed move is kept.
    rollback(reg.root, "fraud", channel="shadow", to="v0.1.0", reason="local", push=False)
    kept = sync(reg.root)
    assert kept.kept == ("fraud@shadow",) and holder(reg, "shadow") == "v0.1.0"
    assert not GitRepo.open(reg.root).refs("refs/mvctl/")
    assert check(reg.root, offline=True).ok
    # ... and check says what the fleet does not see yet.
    problems = check(reg.root).problems
    assert any(p.startswith("fraud#shadow#3 is not on origin") for p in problems)
    assert any(p.startswith("fraud@shadow on origin is behind") for p in problems)


def test_review_by_pull_request(reg: Registry) -> None:
    text = (
        (reg.root / "mvctl.yaml")
        .read_text()
        .replace("    gates:", "    review: [production]\n    gates:")
    )
    reg.write("mvctl.yaml", text)
    reg.git("commit", "-q", "-am", "Production needs review")
    with pytest.raises(PolicyError, match="need a reviewed request"):
        promote(reg.root, "fraud", "v0.1.0", "production")

    head = reg.git("rev-parse", "HEAD")
    status = reg.status()
    proposal = propose(reg.root, "fraud", "v0.1.0", "production", reason="launch")
    assert reg.git("rev-parse", "HEAD") == head and reg.status() == status  # work tree untouched
    files = reg.git("show", "--name-only", "--format=", proposal.branch).split()
    assert files == [proposal.path.removesuffix(".yaml") + ".md", proposal.path]
    report = reg.git("show", f"{proposal.branch}:{proposal.path.removesuffix('.yaml')}.md")
    assert "all gates pass" in report

    # Not merged yet: apply performs nothing.
    assert apply(reg.root) == []
    reg.git("merge", "-q", "--no-ff", "--no-edit", proposal.branch)
    [done] = apply(reg.root)
    assert done.status == "performed" and holder(reg) == "v0.1.0"
    [again] = apply(reg.root)
    assert again.status == "already"
    [event] = history(reg.root, "fraud", "production")
    assert event.request == proposal.request_id
    assert event.reason == f"request {proposal.request_id}: launch"
    # Rollback never waits for review.
    promote_v3 = propose(reg.root, "fraud", "v0.3.0", "production")
    reg.git("merge", "-q", "--no-ff", "--no-edit", promote_v3.branch)
    outcomes = {o.request_id: o.status for o in apply(reg.root)}
    assert outcomes == {proposal.request_id: "already", promote_v3.request_id: "performed"}
    assert rollback(reg.root, "fraud", reason="incident").version == "v0.1.0"


def test_apply_refuses_a_request_that_fails_its_gates(reg: Registry) -> None:
    reg.write("mvctl.yaml", GATES.replace("    gates:", "    review: [production]\n    gates:"))
    reg.git("commit", "-q", "-am", "review")
    bad = propose(reg.root, "fraud", "v0.2.0", "production")
    assert not bad.report.passed
    reg.git("merge", "-q", "--no-edit", bad.branch)
    proc = mvctl(reg.root, "apply")
    assert proc.returncode == 1
    assert "refused" in proc.stdout
    assert holder(reg) is None


def test_cli_promote_rollback_history_json(reg: Registry) -> None:
    out = mvctl(reg.root, "promote", "fraud", "v0.1.0", "--to", "production", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["event"] == "fraud#production#1"
    refused = mvctl(reg.root, "promote", "fraud", "v0.2.0", "--to", "production")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: fraud v0.2.0 failed the production gates")
    missing_reason = mvctl(reg.root, "rollback", "fraud")
    assert missing_reason.returncode == 2
    forced = mvctl(
        reg.root, "promote", "fraud", "v0.2.0", "--to", "production", "--force", "--reason", "ok"
    )
    assert forced.returncode == 0 and "gates overridden" in forced.stdout
    back = mvctl(reg.root, "rollback", "fraud", "--reason", "incident 42")
    assert back.returncode == 0 and "v0.2.0 → v0.1.0" in back.stdout
    events = json.loads(mvctl(reg.root, "history", "fraud", "--json").stdout)["events"]
    assert [e["kind"] for e in events] == ["promote", "override", "rollback"]
    table = mvctl(reg.root, "history", "fraud").stdout
    assert "incident 42" in table
    assert "production=v0.1.0" in mvctl(reg.root, "list").stdout


def _moving_remote_shim(directory: Path, mark: Path, winner: Path, move: list[str]) -> Path:
    """A ``git`` first on PATH that, at its first ``fetch``, lets ``winner`` publish ``move``
    before the fetch runs: the remote changes between the listing a sync took and its fetch."""
    real = shutil.which("git")
    assert real is not None
    directory.mkdir()
    inner = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "mvctl", *move])
    shim = directory / "git"
    shim.write_text(
        f"""#!/bin/sh
if {{ [ "$1" = fetch ] || [ "$3" = fetch ]; }} && [ ! -e {shlex.quote(str(mark))} ]; then
  : > {shlex.quote(str(mark))}
  (cd {shlex.quote(str(winner))} && {inner} > /dev/null) || exit 99
fi
exec {shlex.quote(str(Path(real).resolve()))} "$@"
"""
    )
    shim.chmod(0o755)
    return directory


def _lose_a_race_at_the_fetch(
    reg: Registry, tmp_path: Path, racer: list[str]
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Two clones; the winner promotes v0.1.0 to canary, then the loser promotes v0.3.0 there
    while the winner runs ``racer`` between the loser's listing of the remote and its fetch.
    Returns the loser's clone and its promote (a real subprocess, as a user runs it)."""
    winner, loser = tmp_path / "winner", tmp_path / "loser"
    for clone in (winner, loser):
        run("git", "clone", "-q", str(reg.origin), clone, cwd=tmp_path)
    promote(winner, "fraud", "v0.1.0", "canary", push=True)
    shim = _moving_remote_shim(tmp_path / "shim", tmp_path / "moved", winner, racer)
    argv = ["promote", "fraud", "v0.3.0", "--to", "canary", "--push", "--json"]
    result = subprocess.run(
        [sys.executable, "-m", "mvctl", *argv],
        cwd=loser,
        env={**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (tmp_path / "moved").exists()  # the racer did move in between
    return loser, result


def test_a_remote_moving_between_listing_and_fetch_leaves_every_clone_consistent(
    reg: Registry, tmp_path: Path
) -> None:
    # The reproduction of the flaky race above: the loser's sync listed the remote (the
    # winner's first move), the winner moved again, and the fetch took the newer alias without
    # its event. The loser then decided on an alias whose event it lacked.
    racer = ["promote", "fraud", "v0.2.0", "--to", "canary", "--push", "--json"]
    loser, result = _lose_a_race_at_the_fetch(reg, tmp_path, racer)
    assert result.returncode == 0, result.stderr  # it read the remote again, and decided on that
    assert check(loser).ok, check(loser).problems
    fresh = tmp_path / "fresh"
    run("git", "clone", "-q", str(reg.origin), fresh, cwd=tmp_path)
    assert check(fresh).ok, check(fresh).problems
    names = [e.name for e in channels.load(GitRepo.open(fresh), "fraud").channel_events("canary")]
    assert names == ["fraud#canary#1", "fraud#canary#2", "fraud#canary#3"]
    move = json.loads(result.stdout)
    assert (move["previous"], move["event"]) == ("v0.2.0", "fraud#canary#3")


def test_a_remote_alias_without_its_event_is_read_a_bounded_number_of_times(
    reg: Registry, tmp_path: Path
) -> None:
    # The same shape as a torn reading, but for good: sync reads again a few times, then takes
    # the remote as it is, and check names what is missing.
    promote(reg.root, "fraud", "v0.1.0", "canary", push=True)
    git(reg.origin, "tag", "-d", "fraud#canary#1")
    other = tmp_path / "other"
    run("git", "clone", "-q", "--no-tags", str(reg.origin), other, cwd=tmp_path)
    result = sync(other)
    assert "fraud@canary" in result.moved and "fraud#canary#1" not in result.created
    assert "fraud@canary has no assignment event" in check(other).problems


def _counting_shim(directory: Path, log: Path) -> str:
    """A ``git`` first on PATH that writes each call's arguments to ``log``, then runs git."""
    real = shutil.which("git")
    assert real is not None
    directory.mkdir()
    shim = directory / "git"
    shim.write_text(
        f"""#!/bin/sh
echo "$*" >> {shlex.quote(str(log))}
exec {shlex.quote(str(Path(real).resolve()))} "$@"
"""
    )
    shim.chmod(0o755)
    return f"{directory}{os.pathsep}{os.environ['PATH']}"


def test_a_remote_alias_without_its_event_costs_one_more_reading_not_four(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An alias whose event the remote lacks for good (deleted by hand, or a body pushed with
    # a made-up name) reads the same every time: a second reading identical to the first is
    # the remote's state, not a racer's push. Read four times, it made every sync, and every
    # --push move, pay four listings of the remote.
    promote(reg.root, "fraud", "v0.1.0", "canary", push=True)
    git(reg.origin, "tag", "-d", "fraud#canary#1")
    other = tmp_path / "other"
    run("git", "clone", "-q", "--no-tags", str(reg.origin), other, cwd=tmp_path)
    log = tmp_path / "git-calls"
    monkeypatch.setenv("PATH", _counting_shim(tmp_path / "shim", log))
    for _ in range(2):  # the sync that brings the alias, then one with nothing new
        log.write_text("")
        result = sync(other)
        listings = [c for c in log.read_text().splitlines() if "ls-remote" in c]
        assert len(listings) == 2, listings
    assert result.moved == () and "fraud@canary" in result.remote_objects
    assert "fraud@canary has no assignment event" in check(other).problems
    assert not git(other, "for-each-ref", "refs/mvctl/")


def test_a_remote_moving_back_between_readings_leaves_no_sync_refs(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The remote's alias is re-written (a2), and put back (a1, the clone's own) between the
    # first listing and its fetch: the fetch takes a1, not what was listed, so the remote is
    # read again, and the second reading has nothing to fetch. The first fetch's refs under
    # refs/mvctl/sync/ were left behind: only a fetch deleted them.
    promote(reg.root, "fraud", "v0.1.0", "canary", push=True)
    mine = git(reg.root, "rev-parse", "refs/tags/fraud@canary").strip()
    commit = git(reg.root, "rev-parse", "fraud@canary^{commit}").strip()
    git(reg.origin, "tag", "-f", "-a", "-m", "re-written", "fraud@canary", commit)
    assert git(reg.origin, "rev-parse", "refs/tags/fraud@canary").strip() != mine
    real = shutil.which("git")
    assert real is not None
    shim, mark = tmp_path / "shim", tmp_path / "moved"
    shim.mkdir()
    put_back = shlex.join(
        [real, "--git-dir", str(reg.origin), "update-ref", "refs/tags/fraud@canary", mine]
    )
    (shim / "git").write_text(
        f"""#!/bin/sh
if {{ [ "$1" = fetch ] || [ "$3" = fetch ]; }} && [ ! -e {shlex.quote(str(mark))} ]; then
  : > {shlex.quote(str(mark))}
  {put_back} || exit 99
fi
exec {shlex.quote(real)} "$@"
"""
    )
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    result = sync(reg.root)
    assert mark.exists()  # the remote did move back in between
    assert result.remote_objects["fraud@canary"] == mine and not result.moved
    assert not git(reg.root, "for-each-ref", "refs/mvctl/")


def test_a_remote_deleting_a_listed_alias_before_the_fetch_is_read_again(
    reg: Registry, tmp_path: Path
) -> None:
    # The racer stops the channel (its alias deleted on the remote) between the loser's
    # listing and its fetch: the fetch asks for a ref the remote no longer has. A race like
    # a racer's newer alias, read again, not a failed move.
    racer = ["unassign", "fraud", "--channel", "canary", "--reason", "done", "--push", "--json"]
    loser, result = _lose_a_race_at_the_fetch(reg, tmp_path, racer)
    assert result.returncode == 0, result.stderr
    assert check(loser).ok, check(loser).problems
    move = json.loads(result.stdout)
    assert (move["previous"], move["event"]) == (None, "fraud#canary#3")
