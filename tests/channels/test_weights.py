"""Weighted canary channels: --weight on promote, `canary weight`, `canary stop`, and every
reader of channel state after them (history, list/show, rollback, check, the webhook)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.channels.weights import set_weight, stop
from mvctl.check import check
from mvctl.errors import PolicyError, UsageError
from mvctl.formats import tags
from mvctl.registry.read import list_models, list_versions, show
from mvctl.web import webhook
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl, remote_tags

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      canary:
        - {metric: auc, min: 0.90}
"""
AUCS = {"v0.1.0": 0.91, "v0.2.0": 0.85, "v0.3.0": 0.93}


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    releases = (Release(weights=v.encode(), auc=auc, push=True) for v, auc in AUCS.items())
    return registry_factory(*releases, config=CONFIG)


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


def body(reg: Registry, tag: str) -> dict[str, Any]:
    """The JSON body of a tag's message (what a serving host parses after the title)."""
    message = reg.git("tag", "-l", "--format=%(contents)", tag)
    parsed: dict[str, Any] = json.loads(message.partition("\n")[2])
    return parsed


def state(reg: Registry) -> channels.ModelState:
    return channels.load(GitRepo.open(reg.root), "fraud")


def commit_of(reg: Registry, ref: str) -> str:
    return reg.git("rev-parse", f"{ref}^{{commit}}").strip()


def test_a_promotion_to_canary_records_the_default_weight_and_says_so(reg: Registry) -> None:
    proc = mvctl(reg.root, "promote", "fraud", "v0.1.0", "--to", "canary")
    assert proc.returncode == 0, proc.stderr
    assert "default weight, 10%" in proc.stdout and "at 10%" in proc.stdout
    assert body(reg, "fraud@canary")["weight"] == 10
    assert body(reg, "fraud#canary#1")["weight"] == 10
    assert '"weight": 10\n' in reg.git("tag", "-l", "--format=%(contents)", "fraud@canary")
    # ... and published: the remote's alias is the one hosts read.
    assert remote_tags(reg.origin)["fraud@canary"] == reg.git("rev-parse", "fraud@canary").strip()
    # Other channels get no weight: their tags stay as they always were.
    promote(reg.root, "fraud", "v0.1.0", "production")
    assert "weight" not in body(reg, "fraud@production")
    assert "weight" not in body(reg, "fraud#production#2")
    assert state(reg).weight("production") is None


def test_an_explicit_weight_is_recorded_in_event_alias_and_json(reg: Registry) -> None:
    proc = mvctl(reg.root, "promote", "fraud", "v0.3.0", "--to", "canary", "--weight", "25",
                 "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    move = json.loads(proc.stdout)
    assert (move["weight"], move["note"]) == (25, "")
    assert body(reg, "fraud@canary")["weight"] == 25
    fractional = promote(reg.root, "fraud", "v0.1.0", "canary", weight=12.5)
    assert fractional.weight == 12.5 and body(reg, "fraud@canary")["weight"] == 12.5


@pytest.mark.parametrize(
    "args",
    [
        ("--to", "production", "--weight", "10"),
        ("--to", "shadow", "--weight", "10"),
        ("--to", "canary", "--weight", "10; rm -rf ."),
        ("--to", "canary", "--weight", "NaN"),
        ("--to", "canary", "--weight", "inf"),
        ("--to", "canary", "--weight", "0"),
        ("--to", "canary", "--weight", "101"),
        ("--to", "canary", "--weight", "-1"),
    ],
)
def test_bad_weights_are_usage_errors_that_change_nothing(
    reg: Registry, args: tuple[str, ...]
) -> None:
    before = reg.tags(), remote_tags(reg.origin)
    proc = mvctl(reg.root, "promote", "fraud", "v0.1.0", *args, "--json")
    assert proc.returncode == 2, proc.stderr
    assert json.loads(proc.stdout)["exit"] == 2 and "Traceback" not in proc.stderr
    assert (reg.tags(), remote_tags(reg.origin)) == before
    if "shadow" in args:
        assert "shadow is a channel with no weight" in proc.stderr


@pytest.mark.parametrize("weight", ["10; rm", "NaN", "inf", "0", "101", "-1"])
def test_canary_weight_refuses_hostile_weights(reg: Registry, weight: str) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    before = reg.tags()
    proc = mvctl(reg.root, "canary", "weight", "fraud", weight)
    assert proc.returncode == 2, proc.stderr
    assert reg.tags() == before


def test_gates_run_for_a_weighted_promotion(reg: Registry) -> None:
    with pytest.raises(PolicyError, match="failed the canary gates"):
        promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    assert state(reg).holder("canary") is None


def test_canary_weight_is_a_new_event_on_the_same_commit(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    alias_before = reg.git("rev-parse", "fraud@canary").strip()
    proc = mvctl(reg.root, "canary", "weight", "fraud", "25", "--reason", "step 2", "--json")
    assert proc.returncode == 0, proc.stderr
    move = json.loads(proc.stdout)
    assert (move["kind"], move["event"], move["weight"], move["previous_weight"]) == (
        "weight",
        "fraud#canary#2",
        25,
        10,
    )
    assert move["pushed"] and "fraud#canary#2" in move["published"]
    # Same commit, new alias object: hosts see the new share without a new download.
    assert commit_of(reg, "fraud#canary#2") == commit_of(reg, "fraud@v0.1.0")
    assert commit_of(reg, "fraud@canary") == commit_of(reg, "fraud@v0.1.0")
    assert reg.git("rev-parse", "fraud@canary").strip() != alias_before
    event = body(reg, "fraud#canary#2")
    assert (event["kind"], event["weight"], event["previous_weight"]) == ("weight", 25, 10)
    assert (body(reg, "fraud@canary")["weight"], body(reg, "fraud@canary")["event"]) == (
        25,
        "fraud#canary#2",
    )
    assert remote_tags(reg.origin)["fraud@canary"] == reg.git("rev-parse", "fraud@canary").strip()
    assert check(reg.root).ok
    # The same weight again: nothing to do.
    before = reg.tags(), remote_tags(reg.origin)
    again = mvctl(reg.root, "canary", "weight", "fraud", "25")
    assert again.returncode == 0 and "already at 25%" in again.stdout
    assert (reg.tags(), remote_tags(reg.origin)) == before
    # A weight change is no move: the version's standing is untouched, its tenure goes on.
    assert state(reg).standing("canary") == {}
    # Promoting the held version with another weight is a weight change too.
    changed = promote(reg.root, "fraud", "v0.1.0", "canary", weight=50)
    assert (changed.kind, changed.previous_weight, changed.weight) == ("weight", 25, 50)


def test_canary_weight_on_an_empty_channel_says_promote_first(reg: Registry) -> None:
    before = reg.tags()
    proc = mvctl(reg.root, "canary", "weight", "fraud", "25")
    assert proc.returncode == 1
    assert "holds no version" in proc.stderr and "mvctl promote fraud VERSION" in proc.stderr
    assert reg.tags() == before
    with pytest.raises(UsageError, match="shadow is a channel with no weight"):
        set_weight(reg.root, "fraud", 25, "shadow")
    with pytest.raises(UsageError, match="unknown channel"):
        set_weight(reg.root, "fraud", 25, "canari")


def test_canary_stop_unassigns_and_deletes_the_alias(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=20)
    set_weight(reg.root, "fraud", 40)
    proc = mvctl(reg.root, "canary", "stop", "fraud", "--reason", "p99 up", "--json")
    assert proc.returncode == 0, proc.stderr
    move = json.loads(proc.stdout)
    assert (move["kind"], move["event"], move["version"], move["previous_weight"]) == (
        "stop",
        "fraud#canary!#3",
        "v0.3.0",
        40,
    )
    assert commit_of(reg, "fraud#canary!#3") == commit_of(reg, "fraud@v0.3.0")
    assert body(reg, "fraud#canary!#3")["kind"] == "stop"
    assert "fraud@canary" not in reg.tags()
    on_remote = remote_tags(reg.origin)
    assert "fraud@canary" not in on_remote and "fraud#canary!#3" in on_remote
    assert check(reg.root).ok

    # An empty channel: show says so, rollback and weight refuse, a second stop is a no-op.
    shown = mvctl(reg.root, "show", "fraud@canary")
    assert shown.returncode == 3 and "holds no version" in shown.stderr
    back = mvctl(reg.root, "rollback", "fraud", "-c", "canary", "--reason", "x")
    assert back.returncode == 1 and "was stopped" in back.stderr
    to = mvctl(reg.root, "rollback", "fraud", "-c", "canary", "--to", "v0.3.0", "--reason", "x")
    assert to.returncode == 1 and "was stopped" in to.stderr
    assert mvctl(reg.root, "canary", "weight", "fraud", "5").returncode == 1
    before = reg.tags(), remote_tags(reg.origin)
    again = mvctl(reg.root, "canary", "stop", "fraud", "--reason", "p99 up")
    assert again.returncode == 0 and "stopped already" in again.stdout
    assert (reg.tags(), remote_tags(reg.origin)) == before
    assert "canary" not in list_models(reg.root)[0].channels
    assert all(not v.channels for v in list_versions(reg.root, "fraud"))

    # A stop says nothing about the version; the next promotion starts a new tenure.
    assert state(reg).standing("canary") == {}
    fresh = promote(reg.root, "fraud", "v0.1.0", "canary")
    assert (fresh.previous, fresh.event, fresh.weight) == (None, "fraud#canary#4", 10)
    assert state(reg).standing("canary") == {}  # v0.3.0 was not replaced: it was stopped
    assert check(reg.root).ok

    events = json.loads(mvctl(reg.root, "history", "fraud", "--json").stdout)["events"]
    assert [(e["kind"], e["version"], e["weight"], e["previous_weight"]) for e in events] == [
        ("promote", "v0.3.0", 20, None),
        ("weight", "v0.3.0", 40, 20),
        ("stop", "v0.3.0", None, 40),
        ("promote", "v0.1.0", 10, None),
    ]
    table = mvctl(reg.root, "history", "fraud").stdout
    assert "v0.3.0 → (stopped)" in table and "20% → 40%" in table


def test_stop_refusals(reg: Registry) -> None:
    assert mvctl(reg.root, "canary", "stop", "fraud").returncode == 2  # --reason is required
    with pytest.raises(UsageError, match="needs --reason"):
        stop(reg.root, "fraud", reason=" ")
    with pytest.raises(UsageError, match="production is never stopped"):
        stop(reg.root, "fraud", "production", reason="x")
    with pytest.raises(PolicyError, match="holds no version: nothing to stop"):
        stop(reg.root, "fraud", reason="x")
    promote(reg.root, "fraud", "v0.1.0", "shadow")  # a channel with no weight stops too
    assert stop(reg.root, "fraud", "shadow", reason="enough").kind == "stop"
    assert state(reg).holder("shadow") is None
    dry = stop(reg.root, "fraud", "shadow", reason="x", dry_run=True)
    assert not dry.changed


def test_dry_runs_change_nothing(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    before = reg.tags(), remote_tags(reg.origin)
    assert set_weight(reg.root, "fraud", 30, dry_run=True).weight == 30
    planned = stop(reg.root, "fraud", reason="x", dry_run=True)
    assert planned.kind == "stop" and planned.event == "fraud#canary!#2"
    proc = mvctl(reg.root, "canary", "stop", "fraud", "--reason", "x", "--dry-run")
    assert proc.returncode == 0 and "would be stopped" in proc.stdout
    assert (reg.tags(), remote_tags(reg.origin)) == before


def test_a_rollback_of_canary_keeps_its_weight_and_weights_do_not_reset_the_retry_window(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary", weight=20)
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=20)
    set_weight(reg.root, "fraud", 30)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T12:00:00+00:00")
    back = rollback(reg.root, "fraud", "canary", reason="bad v0.3.0")
    assert (back.version, back.weight) == ("v0.1.0", 30)
    assert body(reg, "fraud@canary")["weight"] == 30
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T12:01:00+00:00")
    set_weight(reg.root, "fraud", 5, reason="careful")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-06-01T12:02:00+00:00")
    # A second press of the panic button within the window is still a retry of the first.
    again = rollback(reg.root, "fraud", "canary", reason="bad v0.3.0")
    assert not again.changed and "taken as a retry" in again.note
    assert state(reg).holder("canary") == "v0.1.0"
    assert state(reg).standing("canary") == {"v0.1.0": "gold", "v0.3.0": "bad"}
    assert check(reg.root).ok


def test_list_and_show_give_a_channels_weight(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary", weight=15)
    promote(reg.root, "fraud", "v0.1.0", "production")
    [summary] = list_models(reg.root)
    assert summary.channels == {"canary": "v0.1.0", "production": "v0.1.0"}
    assert summary.weights == {"canary": 15}
    assert show(reg.root, "fraud@canary").info.weights == {"canary": 15}
    assert show(reg.root, "fraud@v0.3.0").info.weights == {}
    assert "canary=v0.1.0 (15%)" in mvctl(reg.root, "list").stdout
    assert "canary (15%), production" in mvctl(reg.root, "show", "fraud@canary").stdout
    listed = json.loads(mvctl(reg.root, "list", "fraud", "--json").stdout)["versions"]
    assert [v["weights"] for v in listed] == [{"canary": 15}, {}, {}]


def test_check_finds_an_alias_left_over_a_stop_and_a_missing_one(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    stop(reg.root, "fraud", reason="done", push=False)
    reg.git("tag", "-a", "-m", "by hand", "fraud@canary", "fraud@v0.1.0^{commit}")
    problems = check(reg.root, offline=True).problems
    assert any("fraud@canary still exists but its newest event fraud#canary!#2" in p
               for p in problems)  # fmt: skip
    reg.git("tag", "-d", "fraud@canary")
    assert check(reg.root, offline=True).ok
    promote(reg.root, "fraud", "v0.3.0", "staging", push=False)
    reg.git("tag", "-d", "fraud@staging")
    assert any("fraud@staging is missing" in p for p in check(reg.root, offline=True).problems)


def retag(reg: Registry, alias: str, **changes: Any) -> None:
    """Re-tag ``alias`` by hand on its own commit, its body changed by ``changes`` (None
    deletes a field), the title kept, and force-pushed: what anyone allowed to push tags
    can do."""
    fields = {k: v for k, v in {**body(reg, alias), **changes}.items() if v is not None}
    title = reg.git("tag", "-l", "--format=%(contents:subject)", alias).strip()
    message = reg.root.parent / "alias-message"
    message.write_text(f"{title}\n\n{json.dumps(fields, indent=1)}\n")
    reg.git("tag", "-f", "-a", "-F", str(message), alias, commit_of(reg, alias))
    reg.git("push", "-q", "--force", "origin", f"refs/tags/{alias}")


def test_check_finds_an_alias_whose_weight_no_event_gave(reg: Registry) -> None:
    """Hostile finding 4: 10% -> 90% of traffic by a re-tag, with no event recording it."""
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=10)
    assert check(reg.root, offline=True).ok
    retag(reg, "fraud@canary", weight=90)
    assert [e.weight for e in state(reg).channel_events("canary")] == [10]  # the record...
    assert show(reg.root, "fraud@canary").info.weights == {"canary": 90}  # ...what hosts get
    problems = check(reg.root, offline=True).problems
    assert problems == (
        "fraud@canary gives canary 90% of traffic but its newest event fraud#canary#1 gives "
        "it 10%: hosts route what the alias says, and no event records it (run 'mvctl canary "
        "weight fraud 10' to move it back with a record)",
    )
    proc = mvctl(reg.root, "check")  # the remote has the same alias: this is the problem
    assert proc.returncode == 1 and "fraud@canary gives canary 90%" in proc.stdout
    assert len(check(reg.root).problems) == 1
    # The repair the problem names is a recorded move: it says what the alias had.
    moved = set_weight(reg.root, "fraud", 10, reason="undo a hand-made 90%")
    assert (moved.event, moved.previous_weight) == ("fraud#canary#2", 90)
    assert check(reg.root).ok


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"weight": None}, "fraud@canary gives canary no weight (no traffic)"),
        ({"counter": 7}, "fraud@canary names event fraud#canary#1 (number 7)"),
        ({"event": "fraud#canary#9"}, "fraud@canary names event fraud#canary#9 (number 1)"),
        ({"version": "v0.1.0"}, "fraud@canary names version v0.1.0"),
        ({"model": "other", "channel": "staging"}, "fraud@canary names other@staging"),
    ],
)
def test_check_compares_every_field_of_an_alias_body_with_the_newest_event(
    reg: Registry, changes: dict[str, Any], expected: str
) -> None:
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=10)
    retag(reg, "fraud@canary", **changes)
    [problem] = check(reg.root, offline=True).problems
    assert problem.startswith(expected), problem
    assert "newest event fraud#canary#1" in problem


def test_check_judges_a_lightweight_alias_by_its_commit_and_the_weight_it_lacks(
    reg: Registry,
) -> None:
    """A lightweight alias (``git tag -f M@C COMMIT``) has no body: hosts read its commit
    and no weight. On an unweighted channel that is all there is to agree on; on a weighted
    one the hosts send the channel nothing, which no event says."""
    promote(reg.root, "fraud", "v0.1.0", "production")
    reg.git("tag", "-f", "fraud@production", commit_of(reg, "fraud@production"))
    assert check(reg.root, offline=True).ok
    reg.git("tag", "-f", "fraud@production", commit_of(reg, "fraud@v0.3.0"))  # moved, though
    [problem] = check(reg.root, offline=True).problems
    assert "fraud@production points at" in problem and "fraud#production#1" in problem
    reg.git("tag", "-f", "fraud@production", commit_of(reg, "fraud#production#1"))

    promote(reg.root, "fraud", "v0.3.0", "canary", weight=20)
    reg.git("tag", "-f", "fraud@canary", commit_of(reg, "fraud@canary"))
    reg.git("push", "-q", "--force", "origin", "refs/tags/fraud@canary")
    assert show(reg.root, "fraud@canary").info.weights == {}  # what hosts make of it
    assert check(reg.root, offline=True).problems == (
        "fraud@canary is a lightweight tag, so it gives canary no weight (no traffic) but "
        "its newest event fraud#canary#2 gives it 20%: hosts route what the alias says, and "
        "no event records it (run 'mvctl canary weight fraud 20' to move it back with a "
        "record)",
    )
    moved = set_weight(reg.root, "fraud", 20, reason="an annotated alias again")
    assert (moved.event, moved.previous_weight) == ("fraud#canary#3", None)
    assert check(reg.root).ok and body(reg, "fraud@canary")["weight"] == 20


def test_an_unassignment_by_another_tool_is_a_stop(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    # Written by hand (as `gto unassign` would): no body of ours.
    reg.git("tag", "-a", "-m", "gto unassign", "fraud#canary!#2", "fraud@v0.1.0^{commit}")
    reg.git("tag", "-d", "fraud@canary")
    [*_, last] = state(reg).channel_events("canary")
    assert (last.kind, last.version) == ("stop", "v0.1.0")
    assert check(reg.root, offline=True).ok
    # A body claiming "stop" does not make an assignment one.
    reg.git("tag", "-a", "-m", 'x\n\n{"kind": "stop"}', "fraud#canary#3", "fraud@v0.3.0^{commit}")
    assert state(reg).channel_events("canary")[-1].kind == "assign"


# --- the webhook: a weight change is no new arrival ---------------------------------------


def _alert(starts: datetime) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CanaryErrors"}',
        "status": "firing",
        "receiver": "mvctl",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "CanaryErrors",
                    "mvctl_model": "fraud",
                    "mvctl_channel": "canary",
                },
                "annotations": {"summary": "5xx on canary"},
                "startsAt": starts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        ],
    }


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def test_an_alert_that_started_before_a_weight_change_still_rolls_the_canary_back(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    monkeypatch.setenv("GIT_COMMITTER_DATE", _stamp(start))
    promote(reg.root, "fraud", "v0.1.0", "canary")
    monkeypatch.setenv("GIT_COMMITTER_DATE", _stamp(start + timedelta(minutes=1)))
    promote(reg.root, "fraud", "v0.3.0", "canary")  # v0.1.0 replaced: gold
    monkeypatch.setenv("GIT_COMMITTER_DATE", _stamp(start + timedelta(minutes=5)))
    set_weight(reg.root, "fraud", 50)  # the canary looked fine ... at first
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    ctx_state = state(reg)
    [_, arrived, weighted] = ctx_state.channel_events("canary")
    assert ctx_state.arrival("canary", weighted) == arrived
    # The alert started after v0.3.0 arrived but before its weight went up: it is about
    # v0.3.0, which still serves.
    alert = _alert(start + timedelta(minutes=3))
    [decision] = webhook.handle(reg.root, alert)
    assert decision.action == "rolled_back", decision.detail
    assert state(reg).holder("canary") == "v0.1.0"
    assert body(reg, "fraud@canary")["weight"] == 50  # the rollback kept the share
    incident = webhook.incident_id("fraud", "canary", "v0.3.0", arrived.name)
    assert decision.incident == incident
    [again] = webhook.handle(reg.root, alert)
    assert again.action == "already"


def test_an_alert_on_a_stopped_canary_rolls_nothing_back(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.1.0", "canary")
    promote(reg.root, "fraud", "v0.3.0", "canary")
    stop(reg.root, "fraud", reason="done")
    before = reg.tags(), remote_tags(reg.origin)
    [decision] = webhook.handle(reg.root, _alert(datetime.now(UTC)))
    assert decision.action == "failed" and "serves no version" in decision.detail
    assert not decision.retry
    assert (reg.tags(), remote_tags(reg.origin)) == before


def test_alias_weight_is_what_the_remote_serves(reg: Registry, tmp_path: Path) -> None:
    """The contract with the host: the alias on the remote carries the weight as JSON."""
    promote(reg.root, "fraud", "v0.1.0", "canary", weight=7.5)
    message = reg.git(
        "--git-dir", str(reg.origin), "tag", "-l", "--format=%(contents)", "fraud@canary"
    )
    assert json.loads(message.partition("\n")[2])["weight"] == 7.5
    assert tags.AliasBody.from_dict(json.loads(message.partition("\n")[2])).weight == 7.5
