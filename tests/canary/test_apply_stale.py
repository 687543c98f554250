"""--apply acts on a report's verdict only while the registry holds what the report
analysed: a rollback decided for canary v0.2.0 must not stop canary v0.3.0, promoted while
the analysis was reading the logs; evidence against production v0.1.0 must not replace the
v0.3.0 shipped meanwhile; of two watchers that analysed the same state, one acts. The
analysis fetches first, and each move re-checks the analysed state on what it fetched
(ConflictError, exit 4, nothing changed)."""

import re
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.canary.analysis import analyze
from mvctl.canary.apply import perform, plan
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.errors import ConflictError
from tests.canary.test_apply import CONFIG, Traffic
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        Release(weights=b"one", auc=0.91, push=True, promote=("production",)),
        Release(weights=b"two", auc=0.93, push=True),
        Release(weights=b"three", auc=0.95, push=True),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def holder(reg: Registry, channel: str) -> str | None:
    return channels.load(GitRepo.open(reg.root), "fraud").holder(channel)


def test_a_stale_rollback_does_not_stop_the_version_promoted_since(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=2)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.05)
    traffic.serve("canary", "v0.2.0", 400, fpr=0.05, errors=0.2)
    report = analyze(reg.root, "fraud", [traffic.log], [traffic.outcomes])
    action = plan(report)
    assert action.kind == "stop" and action.version == "v0.2.0"

    # Meanwhile (the analysis of a big log takes a while) the operator replaces the canary.
    proc = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "canary")
    assert proc.returncode == 0, proc.stderr
    assert holder(reg, "canary") == "v0.3.0"

    with pytest.raises(ConflictError, match=re.escape("canary holds v0.3.0, not v0.2.0")):
        perform(reg.root, action)
    assert holder(reg, "canary") == "v0.3.0", "v0.2.0's rollback stopped v0.3.0"


def test_a_stale_promotion_does_not_overwrite_a_newer_production(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=50)  # the last step
    traffic = Traffic(reg.root, seed=3)
    traffic.serve("production", "v0.1.0", 4000, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 4000, fpr=0.01)
    action = plan(analyze(reg.root, "fraud", [traffic.log], [traffic.outcomes]))
    assert action.kind == "promote" and action.version == "v0.2.0"

    # Meanwhile someone ships v0.3.0 to production by hand (through the same gates).
    proc = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "production")
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ConflictError, match=re.escape("production holds v0.3.0, not v0.1.0")):
        perform(reg.root, action)
    assert holder(reg, "production") == "v0.3.0", "evidence against v0.1.0 replaced v0.3.0"
    assert holder(reg, "canary") == "v0.2.0"  # nothing changed: not stopped either


def test_a_stale_weight_step_is_refused(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=4)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 3000, fpr=0.10)
    action = plan(analyze(reg.root, "fraud", [traffic.log], [traffic.outcomes]))
    assert action.kind == "weight" and action.expected is not None
    proc = mvctl(reg.root, "canary", "weight", "fraud", "50", "--reason", "by hand")
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(ConflictError, match="weight"):
        perform(reg.root, action)
    state = channels.load(GitRepo.open(reg.root), "fraud")
    assert state.weight("canary") == 50


def test_of_two_watchers_that_analysed_the_same_state_one_acts(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=4)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 3000, fpr=0.10)
    report = analyze(reg.root, "fraud", [traffic.log], [traffic.outcomes])
    first, second = plan(report), plan(report)
    assert first.kind == "weight" and first.weight == 25
    applied = perform(reg.root, first)
    assert [m.changed for m in applied.moves] == [True]
    with pytest.raises(ConflictError, match="newest event"):
        perform(reg.root, second)
    events = channels.load(GitRepo.open(reg.root), "fraud").channel_events("canary")
    assert [e.weight for e in events] == [5, 25]


def test_apply_from_a_clone_not_fetched_does_not_stop_the_remotes_new_canary(
    reg: Registry, tmp_path: Path
) -> None:
    """Real CLI, two clones: the analysis reads the local (unfetched) registry, the stop
    then fetches and acts on the remote, whatever it holds now."""
    import subprocess

    from tests.conftest import remote_holder

    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)  # pushed
    traffic = Traffic(reg.root, seed=2)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.05)
    traffic.serve("canary", "v0.2.0", 400, fpr=0.05, errors=0.2)

    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(reg.origin), str(other)], check=True)
    proc = mvctl(other, "promote", "fraud", "v0.3.0", "--to", "canary")
    assert proc.returncode == 0, proc.stderr
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.3.0"

    code, report = traffic.analyze(reg, "--apply")  # this clone believed v0.2.0: it fetches
    assert report["candidate"]["version"] == "v0.3.0" and report["candidate"]["requests"] == 0
    assert code == 0 and report["applied"]["moves"] == [], report["applied"]
    assert remote_holder(reg.origin, "fraud", "canary") == "v0.3.0", (
        "v0.2.0's evidence stopped v0.3.0 on the remote"
    )


def test_apply_from_a_clone_not_fetched_does_not_replace_the_remotes_new_production(
    reg: Registry, tmp_path: Path
) -> None:
    """Real CLI, two clones: evidence against production v0.1.0 (local view) promotes
    v0.2.0 over the v0.3.0 someone else shipped to production meanwhile."""
    import subprocess

    from tests.conftest import remote_holder

    promote(reg.root, "fraud", "v0.2.0", "canary", weight=50)
    traffic = Traffic(reg.root, seed=3)
    traffic.serve("production", "v0.1.0", 4000, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 4000, fpr=0.01)

    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(reg.origin), str(other)], check=True)
    proc = mvctl(other, "promote", "fraud", "v0.3.0", "--to", "production")
    assert proc.returncode == 0, proc.stderr

    code, report = traffic.analyze(reg, "--apply")
    assert report["baseline"]["version"] == "v0.3.0"  # fetched: not the stale local view
    assert report["baseline"]["requests"] == 0 and report["verdict"] != "promote"
    assert code == 0 and not any(m["changed"] for m in report["applied"]["moves"]), json_moves(
        report
    )
    assert remote_holder(reg.origin, "fraud", "production") == "v0.3.0", (
        "production v0.3.0 replaced on evidence about v0.1.0: " + json_moves(report)
    )


def json_moves(report: dict[str, Any]) -> str:
    return str([(m["kind"], m["channel"], m.get("version")) for m in report["applied"]["moves"]])
