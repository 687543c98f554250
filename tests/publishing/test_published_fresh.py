"""A published move reads its channel's alias chain, not every tag of the model, and still
decides on the remote's state as fetched just now: what another clone published meanwhile
(a deregistration, a bad mark, an event number on another channel) changes the decision,
even where the push's lease on the alias could not have caught it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.check import check
from tests.conftest import (
    Registry,
    build_template,
    copy_registry,
    isolate,
    mvctl,
    remote_holder,
    remote_tags,
    run,
)

CONFIG = """version: 1
channels: [production, staging, canary]
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("published-fresh-template")
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
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


def other_clone(reg: Registry, tmp_path: Path) -> Path:
    path = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), path, cwd=tmp_path)
    return path


def test_a_version_retired_on_the_remote_meanwhile_is_skipped(
    reg: Registry, tmp_path: Path
) -> None:
    # The lease is on the alias, which a retirement does not move: only a decision taken on
    # the fetched tags skips v0.2.0 (this clone's own tags still say it is live and gold).
    other = other_clone(reg, tmp_path)
    retired = mvctl(other, "retire", "fraud", "v0.2.0", "--reason", "trained on revoked data")
    assert retired.returncode == 0, retired.stderr
    assert "fraud@v0.2.0!" in remote_tags(reg.origin)
    move = rollback(reg.root, "fraud", reason="v0.3.0 is bad")
    assert move.pushed and (move.previous, move.version) == ("v0.3.0", "v0.1.0")
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"


def test_an_event_number_taken_on_another_channel_meanwhile_is_not_reused(
    reg: Registry, tmp_path: Path
) -> None:
    other = other_clone(reg, tmp_path)
    promote(other, "fraud", "v0.1.0", "staging")  # the remote's #4
    move = rollback(reg.root, "fraud", reason="v0.3.0 is bad")
    assert move.pushed and move.event == "fraud#production#5"
    assert {"fraud#production#5", "fraud@production"} <= set(move.published)
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    promoted = promote(reg.root, "fraud", "v0.2.0", "canary")
    assert promoted.pushed and promoted.event == "fraud#canary#6"
    fresh = tmp_path / "fresh"
    run("git", "clone", "-q", str(reg.origin), fresh, cwd=tmp_path)
    assert check(fresh).ok, check(fresh).problems


def test_a_rollback_published_meanwhile_is_the_state_the_next_one_starts_from(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = other_clone(reg, tmp_path)
    first = rollback(other, "fraud", reason="v0.3.0 is bad")  # v0.3.0 is bad now
    assert first.version == "v0.2.0"
    later = datetime.now(UTC) + timedelta(hours=1)  # past the retry window
    monkeypatch.setenv("GIT_COMMITTER_DATE", later.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    move = rollback(reg.root, "fraud", reason="v0.2.0 is bad too")
    assert (move.previous, move.version) == ("v0.2.0", "v0.1.0")
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"


def test_a_published_rollback_and_promotion_read_no_tag_bodies_in_bulk(
    reg: Registry, tmp_path: Path
) -> None:
    # What keeps them fast at 10,000 versions (benchmarks/bench_scale.py): every tag body
    # they read is one they name (git cat-file --batch), never a listing of the model's.
    promote(reg.root, "fraud", "v0.1.0", "staging")  # a first move reads them all
    traced = tmp_path / "trace"
    env = {**os.environ, "GIT_TRACE": str(traced)}
    for args in (
        ("rollback", "fraud", "--reason", "bad", "--json"),
        ("promote", "fraud", "v0.2.0", "--to", "staging", "--json"),
    ):
        proc = run_mvctl(reg.root, env, *args)
        assert json.loads(proc)["pushed"], proc
    listings = [
        line
        for line in traced.read_text().splitlines()
        if "for-each-ref" in line and "%(contents)" in line
    ]
    assert not listings, listings
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
    assert remote_holder(reg.origin, "fraud", "staging") == "v0.2.0"


def run_mvctl(root: Path, env: dict[str, str], *args: str) -> str:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "mvctl", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_remote_alias_whose_chain_leaves_out_events_is_not_believed(
    reg: Registry, tmp_path: Path
) -> None:
    # The alias body is a hint checked against the tags: a chain the remote's events
    # contradict (one that leaves out #2, v0.2.0's promotion) makes the move read them all:
    # believed, it would roll back to v0.1.0.
    other = other_clone(reg, tmp_path)
    chain = ["fraud#production#1", "fraud#production#3"]
    body = {"kind": "alias", "model": "fraud", "channel": "production", "version": "v0.3.0",
            "event": "fraud#production#3", "counter": 3, "chain": chain, "next": 4,
            "channels": ["production"]}  # fmt: skip
    message = f"fraud@production -> v0.3.0\n\n{json.dumps(body)}\n"
    run("git", "tag", "-f", "-a", "-m", message, "fraud@production", "fraud@v0.3.0^{}", cwd=other)
    run("git", "push", "-q", "-f", "origin", "refs/tags/fraud@production", cwd=other)
    move = rollback(reg.root, "fraud", reason="v0.3.0 is bad")
    assert move.pushed and (move.previous, move.version) == ("v0.3.0", "v0.2.0")
    assert move.event == "fraud#production#4"
    assert remote_holder(reg.origin, "fraud", "production") == "v0.2.0"
