"""The seasonal toolkit: labels after registering (labels tags), list filters and status,
and ``promote --select`` choosing the newest gold version that matches, through the same
gates and publishing as any promotion; GTO reads such a registry as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.catalog import Filters, catalog
from mvctl.channels.labels import label
from mvctl.channels.marks import mark_gold, retire
from mvctl.channels.promotion import promote_selected
from mvctl.channels.rollback import rollback
from mvctl.check import check
from mvctl.errors import ConflictError, PolicyError, UsageError
from mvctl.formats import tags
from mvctl.formats.labels import LabelFilter, parse_metric_filter, parse_selector
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, remote_tags, run

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.90}
"""
# v0.1.0..v0.3.0 each served production in turn (v0.1.0 and v0.2.0 are gold there);
# v0.4.0 fails the production gate and never served; all published to origin.
RELEASES = (
    Release(weights=b"one", auc=0.91, promote=("production",)),
    Release(weights=b"two", auc=0.93, promote=("production",)),
    Release(weights=b"three", auc=0.95, promote=("production",)),
    Release(weights=b"four", auc=0.85),
)


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*RELEASES, config=CONFIG)


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


def holder(reg: Registry, channel: str = "production") -> str | None:
    return channels.load(GitRepo.open(reg.root), "fraud").holder(channel)


def listed(reg: Registry, filters: Filters | None = None) -> list[str]:
    return [v.version for v in catalog(reg.root, "fraud", filters)]


def test_label_writes_a_tag_and_never_the_manifest(reg: Registry) -> None:
    head = reg.git("rev-parse", "HEAD")
    manifest = reg.git("show", "fraud@v0.1.0:registry/fraud/manifest.yaml")
    done = label(reg.root, "fraud@v0.1.0", ("season=holiday", "team=risk"), description="Q4")
    assert done.tag == "fraud@v0.1.0#labels#1" and done.changed and done.pushed
    assert done.labels == ("season=holiday", "team=risk") and done.previous_labels == ()
    assert reg.git("rev-parse", "HEAD") == head  # no commit: the manifest is as registered
    assert reg.git("show", "fraud@v0.1.0:registry/fraud/manifest.yaml") == manifest
    assert reg.git("rev-parse", "fraud@v0.1.0#labels#1^{commit}") == reg.git(
        "rev-parse", "fraud@v0.1.0^{commit}"
    )
    assert "fraud@v0.1.0#labels#1" in remote_tags(reg.origin)  # published by default
    again = label(reg.root, "fraud@v0.1.0", ("season=winter",), remove=("team",), push=False)
    assert again.tag == "fraud@v0.1.0#labels#2" and again.labels == ("season=winter",)
    assert again.description == "Q4"  # kept: only --description replaces it
    assert "fraud@v0.1.0#labels#2" not in remote_tags(reg.origin)
    [first] = [v for v in catalog(reg.root, "fraud") if v.version == "v0.1.0"]
    assert first.annotations.labels == ("season=winter",)  # the newest labels tag wins
    assert first.annotations.tag == "fraud@v0.1.0#labels#2"


def test_label_without_change_writes_nothing_and_dry_run_nothing(reg: Registry) -> None:
    label(reg.root, "fraud@v0.2.0", ("season=holiday",), push=False)
    before = reg.tags()
    same = label(reg.root, "fraud@v0.2.0", ("season=holiday",), push=False)
    assert (same.changed, same.tag) == (False, None)
    dry = label(reg.root, "fraud@v0.2.0", ("season=summer",), dry_run=True)
    assert dry.changed and dry.tag == "fraud@v0.2.0#labels#2" and dry.labels == ("season=summer",)
    gone = label(reg.root, "fraud@v0.2.0", remove=("nope",), push=False)
    assert not gone.changed and gone.notes == ("nope had no label",)
    assert reg.tags() == before


@pytest.mark.parametrize(
    ("ref", "labels", "remove", "error"),
    [
        ("fraud@v0.1.0", ("season holiday",), (), "KEY=VALUE"),
        ("fraud@v0.1.0", ("a=1",), ("a",), "both set and removed"),
        ("fraud@v0.1.0", (), ("--all",), "not a label key"),
        ("fraud@v0.1.0", (), (), "nothing to change"),
        ("fraud@production", ("a=1",), (), "names no version"),
        ("fraud", ("a=1",), (), "names no version"),
        ("Fraud@v0.1.0", ("a=1",), (), "invalid model name"),
    ],
)
def test_label_refuses_bad_words_before_reading_anything(
    reg: Registry, ref: str, labels: tuple[str, ...], remove: tuple[str, ...], error: str
) -> None:
    before = reg.snapshot()
    with pytest.raises(UsageError, match=error):
        label(reg.root, ref, labels, remove=remove)
    assert reg.snapshot() == before


def test_label_of_an_unknown_version_is_not_found(reg: Registry) -> None:
    with pytest.raises(Exception, match=r"has no version v9\.0\.0") as caught:
        label(reg.root, "fraud@v9.0.0", ("a=1",), push=False)
    assert getattr(caught.value, "exit_code", None) == 3


def test_two_labellers_of_one_number_conflict(reg: Registry) -> None:
    """The number is taken by compare-and-swap: a labels tag never overwrites another."""
    git = GitRepo.open(reg.root)
    commit = reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    git.create_annotated_tag("fraud@v0.1.0#labels#1", commit, "Label\n\n{}\n")
    with pytest.raises(ConflictError):
        git.create_annotated_tag("fraud@v0.1.0#labels#1", commit, "Label\n\n{}\n")


def test_list_filters_and_status(reg: Registry) -> None:
    label(reg.root, "fraud@v0.1.0", ("season=holiday",), push=False)
    label(reg.root, "fraud@v0.3.0", ("season=holiday", "team=risk"), push=False)
    label(reg.root, "fraud@v0.2.0", ("season=regular",), push=False)
    assert listed(reg) == ["v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0"]
    holiday = LabelFilter("season", "holiday")
    assert listed(reg, Filters(labels=(holiday,))) == ["v0.1.0", "v0.3.0"]
    both = Filters(labels=(holiday, LabelFilter("team", "risk")))
    assert listed(reg, both) == ["v0.3.0"]  # AND
    assert listed(reg, Filters(metrics=(parse_metric_filter("auc>=0.93"),))) == [
        "v0.2.0",
        "v0.3.0",
    ]
    assert listed(reg, Filters(labels=(holiday,), metrics=(parse_metric_filter("auc<0.92"),))) == [
        "v0.1.0"
    ]
    assert listed(reg, Filters(channel="production")) == ["v0.1.0", "v0.2.0", "v0.3.0"]
    assert listed(reg, Filters(channel="staging")) == []
    rollback(reg.root, "fraud", "production", reason="incident", push=False)  # v0.3.0 is bad
    retire(reg.root, "fraud", "v0.4.0", reason="never served", push=False)
    status = {v.version: v.status for v in catalog(reg.root, "fraud")}
    # v0.2.0 was gold (replaced by v0.3.0) before the rollback brought it back.
    assert status == {"v0.1.0": "gold", "v0.2.0": "gold", "v0.3.0": "bad", "v0.4.0": "retired"}
    [row] = [v for v in catalog(reg.root, "fraud") if v.version == "v0.3.0"]
    assert row.standing == {"production": "bad"} and row.served == ("production",)
    assert row.to_dict()["status"] == "bad" and row.to_dict()["labels"] == [
        "season=holiday",
        "team=risk",
    ]


def test_list_marks_a_pruned_version_deregistered_and_a_marked_one_gold(reg: Registry) -> None:
    mark_gold(reg.root, "fraud", "v0.4.0", reason="by hand", push=False)
    assert {v.version: v.status for v in catalog(reg.root, "fraud")}["v0.4.0"] == "gold"
    git = GitRepo.open(reg.root)
    commit = reg.git("rev-parse", "fraud@v0.4.0^{commit}").strip()
    body = tags.MarkBody("deregister", "fraud", "v0.4.0", "gc", "Ada", "now", pruned=True)
    git.create_annotated_tag(
        "fraud@v0.4.0!", commit, tags.format_message("Deregister", body.to_dict())
    )
    assert {v.version: v.status for v in catalog(reg.root, "fraud")}["v0.4.0"] == "deregistered"


def test_list_reads_the_index_and_sees_every_new_labels_tag(reg: Registry) -> None:
    """The catalog view is a memo: a labels tag written after a list shows in the next."""
    assert catalog(reg.root, "fraud")[0].annotations.labels == ()
    index = reg.root / ".git" / "mvctl" / "index" / "catalog" / "fraud.json"
    assert index.is_file()
    label(reg.root, "fraud@v0.1.0", ("season=holiday",), push=False)
    assert catalog(reg.root, "fraud")[0].annotations.labels == ("season=holiday",)


def test_promote_select_picks_the_newest_gold_version_that_matches(reg: Registry) -> None:
    label(reg.root, "fraud@v0.1.0", ("season=holiday",))
    label(reg.root, "fraud@v0.2.0", ("season=holiday",))
    label(reg.root, "fraud@v0.3.0", ("season=regular",))
    label(reg.root, "fraud@v0.4.0", ("season=holiday",))  # newest, but never served: not gold
    select = [parse_selector("label season=holiday")]
    move = promote_selected(reg.root, "fraud", "production", select)
    assert (move.version, move.previous, move.kind) == ("v0.2.0", "v0.3.0", "promote")
    assert move.selected == ("label season=holiday",) and move.pushed
    assert move.reason == "selected: label season=holiday"
    assert move.gates is not None and move.gates.passed
    assert holder(reg) == "v0.2.0"
    # ... and back: v0.3.0 was replaced, not rolled back from, so it is gold there now.
    regular = [parse_selector("label season=regular")]
    back = promote_selected(reg.root, "fraud", "production", regular)
    assert back.version == "v0.3.0" and holder(reg) == "v0.3.0"
    # Promoting what the channel holds and matches does nothing.
    same = promote_selected(reg.root, "fraud", "production", regular)
    assert same.version == "v0.3.0" and not same.changed


def test_select_skips_bad_and_retired_versions(reg: Registry) -> None:
    for version in ("v0.1.0", "v0.2.0", "v0.3.0"):
        label(reg.root, f"fraud@{version}", ("season=holiday",), push=False)
    rollback(reg.root, "fraud", "production", reason="incident", push=False)  # v0.3.0 -> v0.2.0
    # v0.3.0 is bad; v0.2.0 holds and matches: it is the choice, so nothing moves.
    select = [parse_selector("label season=holiday")]
    assert promote_selected(reg.root, "fraud", "production", select, push=False).version == "v0.2.0"
    with pytest.raises(PolicyError) as refused:
        promote_selected(reg.root, "fraud", "staging", select, push=False)
    assert "no gold version of fraud on staging matches label season=holiday" in str(refused.value)
    assert "v0.3.0 (not gold)" in str(refused.value)


def test_select_matching_nothing_is_refused_with_nothing_changed(reg: Registry) -> None:
    before = reg.snapshot()
    with pytest.raises(PolicyError, match="no gold version of fraud on production matches") as e:
        promote_selected(reg.root, "fraud", "production", [parse_selector("label season=none")])
    assert e.value.exit_code == 1
    assert reg.snapshot() == before
    with pytest.raises(UsageError, match="unknown channel"):
        promote_selected(reg.root, "fraud", "prod", [parse_selector("label season=none")])


def test_select_goes_through_the_gates(reg: Registry) -> None:
    """A version gold by hand that fails the production gate is refused like any other
    promotion of it, and goes with --force --reason only."""
    mark_gold(reg.root, "fraud", "v0.4.0", reason="vouched", push=False)
    label(reg.root, "fraud@v0.4.0", ("season=holiday",), push=False)
    select = [parse_selector("label season=holiday")]
    before = reg.snapshot()
    with pytest.raises(PolicyError, match="failed the production gates"):
        promote_selected(reg.root, "fraud", "production", select, push=False)
    assert reg.snapshot() == before
    with pytest.raises(UsageError, match="--force needs --reason"):
        promote_selected(reg.root, "fraud", "production", select, force=True, push=False)
    forced = promote_selected(
        reg.root, "fraud", "production", select, force=True, reason="holiday rush", push=False
    )
    assert (forced.version, forced.kind, forced.pushed) == ("v0.4.0", "override", False)
    assert holder(reg) == "v0.4.0"


def test_select_local_and_dry_run(reg: Registry) -> None:
    label(reg.root, "fraud@v0.1.0", ("season=holiday",), push=False)
    select = [parse_selector("label season=holiday")]
    dry = promote_selected(reg.root, "fraud", "production", select, dry_run=True)
    assert dry.dry_run and dry.version == "v0.1.0" and holder(reg) == "v0.3.0"
    published = remote_tags(reg.origin)
    local = promote_selected(reg.root, "fraud", "production", select, push=False)
    assert local.version == "v0.1.0" and not local.pushed and local.remote is None
    assert remote_tags(reg.origin) == published  # kept in this clone


def test_select_decides_on_the_remote_labels(reg: Registry, tmp_path: Path) -> None:
    """A labels tag another clone published is fetched before the choice."""
    other = tmp_path / "other"
    run("git", "clone", "-q", str(reg.origin), other, cwd=tmp_path)
    label(other, "fraud@v0.1.0", ("season=holiday",))
    select = [parse_selector("label season=holiday")]
    move = promote_selected(reg.root, "fraud", "production", select)
    assert move.version == "v0.1.0" and move.pushed


def test_check_validates_labels_tags(reg: Registry) -> None:
    label(reg.root, "fraud@v0.1.0", ("season=holiday",), push=False)
    assert check(reg.root, offline=True).problems == ()
    git = GitRepo.open(reg.root)
    v2 = reg.git("rev-parse", "fraud@v0.2.0^{commit}").strip()
    bad = tags.LabelsBody("fraud", "v0.1.0", 2, ("baseline",), "x\x1b[2J", "Ada", "now")
    git.create_annotated_tag("fraud@v0.1.0#labels#2", v2, tags.format_message("L", bad.to_dict()))
    reg.git("tag", "fraud@v0.2.0#labels#1", v2)  # lightweight: no body
    v1 = reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    moved = tags.LabelsBody("fraud", "v0.1.0", 2, ("a=1",), "", "Ada", "now")  # not N=3
    git.create_annotated_tag("fraud@v0.1.0#labels#3", v1, tags.format_message("L", moved.to_dict()))
    reg.git("tag", "-a", "-m", "x", "fraud@v7.0.0#labels#1", v2)
    found = check(reg.root, offline=True).problems
    assert any("fraud@v0.1.0#labels#2 points at" in p for p in found), found
    assert any("fraud@v0.1.0#labels#2: label 'baseline' is not KEY=VALUE" in p for p in found)
    assert any("fraud@v0.1.0#labels#2: its description contains control" in p for p in found)
    assert "fraud@v0.2.0#labels#1 has no body (a lightweight or hand-made tag): no labels" in found
    assert "fraud@v7.0.0#labels#1 labels v7.0.0, which is not registered" in found
    assert "fraud@v0.1.0#labels#3 names another tag in its body (fraud@v0.1.0 #2)" in found
    assert not any(p.startswith("fraud@v0.1.0#labels#1") for p in found)  # the sound one


@pytest.mark.slow
def test_gto_reads_a_labelled_registry_as_before(reg: Registry) -> None:
    """`gto show` and `gto history` (the real GTO) give the same versions, stages and
    events with labels tags as without them."""

    def gto(*args: str) -> object:
        return json.loads(run("gto", *args, "--json", cwd=reg.root).stdout)

    before = (gto("show"), gto("show", "fraud"), gto("history", "fraud"))
    for n, version in enumerate(("v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0")):
        label(reg.root, f"fraud@{version}", (f"season=s{n}",), push=False)
        label(reg.root, f"fraud@{version}", (f"season=t{n}",), push=False)
    assert "fraud@v0.4.0#labels#2" in reg.tags()
    after = (gto("show"), gto("show", "fraud"), gto("history", "fraud"))
    assert after == before
    shown = gto("show", "fraud")
    assert isinstance(shown, list) and sorted(v["version"] for v in shown) == [
        "v0.1.0", "v0.2.0", "v0.3.0", "v0.4.0",
    ]  # fmt: skip
    history = gto("history", "fraud")
    assert isinstance(history, list) and all("labels" not in str(e.get("ref")) for e in history)


def test_the_catalog_view_agrees_with_list_versions_and_serves_show(reg: Registry) -> None:
    """Its rows hold each version's tag fields as `list_versions` reads them, and `show`
    may resolve a version from them when they are current (the index's own keys)."""
    import shutil

    from mvctl.registry.read import list_versions, resolve, resolve_version

    label(reg.root, "fraud@v0.2.0", ("season=holiday",), push=False)
    listed = catalog(reg.root, "fraud")
    assert [v.info for v in listed] == list_versions(reg.root, "fraud")
    shutil.rmtree(reg.root / ".git" / "mvctl" / "index" / "versions")
    git = GitRepo.open(reg.root)
    for ref in ("fraud", "fraud@v0.2.0", "fraud@production"):
        assert resolve_version(git, ref) == resolve(git, ref)[0], ref
    assert not (reg.root / ".git" / "mvctl" / "index" / "versions").exists()


def test_a_local_labels_tag_is_pending_then_pushed_and_synced_elsewhere(
    reg: Registry, tmp_path: Path
) -> None:
    from mvctl.publishing.publish import push, status
    from mvctl.publishing.sync import sync

    label(reg.root, "fraud@v0.1.0", ("season=holiday",), push=False)
    assert "fraud@v0.1.0#labels#1" in status(reg.root).tags
    problems = check(reg.root).problems
    assert "fraud@v0.1.0#labels#1 is not on origin: hosts following it do not see it " \
        "(run 'mvctl push')" in problems  # fmt: skip
    assert "fraud@v0.1.0#labels#1" in push(reg.root).pushed
    assert "fraud@v0.1.0#labels#1" in remote_tags(reg.origin)
    other = tmp_path / "other"
    run("git", "clone", "-q", "--no-tags", str(reg.origin), other, cwd=tmp_path)
    assert "fraud@v0.1.0#labels#1" in sync(other).created
    [first] = [v for v in catalog(other, "fraud") if v.version == "v0.1.0"]
    assert first.labels == ("season=holiday",)
