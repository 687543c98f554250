"""`mvctl unassign`: GTO's unassign for any channel, production only with --force, and
every reader after it (history, show, check); an interrupted one completed by a retry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git_shim,
    mvctl,
    remote_holder,
    remote_tags,
)

CONFIG = """version: 1
channels: [production, staging, canary, shadow, eu-pilot]
models:
  fraud: {}
"""


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        *(Release(weights=v.encode(), push=True) for v in ("a", "bb")), config=CONFIG
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    promote(registry.root, "fraud", "v0.1.0", "production", push=True)
    promote(registry.root, "fraud", "v0.2.0", "staging", push=True)
    return registry


def local_tags(reg: Registry) -> set[str]:
    return set(reg.git("tag", "-l").split())


def test_unassign_clears_staging_everywhere_and_every_reader_agrees(reg: Registry) -> None:
    proc = mvctl(
        reg.root, "unassign", "fraud", "--channel", "staging", "--reason", "trial over", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    move = json.loads(proc.stdout)
    assert (move["kind"], move["channel"], move["version"], move["event"]) == (
        "stop",
        "staging",
        "v0.2.0",
        "fraud#staging!#3",
    )
    assert move["pushed"] and "fraud#staging!#3" in move["published"]
    # GTO's unassignment tag, on the version's commit, here and on the remote; no alias.
    assert "fraud#staging!#3" in local_tags(reg) and "fraud@staging" not in local_tags(reg)
    on_remote = remote_tags(reg.origin)
    assert "fraud#staging!#3" in on_remote and "fraud@staging" not in on_remote
    assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0"  # untouched
    commit = reg.git("rev-parse", "fraud#staging!#3^{commit}").strip()
    assert commit == reg.git("rev-parse", "fraud@v0.2.0^{commit}").strip()
    # history shows it, show says the channel is empty, check stays consistent.
    events = json.loads(mvctl(reg.root, "history", "fraud", "-c", "staging", "--json").stdout)
    last = events["events"][-1]
    assert (last["event"], last["kind"], last["version"], last["reason"]) == (
        "fraud#staging!#3",
        "stop",
        "v0.2.0",
        "trial over",
    )
    table = mvctl(reg.root, "history", "fraud", "-c", "staging").stdout
    assert "v0.2.0 → (stopped)" in table and "trial over" in table
    shown = mvctl(reg.root, "show", "fraud@staging")
    assert shown.returncode == 3 and "holds no version" in shown.stderr
    checked = mvctl(reg.root, "check", "--remote", "origin")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A second unassign does nothing; the next promotion starts a new tenure.
    again = mvctl(reg.root, "unassign", "fraud", "--channel", "staging", "--reason", "x")
    assert again.returncode == 0 and "stopped already" in again.stdout
    assert "fraud#staging!#4" not in local_tags(reg)
    promote(reg.root, "fraud", "v0.1.0", "staging", push=True)
    assert remote_holder(reg.origin, "fraud", "staging") == "v0.1.0"
    assert mvctl(reg.root, "check", "--remote", "origin").returncode == 0


def test_a_custom_channel_and_shadow_are_cleared_too(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "eu-pilot", push=True)
    promote(reg.root, "fraud", "v0.2.0", "shadow", push=True)
    for channel in ("eu-pilot", "shadow"):
        proc = mvctl(reg.root, "unassign", "fraud", "-c", channel, "--reason", "done")
        assert proc.returncode == 0, proc.stderr
        assert f"fraud@{channel} stopped" in proc.stdout
        assert f"fraud@{channel}" not in remote_tags(reg.origin)
    assert mvctl(reg.root, "check", "--remote", "origin").returncode == 0


def test_production_needs_force_and_says_what_the_fleet_gets(reg: Registry) -> None:
    before = remote_tags(reg.origin), local_tags(reg)
    refused = mvctl(reg.root, "unassign", "fraud", "-c", "production", "--reason", "x")
    assert refused.returncode == 1
    assert "keeps its current weights but gets no new ones" in refused.stderr
    assert "mvctl rollback fraud" in refused.stderr
    assert (remote_tags(reg.origin), local_tags(reg)) == before
    as_json = mvctl(reg.root, "unassign", "fraud", "-c", "production", "--reason", "x", "--json")
    error = json.loads(as_json.stdout)
    assert error["exit"] == 1 and "--force" in error["hint"]
    forced = mvctl(
        reg.root, "unassign", "fraud", "-c", "production", "--reason", "decommission", "--force"
    )
    assert forced.returncode == 0, forced.stderr
    assert "fraud@production" not in remote_tags(reg.origin)
    assert "fraud#production!#3" in remote_tags(reg.origin)


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (("fraud", "-c", "canary", "--reason", "x"), 1, "holds no version: nothing to stop"),
        (("Fraud", "-c", "staging", "--reason", "x"), 2, "invalid model name"),
        (("fraud", "-c", "Staging!", "--reason", "x"), 2, "invalid channel name"),
        (("fraud", "-c", "--force", "--reason", "x"), 2, "invalid channel name"),
        (("fraud", "-c", "europe", "--reason", "x"), 2, "unknown channel"),
        (("fraud", "-c", "staging", "--reason", " "), 2, "needs --reason"),
        (("fraud", "-c", "staging"), 2, "--reason"),
        (("fraud", "--reason", "x"), 2, "--channel"),
        (("churn", "-c", "staging", "--reason", "x"), 3, "churn"),
    ],
)
def test_refusals_change_nothing(
    reg: Registry, args: tuple[str, ...], code: int, said: str
) -> None:
    before = remote_tags(reg.origin), local_tags(reg)
    proc = mvctl(reg.root, "unassign", *args)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert said in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (remote_tags(reg.origin), local_tags(reg)) == before


def test_a_dry_run_changes_nothing(reg: Registry) -> None:
    before = remote_tags(reg.origin), local_tags(reg)
    proc = mvctl(reg.root, "unassign", "fraud", "-c", "staging", "--reason", "x", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would be stopped" in proc.stdout and "fraud#staging!#3" in proc.stdout
    assert (remote_tags(reg.origin), local_tags(reg)) == before


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_kill_at_the_push_is_completed_by_the_same_command_again(
    reg: Registry, tmp_path: Path, when: str
) -> None:
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    git_shim(shim, str(Path(real).resolve()))
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "push",
        "MVCTL_SHIM_WHEN": when,
    }
    argv = [sys.executable, "-m", "mvctl", "unassign", "fraud", "-c", "staging", "--reason", "x"]
    killed = subprocess.run(
        argv, cwd=reg.root, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert killed.returncode == -9
    landed = when == "after"
    assert ("fraud@staging" not in remote_tags(reg.origin)) is landed
    assert ("fraud#staging!#3" in remote_tags(reg.origin)) is landed
    retry = mvctl(reg.root, "unassign", "fraud", "-c", "staging", "--reason", "x", "--json")
    assert retry.returncode == 0, retry.stderr
    move = json.loads(retry.stdout)
    assert move["event"] == "fraud#staging!#3"  # completed, never a second unassignment
    assert move["completed"] is not landed and move["changed"] is not landed
    on_remote = remote_tags(reg.origin)
    assert "fraud@staging" not in on_remote and "fraud#staging!#3" in on_remote
    assert not [t for t in local_tags(reg) | set(on_remote) if t.startswith("fraud#staging!#4")]
    assert mvctl(reg.root, "check", "--remote", "origin").returncode == 0


def test_a_local_unassign_is_pending_until_mvctl_push(reg: Registry) -> None:
    proc = mvctl(reg.root, "unassign", "fraud", "-c", "staging", "--reason", "x", "--local")
    assert proc.returncode == 0, proc.stderr
    assert "fraud@staging" in remote_tags(reg.origin)  # hosts still see it
    status = json.loads(mvctl(reg.root, "status", "--json").stdout)
    assert "fraud#staging!#3" in status["tags"]
    assert [d for d in status["deletions"] if "fraud@staging" in json.dumps(d)]
    checked = mvctl(reg.root, "check", "--remote", "origin")
    assert checked.returncode != 0 and "fraud@staging" in checked.stdout + checked.stderr
    pushed = mvctl(reg.root, "push")
    assert pushed.returncode == 0, pushed.stderr
    on_remote = remote_tags(reg.origin)
    assert "fraud@staging" not in on_remote and "fraud#staging!#3" in on_remote
    assert mvctl(reg.root, "check", "--remote", "origin").returncode == 0


def test_help_lists_the_command_with_an_example(tmp_path: Path) -> None:
    listed = mvctl(tmp_path, "--help")
    assert listed.returncode == 0 and "unassign" in listed.stdout
    shown = mvctl(tmp_path, "unassign", "--help")
    assert shown.returncode == 0
    assert "mvctl unassign fraud --channel staging --reason 'experiment over'" in (
        " ".join(shown.stdout.split())
    )
    assert "--force" in shown.stdout and "--dry-run" in shown.stdout
