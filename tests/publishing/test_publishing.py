"""The panic button never lies: every move reaches the remote the fleet follows (or says it
did not), a retry of an interrupted move completes it instead of taking another step, and
SIGTERM/SIGKILL at any git step leave the old or the new state on both sides.

Each test starts from a reproduction that failed before the fix (issue: "the panic button
must never lie"); remotes are real bare repositories, and kills come from a git shim first
on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.check import check
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import (
    Registry,
    build_template,
    copy_registry,
    git,
    git_shim,
    isolate,
    mvctl,
    remote_holder,
    remote_tags,
    run,
)

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.80}
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("publishing-template")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        reg = build_template(base, CONFIG, {"v0.1.0": 0.91, "v0.2.0": 0.92, "v0.3.0": 0.93})
        for version in ("v0.1.0", "v0.2.0", "v0.3.0"):  # each replaced in turn: all gold
            promote(reg.root, "fraud", version, "production")
    yield base


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def events_on(origin: Path, channel: str = "production") -> list[str]:
    return sorted(n for n in remote_tags(origin) if n.startswith(f"fraud#{channel}#"))


def clone(reg: Registry, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    run("git", "clone", "-q", str(reg.origin), path, cwd=tmp_path)
    return path


# --- 1. one rule for publishing ----------------------------------------------------------


def test_readme_rollback_reaches_the_remote_and_a_host(reg: Registry, tmp_path: Path) -> None:
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "false positives doubled")
    assert proc.returncode == 0, proc.stderr
    assert "published to origin" in proc.stdout
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    host = tmp_path / "host"
    pulled = mvctl(tmp_path, "pull", str(reg.origin), "fraud", "--channel", "production",
                   "--dest", str(host))  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads((host / "state.json").read_text())["version"] == "v0.2.0"


def test_local_move_says_so_and_push_publishes_it_once(reg: Registry) -> None:
    before = remote_tags(reg.origin)
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "try", "--local")
    assert proc.returncode == 0, proc.stderr
    assert "kept local" in proc.stdout and "mvctl push" in proc.stdout
    assert remote_tags(reg.origin) == before  # hosts see nothing
    status = json.loads(mvctl(reg.root, "status", "--json").stdout)
    assert status["tags"] == ["fraud#production#4"] and status["aliases"] == ["fraud@production"]
    checked = mvctl(reg.root, "check")
    assert checked.returncode == 1 and "fraud#production#4 is not on origin" in checked.stdout
    # Running it again publishing (the reproduction rolled back a second step) publishes the
    # rollback it already made, and nothing more.
    again = mvctl(reg.root, "rollback", "fraud", "--reason", "try", "--push", "--json")
    assert again.returncode == 0, again.stderr
    move = json.loads(again.stdout)
    assert move["completed"] and move["version"] == "v0.2.0" and move["event"].endswith("#4")
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert events_on(reg.origin)[-1] == "fraud#production#4"
    pushed = mvctl(reg.root, "push", "--json")
    assert json.loads(pushed.stdout)["pushed"] == []  # nothing left pending
    assert mvctl(reg.root, "check").returncode == 0


def test_mvctl_push_publishes_what_local_moves_left(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "staging", push=False)
    promote(reg.root, "fraud", "v0.2.0", "canary", push=False)
    assert "fraud@staging" not in remote_tags(reg.origin)
    dry = json.loads(mvctl(reg.root, "push", "--dry-run", "--json").stdout)
    assert set(dry["pushed"]) == {"fraud#staging#4", "fraud#canary#5", "fraud@staging",
                                  "fraud@canary"}  # fmt: skip
    assert "fraud@staging" not in remote_tags(reg.origin)
    proc = mvctl(reg.root, "push")
    assert proc.returncode == 0 and "published 4 tag(s)" in proc.stdout
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.2.0"
    assert json.loads(mvctl(reg.root, "status", "--json").stdout)["tags"] == []


def test_push_never_keeps_moves_local(reg: Registry) -> None:
    reg.write("mvctl.yaml", CONFIG + "push: never\n")
    reg.git("commit", "-q", "-am", "Keep moves local")
    move = promote(reg.root, "fraud", "v0.1.0", "staging")
    assert not move.pushed and move.remote is None
    assert "fraud@staging" not in remote_tags(reg.origin)
    assert promote(reg.root, "fraud", "v0.2.0", "staging", push=True).pushed  # explicit wins


def test_a_registry_without_a_remote_keeps_moves_local(reg: Registry) -> None:
    reg.git("remote", "remove", "origin")
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "offline box")
    assert proc.returncode == 0, proc.stderr
    assert "kept local" in proc.stdout
    refused = mvctl(reg.root, "rollback", "fraud", "--to", "v0.1.0", "--reason", "x", "--push")
    assert refused.returncode == 2 and "no git remote" in refused.stderr


def test_register_publishes_the_versions_it_depends_on(reg: Registry, tmp_path: Path) -> None:
    reg.train(weights=b"v4", auc=0.94)
    request = RegisterRequest(
        model="fraud",
        cwd=reg.root,
        weights="models/model.bin",
        data=("data/train.csv",),
        metrics_file="metrics.json",
    )
    local = register(RegisterRequest(**{**request.__dict__, "push": False}))
    assert not local.pushed and "fraud@v0.4.0" not in remote_tags(reg.origin)
    reg.train(weights=b"v5", auc=0.95)
    published = register(request)
    assert published.pushed and published.manifest.parent == "v0.4.0"
    assert {"fraud@v0.4.0", "fraud@v0.5.0"} <= set(published.published)
    fresh = clone(reg, tmp_path, "fresh")
    assert check(fresh).ok


def test_check_in_a_clone_names_what_was_never_pushed(reg: Registry, tmp_path: Path) -> None:
    # The old behaviour, by hand: a version and an event made locally, later ones pushed
    # alone. A clone of that remote must not be called consistent.
    promote(reg.root, "fraud", "v0.1.0", "staging", push=False)  # event 4, never pushed
    promote(reg.root, "fraud", "v0.2.0", "staging", push=False)  # event 5
    reg.train(weights=b"v4", auc=0.94)
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="models/model.bin",
                             data=("data/train.csv",), push=False))  # fmt: skip
    reg.train(weights=b"v5", auc=0.95)
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="models/model.bin",
                             data=("data/train.csv",), push=False))  # fmt: skip
    reg.git("push", "-q", "origin", "main", "fraud@v0.5.0", "fraud#staging#5", "fraud@staging")
    fresh = clone(reg, tmp_path, "fresh")
    problems = check(fresh).problems
    assert any("fraud@v0.5.0 names parent v0.4.0, which is not registered" in p for p in problems)
    assert any("assignment event(s) 4 are missing" in p for p in problems)
    assert not check(reg.root, offline=True).problems  # the original clone has it all
    online = check(reg.root).problems
    assert any(p.startswith("fraud@v0.4.0 is not on origin") for p in online)


def test_check_in_a_tagless_clone_says_the_tags_are_missing(reg: Registry, tmp_path: Path) -> None:
    # A CI checkout: the commits and manifests, no tags. It is neither "consistent, 0
    # models" nor one interrupted registration per manifest.
    fresh = tmp_path / "ci-checkout"
    run("git", "clone", "-q", "--no-tags", reg.origin, fresh, cwd=tmp_path)
    assert git(fresh, "tag") == ""
    done = mvctl(fresh, "check")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no registry tags, but manifests of fraud" in done.stderr
    assert "git fetch --force --tags origin" in done.stderr and "--resume" not in done.stderr
    run("git", "fetch", "-q", "--force", "--tags", "origin", cwd=fresh)
    assert mvctl(fresh, "check").returncode == 0


def test_sync_discard_local_takes_the_remotes_channel_tags(reg: Registry, tmp_path: Path) -> None:
    promote(reg.root, "fraud", "v0.1.0", "staging", push=False)  # local event 4
    other = clone(reg, tmp_path, "other")
    promote(other, "fraud", "v0.2.0", "staging")  # origin's event 4
    # Moving staging over it is refused; another channel is published without it.
    refused = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "staging")
    assert refused.returncode == 4 and "sync --discard-local" in refused.stderr
    canary = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "canary")
    assert canary.returncode == 0, canary.stderr
    assert "not published: fraud#staging#4" in canary.stdout
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.3.0"
    proc = mvctl(reg.root, "sync", "--discard-local")
    assert proc.returncode == 0 and "discarded" in proc.stdout
    assert channels.load(GitRepo.open(reg.root), "fraud").holder("staging") == "v0.2.0"
    assert mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "staging").returncode == 0
    assert check(reg.root).ok


# --- 2. interrupted pushes can always be completed ------------------------------------------


@pytest.fixture
def shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    real = shutil.which("git")
    assert real is not None
    directory = tmp_path / "shim"
    git_shim(directory, str(Path(real).resolve()))
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")
    return directory


def _killed(reg: Registry, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mvctl", *args],
        cwd=reg.root,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.slow
def test_sigkill_before_the_push_then_retry_with_to_completes(reg: Registry, shim: Path) -> None:
    killed = _killed(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_WHEN": "before"},
                     "rollback", "fraud", "--to", "v0.2.0", "--reason", "bad")  # fmt: skip
    assert killed.returncode == -9
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"  # not published
    # The reproduction answered "already holds v0.2.0" and pushed nothing.
    retry = mvctl(reg.root, "rollback", "fraud", "--to", "v0.2.0", "--reason", "bad", "--json")
    assert retry.returncode == 0, retry.stderr
    assert json.loads(retry.stdout)["completed"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert events_on(reg.origin) == [f"fraud#production#{n}" for n in (1, 2, 3, 4)]


@pytest.mark.slow
def test_sigkill_before_the_push_then_plain_retry_takes_no_further_step(
    reg: Registry, shim: Path
) -> None:
    killed = _killed(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_WHEN": "before"},
                     "rollback", "fraud", "--reason", "bad")  # fmt: skip
    assert killed.returncode == -9
    # The reproduction rolled the remote back two versions and marked v0.2.0 bad.
    retry = mvctl(reg.root, "rollback", "fraud", "--reason", "bad")
    assert retry.returncode == 0, retry.stderr
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    state = channels.load(GitRepo.open(reg.root), "fraud")
    assert state.standing("production") == {"v0.1.0": "gold", "v0.2.0": "gold", "v0.3.0": "bad"}
    assert len(events_on(reg.origin)) == 4


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["TERM", "INT"])
def test_sigterm_before_the_push_leaves_the_old_state_on_both_sides(
    reg: Registry, shim: Path, signal: str
) -> None:
    before_local, before_remote = reg.tags(), remote_tags(reg.origin)
    proc = _killed(
        reg,
        {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_WHEN": "before", "MVCTL_SHIM_SIGNAL": signal},
        "rollback", "fraud", "--reason", "bad",
    )  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert "nothing changed, locally or on origin" in proc.stderr
    assert reg.tags() == before_local and remote_tags(reg.origin) == before_remote


@pytest.mark.slow
def test_sigterm_after_the_push_leaves_the_new_state_on_both_sides(
    reg: Registry, shim: Path
) -> None:
    proc = _killed(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_SIGNAL": "TERM"},
                   "rollback", "fraud", "--reason", "bad")  # fmt: skip
    assert proc.returncode == 130, proc.stderr
    assert "interrupted after the push landed" in proc.stderr
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert channels.load(GitRepo.open(reg.root), "fraud").holder("production") == "v0.2.0"
    assert check(reg.root).ok


def _git_calls(reg: Registry, shim: Path, tmp_path: Path, *args: str) -> int:
    """How many git processes one run of the command starts (on a throwaway copy)."""
    probe = tmp_path / "probe"
    shutil.copytree(reg.root.parent, probe, symlinks=True)
    copy = Registry(probe / "repo", probe / "origin.git", probe / "dvc-storage")
    copy.git("remote", "set-url", "origin", str(copy.origin))
    counter = tmp_path / "count"
    proc = _killed(copy, {"MVCTL_SHIM_COUNT": str(counter)}, *args)
    assert proc.returncode == 0, proc.stderr
    return int(counter.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("signal", ["KILL", "TERM"])
def test_killed_at_every_git_step_a_retry_rolls_back_exactly_once(
    reg: Registry, shim: Path, tmp_path: Path, signal: str
) -> None:
    command = ("rollback", "fraud", "--reason", "p99 latency x3")
    steps = _git_calls(reg, shim, tmp_path, *command)
    assert steps >= 4  # fetch, for-each-ref, update-ref, push at least
    pristine = tmp_path / "pristine"
    shutil.copytree(reg.root.parent, pristine, symlinks=True)
    for step in range(1, steps + 1):
        shutil.rmtree(reg.root.parent)
        shutil.copytree(pristine, reg.root.parent, symlinks=True)
        count = tmp_path / f"calls-{signal}-{step}"
        shim_env = {"MVCTL_SHIM_AT": str(step), "MVCTL_SHIM_SIGNAL": signal}
        killed = _killed(reg, {**shim_env, "MVCTL_SHIM_COUNT": str(count)}, *command)
        assert int(count.read_text()) >= step  # it was stopped at that git step (then repaired)
        if signal == "KILL":
            assert killed.returncode == -9, (step, killed.stderr)
        else:  # SIGTERM: a clean stop that says which state it left
            assert killed.returncode == 130, (step, killed.stderr)
            assert "interrupted" in killed.stderr and "Traceback" not in killed.stderr
        retry = mvctl(reg.root, *command)
        assert retry.returncode == 0, (step, retry.stderr)
        assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0", step
        assert len(events_on(reg.origin)) == 4, (step, events_on(reg.origin))
        assert check(reg.root).ok, (step, check(reg.root).problems)


# --- 5. rollback semantics ------------------------------------------------------------------


def test_rollback_to_a_newer_version_is_a_promotion(reg: Registry) -> None:
    rollback(reg.root, "fraud", reason="bad v0.3.0")  # v0.3.0 -> v0.2.0, v0.3.0 bad
    proc = mvctl(reg.root, "rollback", "fraud", "--to", "v0.3.0", "--reason", "undo")
    assert proc.returncode == 1 and "promotion" in proc.stderr
    assert "mvctl promote fraud v0.3.0 --to production" in proc.stderr
    # The undo as a promotion: v0.3.0's bad mark is cleared, v0.2.0 stays gold, and a later
    # automatic rollback still finds its target.
    promote(reg.root, "fraud", "v0.3.0", "production", reason="root cause was upstream")
    state = channels.load(GitRepo.open(reg.root), "fraud")
    assert state.standing("production") == {"v0.1.0": "gold", "v0.2.0": "gold"}
    assert state.rollback_target("production")[0] == "v0.2.0"


def test_rollback_to_a_version_the_channel_never_served_is_refused(reg: Registry) -> None:
    reg.train(weights=b"v4", auc=0.94)
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="models/model.bin",
                             data=("data/train.csv",)))  # fmt: skip
    before = remote_tags(reg.origin)
    proc = mvctl(reg.root, "rollback", "fraud", "--to", "v0.4.0", "--reason", "x")
    assert proc.returncode == 1 and "never served v0.4.0" in proc.stderr
    empty = mvctl(reg.root, "rollback", "fraud", "-c", "canary", "--to", "v0.1.0", "--reason", "x")
    assert empty.returncode == 1 and "holds no version" in empty.stderr
    assert "promote" in empty.stderr
    assert remote_tags(reg.origin) == before


def test_monitor_rollback_without_target_still_prints_its_report(
    reg: Registry, tmp_path: Path
) -> None:
    reg.write("mvctl.yaml", CONFIG + "    monitors:\n      staging:\n"
              "        - {metric: error_rate, max: 0.01}\n")  # fmt: skip
    reg.git("commit", "-q", "-am", "Monitor staging")
    promote(reg.root, "fraud", "v0.1.0", "staging")
    live = tmp_path / "live.json"
    live.write_text(json.dumps({"error_rate": 0.2}))
    args = ("monitor", "fraud", "-c", "staging", "--metrics", str(live), "--rollback")
    proc = mvctl(reg.root, *args)
    assert proc.returncode == 1
    assert "error_rate" in proc.stdout and "breach" in proc.stdout  # the report
    assert "no version to roll fraud@staging back to" in proc.stderr  # then the error
    machine = mvctl(reg.root, *args, "--json")
    document = json.loads(machine.stdout)
    assert document["breached"] and document["results"][0]["level"] == "breach"
    assert document["rollback_error"]["exit"] == 1 and document["exit"] == 1


def test_monitors_under_a_misspelled_model_are_an_error_not_silence(
    reg: Registry, tmp_path: Path
) -> None:
    reg.write("mvctl.yaml", CONFIG.replace("  fraud:\n", "  frad:\n").replace(
        "    gates:\n", "    monitors:\n      production:\n"
        "        - {metric: error_rate, max: 0.01}\n    gates:\n"))  # fmt: skip
    reg.git("commit", "-q", "-am", "Monitors for a typo")
    live = tmp_path / "live.json"
    live.write_text(json.dumps({"error_rate": 0.2}))
    proc = mvctl(reg.root, "monitor", "fraud", "--metrics", str(live), "--rollback")
    assert proc.returncode == 3 and "models.frad has" in proc.stderr
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"


# --- found by attacking the above ---------------------------------------------------------


def test_a_plain_rollback_over_an_unpublished_promote_is_refused(reg: Registry) -> None:
    # It rolled back the clone's v0.2.0 "to" v0.3.0, printed success, and the fleet stayed
    # on v0.3.0 with the good v0.2.0 marked bad.
    promote(reg.root, "fraud", "v0.2.0", "production", push=False)
    before = remote_tags(reg.origin)
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "v0.3.0 is bad")
    assert proc.returncode == 1, proc.stdout
    assert "unpublished moves" in proc.stderr and "sync --discard-local" in proc.stderr
    assert remote_tags(reg.origin) == before
    assert mvctl(reg.root, "sync", "--discard-local").returncode == 0
    assert mvctl(reg.root, "rollback", "fraud", "--reason", "v0.3.0 is bad").returncode == 0
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"


def test_a_remote_alias_put_back_by_a_stale_clone_is_rolled_back_again(
    reg: Registry, tmp_path: Path
) -> None:
    stale = clone(reg, tmp_path, "stale")
    rollback(reg.root, "fraud", reason="bad")
    run("git", "push", "-q", "--force", "--tags", "origin", cwd=stale)  # a clumsy colleague
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "fleet on v0.3.0 again", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["completed"]
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    fresh = clone(reg, tmp_path, "fresh")
    assert check(fresh).ok


def test_a_poisoned_tag_on_the_remote_breaks_nothing(reg: Registry, tmp_path: Path) -> None:
    evil = clone(reg, tmp_path, "evil")
    (tmp_path / "msg").write_text("x\n\n" + "[" * 5000 + "\n")
    run("git", "tag", "-a", "-F", str(tmp_path / "msg"), "fraud#canary#9", "fraud@v0.1.0^{}",
        cwd=evil)  # fmt: skip
    run("git", "push", "-q", "origin", "fraud#canary#9", cwd=evil)
    for args in (("rollback", "fraud", "--reason", "bad"), ("history", "fraud"), ("status",),
                 ("check",), ("list", "fraud")):  # fmt: skip
        proc = mvctl(reg.root, *args)
        assert "Traceback" not in proc.stderr, (args, proc.stderr)
        assert proc.returncode in (0, 1), (args, proc.stderr)
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"


@pytest.mark.slow
def test_sigterm_during_a_slow_push_lets_it_land_and_says_so(reg: Registry) -> None:
    # The push was killed, its ls-remote said "nothing changed", and the orphaned
    # receive-pack applied the move seconds later.
    hook = reg.origin / "hooks" / "pre-receive"
    marker = reg.origin / "receiving"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\ntouch {marker}\nsleep 2\nexit 0\n")
    hook.chmod(0o755)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvctl", "rollback", "fraud", "--reason", "bad"],
        cwd=reg.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after the push landed" in err
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert channels.load(GitRepo.open(reg.root), "fraud").holder("production") == "v0.2.0"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["register", "mark-gold", "push"])
def test_sigterm_after_a_push_landed_keeps_both_sides_new(
    reg: Registry, shim: Path, command: str
) -> None:
    if command == "register":
        reg.train(weights=b"v4", auc=0.94)
        args: tuple[str, ...] = ("register", "fraud", "--weights", "models/model.bin",
                                 "--data", "data/train.csv")  # fmt: skip
        tag = "fraud@v0.4.0"
    elif command == "mark-gold":
        args, tag = ("mark-gold", "fraud", "v0.1.0", "--reason", "served Q2"), "fraud@v0.1.0#gold"
    else:
        promote(reg.root, "fraud", "v0.1.0", "staging", push=False)
        args, tag = ("push",), "fraud@staging"
    proc = _killed(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_SIGNAL": "TERM"}, *args)
    assert proc.returncode == 130, proc.stderr
    assert "interrupted after the push landed" in proc.stderr
    assert tag in remote_tags(reg.origin) and tag in reg.tags()
    if command == "register":  # and the next one is not refused forever
        reg.train(weights=b"v5", auc=0.95)
        assert mvctl(reg.root, *args).returncode == 0
    assert check(reg.root).ok


def test_a_push_reported_failed_after_it_landed_is_a_success(reg: Registry, shim: Path) -> None:
    proc = _killed(reg, {"MVCTL_SHIM_ON": "push", "MVCTL_SHIM_EXIT": "128"},
                   "rollback", "fraud", "--reason", "bad")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert channels.load(GitRepo.open(reg.root), "fraud").holder("production") == "v0.2.0"


def test_a_quoted_push_never_keeps_moves_local(reg: Registry) -> None:
    reg.write("mvctl.yaml", CONFIG + '"push": never\n')
    reg.git("commit", "-q", "-am", "Keep moves local")
    proc = mvctl(reg.root, "rollback", "fraud", "--reason", "try here first")
    assert proc.returncode == 0 and "kept local" in proc.stdout
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0"


def test_a_rollback_stamped_in_the_future_does_not_block_the_next(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = clone(reg, tmp_path, "other")
    ahead = datetime.now(UTC) + timedelta(hours=3)
    monkeypatch.setenv("GIT_COMMITTER_DATE", ahead.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    rollback(other, "fraud", reason="bad v0.3.0")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    move = rollback(reg.root, "fraud", reason="v0.2.0 is bad too")
    assert move.changed and move.version == "v0.1.0"


def test_check_survives_a_huge_event_number_and_names_duplicates(
    reg: Registry, tmp_path: Path
) -> None:
    evil = clone(reg, tmp_path, "evil")
    run("git", "tag", "-a", "-m", "x", "fraud#canary#99999999999", "fraud@v0.1.0^{}", cwd=evil)
    run("git", "tag", "-a", "-m", "x", "fraud#staging#3", "fraud@v0.1.0^{}", cwd=evil)
    run("git", "push", "-q", "origin", "fraud#canary#99999999999", "fraud#staging#3", cwd=evil)
    fresh = clone(reg, tmp_path, "fresh")
    problems = check(fresh).problems
    assert any("4-99999999998 are missing" in p for p in problems)
    assert any("event number 3 is used twice" in p for p in problems)


def test_an_event_number_taken_on_another_channel_is_a_conflict(
    reg: Registry, tmp_path: Path
) -> None:
    other = clone(reg, tmp_path, "other")
    promote(reg.root, "fraud", "v0.1.0", "staging", push=False)  # local #4
    promote(other, "fraud", "v0.2.0", "canary")  # origin's #4
    proc = mvctl(reg.root, "push")
    assert proc.returncode == 4 and "sync --discard-local" in proc.stderr
    assert "fraud#staging#4" not in remote_tags(reg.origin)
    # ... and it does not hold up the panic button of another channel.
    assert rollback(reg.root, "fraud", reason="bad").pushed
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"


@pytest.mark.parametrize(
    "args",
    [
        ("rollback", "fraud", "--reason", "x" * 5000),
        ("rollback", "fraud", "--reason", "cpu \x1b[31mred\x1b[0m"),
        ("promote", "fraud", "v0.1.0", "--to", "staging", "--reason", "y" * 3000),
        ("mark-gold", "fraud", "v0.1.0", "--reason", "z" * 3000),
    ],
)
def test_reasons_are_bounded_plain_text(reg: Registry, args: tuple[str, ...]) -> None:
    before = remote_tags(reg.origin), reg.tags()
    proc = mvctl(reg.root, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (remote_tags(reg.origin), reg.tags()) == before


def test_a_password_in_a_pull_url_is_never_printed(tmp_path: Path) -> None:
    url = "https://ada:hunter2-secret@127.0.0.1:1/ml/registry.git"
    proc = mvctl(tmp_path, "pull", url, "fraud", "--dest", str(tmp_path / "host"))
    assert proc.returncode == 3
    assert "hunter2-secret" not in proc.stdout + proc.stderr


def test_a_token_as_the_user_of_a_pull_url_is_never_printed(tmp_path: Path) -> None:
    url = "https://ghp_tokenXYZ123@127.0.0.1:1/ml/registry.git"
    proc = mvctl(tmp_path, "pull", url, "fraud", "--dest", str(tmp_path / "host"))
    assert proc.returncode == 3
    assert "ghp_tokenXYZ123" not in proc.stdout + proc.stderr
