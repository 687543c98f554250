"""The issue's scenario (20 versions, 3 gold on production, one in canary) and gc's hostile
cases: a kill during the tag push, a promotion by someone else before --yes, bad
arguments, moves to a pruned version, and a host following an alias forced onto one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mvctl.cli.app import app
from mvctl.retention.prune import gc
from mvctl.serving.pull import pull
from mvctl.serving.request import PullRequest
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git,
    git_shim,
    mvctl,
    remote_tags,
    run,
)
from tests.retention._common import push_deregistrations

VERSIONS = [f"v{i}.0.0" for i in range(1, 21)]
PRODUCTION = ("v3.0.0", "v6.0.0", "v9.0.0", "v12.0.0")  # v3, v6, v9 gold; v12 held
KEPT = {"v3.0.0", "v6.0.0", "v9.0.0", "v12.0.0", "v15.0.0", *VERSIONS[-5:]}
PRUNED = set(VERSIONS) - KEPT


@pytest.fixture
def reg(
    registry_factory: RegistryFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    template = registry_factory(
        *(Release(weights=f"weights {v}".encode() * 64, version=v) for v in VERSIONS),
        promotions=(*((v, "production") for v in PRODUCTION), ("v15.0.0", "canary")),
    )
    copy = copy_registry(template, tmp_path)
    monkeypatch.chdir(copy.root)
    return copy


def storage_bytes(reg: Registry) -> int:
    return sum(p.stat().st_size for p in reg.storage.rglob("*") if p.is_file())


def deregistered_on(origin: Path) -> set[str]:
    return {n.split("@")[1][:-1] for n in remote_tags(origin) if n.endswith("!")}


def test_the_issue_scenario_keeps_exactly_what_it_must(reg: Registry, tmp_path: Path) -> None:
    shown = mvctl(reg.root, "gc", "fraud", "--json")
    assert shown.returncode == 0, shown.stderr
    plan = json.loads(shown.stdout)
    assert plan["dry_run"] is True
    assert {v["version"] for v in plan["versions"] if v["keep"]} == KEPT
    assert {v["version"] for v in plan["versions"] if v["action"] == "prune"} == PRUNED
    why = {v["version"]: v["reasons"] for v in plan["versions"]}
    assert why["v12.0.0"] == ["held by production"]
    assert why["v15.0.0"] == ["held by canary"]
    assert why["v20.0.0"] == ["one of the 5 newest"]
    assert why["v3.0.0"] == ["gold on production (one of its last 3)"]
    # One object each (the weights; the dataset is shared by every version, kept ones too).
    assert plan["totals"]["objects"] == len(PRUNED)

    before = storage_bytes(reg)
    done = mvctl(reg.root, "gc", "fraud", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert before - storage_bytes(reg) == result["totals"]["bytes"] == plan["totals"]["bytes"]
    assert deregistered_on(reg.origin) == PRUNED
    assert mvctl(reg.root, "check").returncode == 0

    # Every kept version still pulls and verifies on a host.
    host = tmp_path / "host"
    for version in sorted(KEPT):
        if version not in ("v12.0.0", "v15.0.0"):
            assert mvctl(reg.root, "promote", "fraud", version, "--to", "staging").returncode == 0
        channel = {"v12.0.0": "production", "v15.0.0": "canary"}.get(version, "staging")
        got = pull(PullRequest(str(reg.origin), "fraud", channel, host / channel))
        assert got.served.version == version
        assert got.served.path.read_bytes() == f"weights {version}".encode() * 64

    # GTO still reads the registry, deregistrations included.
    gto = run("gto", "show", "fraud", "--json", cwd=reg.root)
    listed = {v["version"] for v in json.loads(gto.stdout)}
    assert listed >= KEPT
    assert not PRUNED & listed
    assert run("gto", "history", "fraud", "--json", cwd=reg.root).returncode == 0


def test_flags_override_mvctl_yaml_and_the_table_fits_80_columns(reg: Registry) -> None:
    runner = CliRunner()
    got = runner.invoke(
        app, ["gc", "fraud", "--keep-recent", "2", "--keep-gold", "1"], env={"COLUMNS": "80"}
    )
    assert got.exit_code == 0, got.output
    lines = got.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith("· would free") and "run with --yes" in line for line in lines)
    assert "from 15 versions" in got.output  # all but v12, v15 (held), v9 (gold), v19, v20
    row = next(line for line in lines if "v9.0.0" in line)
    assert "keep" in row and "gold on production" in row
    row = next(line for line in lines if "v6.0.0" in line)
    assert "prune" in row and "gold on production, not one of its last 1" in row


@pytest.mark.parametrize(
    "args",
    [
        ("NOT-A-MODEL",),
        ("fraud", "--keep-gold", "-1"),
        ("fraud", "--keep-gold", "abc"),
        ("fraud", "--keep-recent", "-3"),
        ("fraud", "--dry-run", "--yes"),
    ],
)
def test_usage_errors_exit_2_and_change_nothing(reg: Registry, args: tuple[str, ...]) -> None:
    before = reg.snapshot()
    got = mvctl(reg.root, "gc", *args)
    assert got.returncode == 2, (got.stdout, got.stderr)
    assert "Traceback" not in got.stderr
    assert reg.snapshot() == before


def test_an_unknown_model_is_refused(reg: Registry) -> None:
    got = mvctl(reg.root, "gc", "nosuch", "--yes")
    assert got.returncode != 0
    assert "nosuch" in got.stderr


def test_moves_to_a_pruned_version_are_refused_with_the_reason(reg: Registry) -> None:
    assert gc(reg.root, "fraud", dry_run=False).plan.pruned
    promote = mvctl(reg.root, "promote", "fraud", "v4.0.0", "--to", "staging")
    assert promote.returncode == 1
    assert "pruned by 'mvctl gc'" in promote.stderr
    back = mvctl(reg.root, "rollback", "fraud", "--to", "v4.0.0", "--reason", "incident")
    assert back.returncode == 1
    assert "pruned by 'mvctl gc'" in back.stderr
    # Retired by hand (no gc): the old message, unchanged.
    assert mvctl(reg.root, "retire", "fraud", "v16.0.0").returncode == 0
    retired = mvctl(reg.root, "promote", "fraud", "v16.0.0", "--to", "staging")
    assert retired.returncode == 1
    assert "pruned" not in retired.stderr and "deregistered" in retired.stderr


def test_a_promotion_published_by_someone_else_before_yes_wins(
    reg: Registry, tmp_path: Path
) -> None:
    stale = gc(reg.root, "fraud").plan
    assert "v4.0.0" in {v.version for v in stale.pruned}
    other = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), str(other), cwd=tmp_path)
    git(other, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    assert mvctl(other, "promote", "fraud", "v4.0.0", "--to", "staging").returncode == 0

    done = gc(reg.root, "fraud", dry_run=False)
    entry = next(v for v in done.plan.versions if v.version == "v4.0.0")
    assert entry.keep and entry.reasons == ("held by staging",)
    assert "v4.0.0" not in deregistered_on(reg.origin)
    host = tmp_path / "host"
    assert pull(PullRequest(str(reg.origin), "fraud", "staging", host)).served.version == "v4.0.0"


@pytest.mark.slow
def test_a_kill_during_the_tag_push_deletes_nothing_and_a_rerun_completes(
    reg: Registry, tmp_path: Path
) -> None:
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    git_shim(shim, str(Path(real).resolve()))
    before, files = storage_bytes(reg), reg.storage_files()
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "push",
        "MVCTL_SHIM_WHEN": "before",
    }
    killed = subprocess.run(
        [sys.executable, "-m", "mvctl", "gc", "fraud", "--yes"],
        cwd=reg.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -9
    assert reg.storage_files() == files  # nothing deleted
    assert deregistered_on(reg.origin) == set()

    shown = json.loads(mvctl(reg.root, "gc", "fraud", "--json").stdout)
    pending = {v["version"] for v in shown["versions"] if v["reasons"] == ["pending prune"]}
    assert pending == PRUNED  # the tags were written here: the rerun finishes them
    rerun = mvctl(reg.root, "gc", "fraud", "--yes", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert deregistered_on(reg.origin) == PRUNED
    assert before - storage_bytes(reg) == json.loads(rerun.stdout)["totals"]["bytes"] > 0


def test_a_host_refuses_an_alias_forced_onto_a_pruned_version(
    reg: Registry, tmp_path: Path
) -> None:
    host = tmp_path / "host"
    assert pull(PullRequest(str(reg.origin), "fraud", "production", host)).served.version == (
        "v12.0.0"
    )
    gc(reg.root, "fraud", dry_run=False)
    # A crafted move: the alias forced onto v2's commit, straight into the remote.
    commit = git(reg.root, "rev-list", "-n1", "fraud@v2.0.0").strip()
    git(reg.root, "tag", "-f", "-a", "-m", "forced", "fraud@production", commit)
    git(reg.root, "push", "-q", "-f", "origin", "refs/tags/fraud@production")
    got = mvctl(reg.root, "pull", str(reg.origin), "fraud", "--dest", str(host))
    assert got.returncode == 3
    assert "deregistered (fraud@v2.0.0!" in got.stderr
    assert (
        json.loads(mvctl(reg.root, "pull", "--dest", str(host), "--status", "--json").stdout)[
            "version"
        ]
        == "v12.0.0"
    )


def test_marks_count_as_gold_and_a_rolled_back_from_version_is_prunable(reg: Registry) -> None:
    assert mvctl(reg.root, "mark-gold", "fraud", "v1.0.0", "--reason", "baseline").returncode == 0
    back = mvctl(reg.root, "rollback", "fraud", "--reason", "incident")
    assert back.returncode == 0, back.stderr
    plan = gc(reg.root, "fraud").plan
    why = {v.version: (v.action, v.reasons) for v in plan.versions}
    assert why["v9.0.0"] == (
        "keep",
        ("held by production", "gold on production (one of its last 3)"),
    )
    assert why["v12.0.0"] == ("prune", ("rolled back from on production",))
    assert why["v1.0.0"][0] == "keep"
    assert "marked gold (one of the last 3)" in why["v1.0.0"][1]


def test_a_channel_moved_between_the_sync_and_the_push_refuses_it_all(
    reg: Registry, tmp_path: Path
) -> None:
    from mvctl._adapters.git import GitRepo
    from mvctl.channels import state as channels
    from mvctl.errors import ConflictError
    from mvctl.publishing.sync import sync_git

    repo = GitRepo.open(reg.root)
    synced = sync_git(repo, "origin", "fraud")
    states = {"fraud": channels.load(repo, "fraud")}
    plan = gc(reg.root, "fraud").plan
    # Someone moves production onto v4 (which this plan prunes) after our sync.
    other = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), str(other), cwd=tmp_path)
    git(other, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    moved = mvctl(other, "promote", "fraud", "v4.0.0", "--to", "production")
    assert moved.returncode == 0, moved.stderr
    files = reg.storage_files()
    with pytest.raises(ConflictError):
        push_deregistrations(repo, states, plan, synced)
    assert not [t for t in reg.tags() if t.endswith("!")]  # taken back here
    assert deregistered_on(reg.origin) == set()
    assert reg.storage_files() == files
    # Run again, it decides on the fresh state: v4 is held, kept, and still pulls.
    done = gc(reg.root, "fraud", dry_run=False)
    assert next(v for v in done.plan.versions if v.version == "v4.0.0").keep
    host = tmp_path / "host"
    assert pull(PullRequest(str(reg.origin), "fraud", "production", host)).served.version == (
        "v4.0.0"
    )


def test_a_kept_version_without_a_manifest_stops_gc_before_anything_changes(
    reg: Registry,
) -> None:
    first = git(reg.root, "rev-list", "--max-parents=0", "HEAD").strip()
    git(reg.root, "tag", "-a", "-m", "by hand", "fraud@v99.0.0", first)
    before = reg.snapshot()
    got = mvctl(reg.root, "gc", "fraud", "--yes")
    assert got.returncode == 3
    assert "fraud v99.0.0 has no readable manifest" in got.stderr
    assert reg.snapshot() == before


def test_a_mark_on_a_version_production_never_served_pushes_no_gold_out(reg: Registry) -> None:
    assert mvctl(reg.root, "mark-gold", "fraud", "v13.0.0").returncode == 0
    why = {v.version: v.reasons for v in gc(reg.root, "fraud").plan.versions}
    assert why["v13.0.0"] == ("marked gold (one of the last 3)",)
    for version in ("v3.0.0", "v6.0.0", "v9.0.0"):  # still production's last 3 gold
        assert why[version] == ("gold on production (one of its last 3)",)


class _StopAfterOne:
    """A ProgressSink whose first advance is a Ctrl-C: gc interrupted while deleting."""

    def task(self, label: str, total: int | None):  # type: ignore[no-untyped-def]
        def advance(amount: int) -> None:
            raise KeyboardInterrupt

        return advance


def test_an_interrupted_deletion_is_finished_by_the_next_run(reg: Registry) -> None:
    from mvctl.errors import Interrupted

    before = storage_bytes(reg)
    total = gc(reg.root, "fraud").plan.bytes
    with pytest.raises(Interrupted, match=f"1 of {len(PRUNED)} removed"):
        gc(reg.root, "fraud", dry_run=False, progress=_StopAfterOne())
    assert deregistered_on(reg.origin) == PRUNED
    plan = gc(reg.root, "fraud").plan
    reasons = sorted(v.reasons[0] for v in plan.versions if v.version in PRUNED)
    assert reasons == ["already pruned"] + ["pending prune"] * (len(PRUNED) - 1)
    gc(reg.root, "fraud", dry_run=False)
    assert before - storage_bytes(reg) == total
    assert gc(reg.root, "fraud").plan.pruned == ()
