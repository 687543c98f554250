"""The registry's git remote over a network transport: ``git daemon`` on loopback, as a
real subprocess. Moves are published with ``--push`` to git://, a host polls the alias
over it and swaps after a rollback, and two clones racing on one channel through the
daemon leave exactly one winner and an alias that agrees with the newest event."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    mvctl,
    remote_holder,
    remote_tags,
    run,
)
from tests.remotes.conftest import GitDaemon, serve_origin

pytestmark = pytest.mark.slow  # a git daemon, subprocess hosts and racers

WEIGHTS = {"v0.1.0": b"one" * 1000, "v0.2.0": b"two" * 1000, "v0.3.0": b"three" * 1000}
DEADLINE = 60.0
PULL = (sys.executable, "-m", "mvctl", "pull")
ROUNDS = 3


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    releases = (Release(weights=w, data=(), metrics=False, push=True) for w in WEIGHTS.values())
    # Every version served staging in turn, so each is a valid rollback target there.
    return registry_factory(*releases, promotions=tuple((v, "staging") for v in WEIGHTS))


@pytest.fixture
def served(template: Path, tmp_path: Path, git_daemon: GitDaemon) -> tuple[Registry, str]:
    """A private registry whose origin is served by the daemon, and its git:// URL; the
    bare repository's path is left for the test's own inspection only."""
    reg = copy_registry(template, tmp_path)
    url = serve_origin(git_daemon, reg.origin)
    reg.git("remote", "set-url", "origin", url)
    reg = Registry(reg.root, git_daemon.base / "registry.git", reg.storage)
    return reg, url


def state_of(dest: Path) -> dict[str, object] | None:
    try:
        loaded: dict[str, object] = json.loads((dest / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return loaded


def wait_serving(dest: Path, version: str, proc: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        state = state_of(dest)
        if state is not None and state.get("version") == version:
            return
        if proc.poll() is not None:
            pytest.fail(f"the host's poller exited {proc.returncode}: {log.read_text()}")
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(0.05)  # wakes at once if the poller dies
    pytest.fail(f"the host never served {version} (state: {state_of(dest)})")


def test_moves_pushed_over_git_daemon_reach_a_polling_host(
    served: tuple[Registry, str], tmp_path: Path
) -> None:
    reg, url = served
    first = mvctl(reg.root, "promote", "fraud", "v0.1.0", "--to", "production", "--push")
    assert first.returncode == 0, first.stderr
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"

    dest = tmp_path / "host"
    log = tmp_path / "host.log"
    with log.open("w") as out:
        host = subprocess.Popen(
            [*PULL, url, "fraud", "--dest", str(dest), "--watch", "--interval", "0.2"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        wait_serving(dest, "v0.1.0", host, log)
        moved = mvctl(reg.root, "promote", "fraud", "v0.2.0", "--to", "production", "--push")
        assert moved.returncode == 0, moved.stderr
        wait_serving(dest, "v0.2.0", host, log)
        back = mvctl(reg.root, "rollback", "fraud", "--reason", "bad canary", "--push")
        assert back.returncode == 0, back.stderr
        assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"
        wait_serving(dest, "v0.1.0", host, log)
        assert (dest / "current" / "model.bin").read_bytes() == WEIGHTS["v0.1.0"]
    finally:
        host.send_signal(signal.SIGTERM)
        code = host.wait(30)
    assert code == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text and "v0.1.0" in text and "v0.2.0" in text


# --- the race ----------------------------------------------------------------------------


def barrier_shim(directory: Path, real_git: str) -> Path:
    """A ``git`` first on PATH that holds a racer's first ``git push`` until the test lets
    it go: it announces itself on the FIFO ``RACER.ready``, then waits on ``RACER.go``.
    Both racers have decided (fetched, computed, tagged locally) before either pushes."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "git"
    shim.write_text(
        f"""#!/bin/sh
if [ "$1" = push ] && [ -n "$MVCTL_BARRIER" ] \\
   && mkdir "$MVCTL_BARRIER/$MVCTL_RACER.pushed" 2>/dev/null; then
  echo ready > "$MVCTL_BARRIER/$MVCTL_RACER.ready"
  read go < "$MVCTL_BARRIER/$MVCTL_RACER.go"
fi
exec "{real_git}" "$@"
"""
    )
    shim.chmod(0o755)
    return directory


def release_together(barrier: Path, racers: list[str], first: int, done: list[str]) -> None:
    """Wait until every racer is at its push, then let them all go (``first`` first)."""
    for name in racers:
        with (barrier / f"{name}.ready").open() as ready:
            ready.read()
    order = racers[first:] + racers[:first]
    handles = [(barrier / f"{name}.go").open("w") for name in order]
    for handle in handles:
        handle.write("go\n")
        handle.close()
    done.append("released")


RACERS = {
    "promoter": ["promote", "fraud", "v0.2.0", "--to", "staging", "--push", "--json"],
    "rollbacker": [
        *("rollback", "fraud", "-c", "staging", "--to", "v0.1.0"),
        *("--reason", "race", "--push", "--json"),
    ],
}
TARGET = {"promoter": "v0.2.0", "rollbacker": "v0.1.0"}


def clone_over(url: str, path: Path) -> Path:
    run("git", "clone", "-q", "--", url, path, cwd=path.parent)
    return path


def local_tags(clone: Path) -> dict[str, str]:
    out = git(clone, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/tags/")
    return dict(line.split(" ", 1) for line in out.splitlines())


def test_a_push_race_over_git_daemon_has_one_winner_and_a_consistent_alias(
    served: tuple[Registry, str], tmp_path: Path
) -> None:
    reg, url = served
    real_git = shutil.which("git")
    assert real_git is not None
    shim_dir = barrier_shim(tmp_path / "shim", real_git)
    clones = {name: clone_over(url, tmp_path / name) for name in RACERS}
    winners: list[str] = []
    for round_ in range(ROUNDS):
        # Both racers start from staging on v0.3.0, so neither move is a no-op.
        reset = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "staging", "--push")
        assert reset.returncode == 0, reset.stderr
        assert remote_holder(reg.origin, "fraud", "staging") == "v0.3.0"
        before = remote_tags(reg.origin)["fraud@staging"]
        barrier = tmp_path / f"barrier{round_}"
        barrier.mkdir()
        for name in RACERS:
            os.mkfifo(barrier / f"{name}.ready")
            os.mkfifo(barrier / f"{name}.go")
        env = {
            **os.environ,
            "PATH": f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
            "MVCTL_BARRIER": str(barrier),
        }
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "mvctl", *argv],
                cwd=clones[name],
                env={**env, "MVCTL_RACER": name},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, argv in RACERS.items()
        }
        released: list[str] = []
        gate = threading.Thread(
            target=release_together,
            args=(barrier, list(RACERS), round_ % 2, released),
            daemon=True,
        )
        gate.start()
        results = {name: proc.communicate(timeout=120) for name, proc in procs.items()}
        gate.join(5)
        codes = {name: proc.returncode for name, proc in procs.items()}
        assert released, f"a racer never reached its push: {codes} {results}"
        assert sorted(codes.values()) == [0, 4], results
        winner = next(name for name, code in codes.items() if code == 0)
        loser = next(name for name in RACERS if name != winner)
        winners.append(winner)
        move = json.loads(results[winner][0])
        assert move["changed"] and move["event"].startswith("fraud#staging#")
        assert "refused the push" in results[loser][1] or "someone else" in results[loser][1]
        assert "Traceback" not in results[loser][1]

        # The remote: the winner's event is the newest, and the alias agrees with it.
        remote = remote_tags(reg.origin)
        assert remote_holder(reg.origin, "fraud", "staging") == TARGET[winner]
        assert move["event"] in remote
        fresh = clone_over(url, tmp_path / f"fresh{round_}")
        checked = mvctl(fresh, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # The loser left nothing half-done: every tag it has is the remote's, but for its
        # alias, which may still be the one both racers started from (nothing it made).
        leftover = {
            name: obj for name, obj in local_tags(clones[loser]).items() if remote.get(name) != obj
        }
        assert leftover in ({}, {"fraud@staging": before}), (leftover, before)
        assert mvctl(clones[loser], "check", "--offline").returncode == 0
    assert len(winners) == ROUNDS
