"""A hostile review of the fast rollback and promote (mvctl.channels.quick): tags someone who
can push to the registry remote crafts, each built in a real registry, and the fast path's
decision compared with the one a read of every tag takes. The panic button never lies: any
divergence is a bug (falling back to every tag is always an acceptable answer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.channels.marks import mark_gold
from mvctl.channels.promotion import promote
from mvctl.channels.quick import quick_state
from mvctl.channels.rollback import rollback, rollback_on
from mvctl.channels.weights import stop
from mvctl.check import check
from mvctl.errors import MvctlError
from mvctl.formats import tags
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl, run
from tests.conftest import git as git_

VERSIONS = tuple(f"v0.{i}.0" for i in range(1, 7))


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), version=v) for v in VERSIONS))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


def quick(reg: Registry, channel: str = "production") -> channels.ModelState | None:
    return quick_state(GitRepo.open(reg.root), "fraud", channel)


def full_answer(reg: Registry, channel: str = "production") -> tuple[str, str, bool] | str:
    """What a plain rollback decides on every tag (a dry run), or its refusal."""
    ctx = moves.open_channel(reg.root, "fraud", channel, False, "origin", need_config=False)
    assert not ctx.state.partial
    try:
        move = rollback_on(ctx, channel, reason="r", dry_run=True)
    except MvctlError as exc:
        return str(exc)
    return move.version, move.event, move.changed


def quick_answer(reg: Registry, channel: str = "production") -> tuple[str, str, bool] | str:
    """What the command decides (the fast path when the alias's chain checks out)."""
    try:
        move = rollback(reg.root, "fraud", channel, reason="r", push=False, dry_run=True)
    except MvctlError as exc:
        return str(exc)
    return move.version, move.event, move.changed


def cli_rollback(reg: Registry) -> dict[str, Any]:
    done = mvctl(reg.root, "rollback", "fraud", "--local", "--dry-run", "--json", "--reason", "r")
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def commit_of(reg: Registry, version: str) -> str:
    return reg.git("rev-parse", f"fraud@{version}^{{commit}}").strip()


def promote_all(reg: Registry, *versions: str, channel: str = "production") -> None:
    for version in versions:
        promote(reg.root, "fraud", version, channel, push=False)


def event_message(kind: str, version: str, counter: int, channel: str = "production") -> str:
    body = {
        "kind": kind,
        "model": "fraud",
        "channel": channel,
        "version": version,
        "previous": None,
        "counter": counter,
        "reason": "hand-made",
        "actor": "mallory",
        "time": "2026-03-01T10:00:00Z",
        "gates": [],
        "request": None,
        "incident": None,
    }
    return f"{kind} {version}\n\n{json.dumps(body, indent=1)}\n"


def hand_tag(reg: Registry, name: str, commit: str, message: str = "hand-made") -> None:
    file = reg.root.parent / "hand-message"
    file.write_text(message)
    reg.git("tag", "-a", "-F", str(file), name, commit)


# --- tags git finds by a name they do not have ------------------------------------------------
# `git cat-file` resolves `refs/tags/NAME` as a revision: with no such tag it takes
# `refs/tags/refs/tags/NAME` (or `refs/heads/refs/tags/NAME`), a tag anyone can push
# (`git tag refs/tags/NAME`). Every tag listing leaves it out: it is no tag of the model.


def test_a_shadow_deregistration_does_not_skip_the_gold_version(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    hand_tag(reg, "refs/tags/fraud@v0.2.0!", commit_of(reg, "v0.2.0"))
    assert full_answer(reg) == ("v0.2.0", "fraud#production#4", True)
    assert quick_answer(reg) == full_answer(reg)
    assert cli_rollback(reg)["version"] == "v0.2.0"


def test_a_shadow_gold_mark_does_not_make_a_version_gold(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """v0.3.0 was rolled back away from (bad); a shadow gold mark must not bring it back."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T10:00:00+00:00")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    rollback(reg.root, "fraud", reason="bad", push=False)  # #4: v0.3.0 -> v0.2.0
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T11:00:00+00:00")
    hand_tag(reg, "refs/tags/fraud@v0.3.0#gold", commit_of(reg, "v0.3.0"))
    assert full_answer(reg) == ("v0.1.0", "fraud#production#5", True)
    assert quick_answer(reg) == full_answer(reg)


def test_a_shadow_event_in_the_chain_is_no_event(reg: Registry) -> None:
    """A chain naming an event that only exists as `refs/tags/refs/tags/...`: a rollback
    away from v0.2.0 every tag listing misses must not make v0.2.0 bad."""
    promote_all(reg, "v0.1.0", "v0.2.0")  # #1, #2
    promote_all(reg, "v0.5.0", channel="staging")  # #3
    promote_all(reg, "v0.3.0")  # #4: chain [#1, #2, #4]
    shadow = "fraud#production#3"
    hand_tag(
        reg, f"refs/tags/{shadow}", commit_of(reg, "v0.1.0"), event_message("rollback", "v0.1.0", 3)
    )
    alias = "fraud@production"
    fields = json.loads(reg.git("tag", "-l", "--format=%(contents)", alias).partition("\n")[2])
    fields["chain"] = ["fraud#production#1", "fraud#production#2", shadow, "fraud#production#4"]
    hand_tag_force(reg, alias, commit_of(reg, "v0.3.0"), fields)
    assert full_answer(reg) == ("v0.2.0", "fraud#production#5", True)
    assert quick_answer(reg) == full_answer(reg)
    assert not check(reg.root, offline=True).ok  # the chain names an event there is not
    done = mvctl(reg.root, "check", "--offline")
    assert done.returncode == 1 and "not the newest events of the channel" in done.stdout


def hand_tag_force(reg: Registry, alias: str, commit: str, fields: dict[str, Any]) -> None:
    file = reg.root.parent / "alias-message"
    file.write_text(f"{alias} -> {fields['version']}\n\n{json.dumps(fields, indent=1)}\n")
    reg.git("tag", "-f", "-a", "-F", str(file), alias, commit)


def test_a_shadow_version_cannot_be_promoted(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0")
    hand_tag(reg, "refs/tags/fraud@v9.9.9", commit_of(reg, "v0.3.0"))
    with pytest.raises(MvctlError, match=r"v9\.9\.9"):
        channels.require_version(channels.load(GitRepo.open(reg.root), "fraud"), "v9.9.9")
    with pytest.raises(MvctlError, match=r"v9\.9\.9"):
        promote(reg.root, "fraud", "v9.9.9", "production", push=False, dry_run=True)


def test_a_shadow_alias_of_a_stopped_channel_is_no_alias(reg: Registry) -> None:
    """After a stop the alias is gone; a shadow one must not be taken for it."""
    promote_all(reg, "v0.1.0", "v0.2.0", channel="canary")
    stop(reg.root, "fraud", "canary", reason="done", push=False)
    alias = "fraud@canary"
    shadow = {
        "kind": "alias",
        "model": "fraud",
        "channel": "canary",
        "version": "v0.2.0",
        "event": "fraud#canary!#3",
        "counter": 3,
        "chain": ["fraud#canary#1", "fraud#canary#2", "fraud#canary!#3"],
        "next": 4,
        "channels": ["canary"],
    }
    file = reg.root.parent / "alias-message"
    file.write_text(f"{alias} -> v0.2.0\n\n{json.dumps(shadow, indent=1)}\n")
    reg.git("tag", "-a", "-F", str(file), f"refs/tags/{alias}", commit_of(reg, "v0.2.0"))
    assert quick(reg, "canary") is None
    move = promote(reg.root, "fraud", "v0.3.0", "canary", push=False)
    assert (move.previous, move.event) == (None, "fraud#canary#4")


# --- counters, versions and dates a full read takes differently -------------------------------


def test_an_event_whose_counter_is_spelled_in_other_digits_is_not_missed(
    reg: Registry,
) -> None:
    """`fraud#production#1\u0660` (an Arabic-Indic zero) is event number 10 to every reader; a
    probe by name asks for `fraud#production#10` and misses it, the listing does not."""
    promote_all(reg, "v0.1.0", "v0.2.0")  # #1, #2
    hand_tag(reg, "fraud#staging#20", commit_of(reg, "v0.5.0"))  # a `gto assign` elsewhere
    promote_all(reg, "v0.3.0")  # #21: chain [#1, #2, #21]
    hand_tag(
        reg,
        "fraud#production#1\u0660",
        commit_of(reg, "v0.1.0"),
        event_message("rollback", "v0.1.0", 10),
    )
    assert full_answer(reg) == ("v0.1.0", "fraud#production#22", True)
    assert quick_answer(reg) == full_answer(reg)
    assert not check(reg.root, offline=True).ok


@pytest.mark.xfail(
    strict=True,
    reason="the fast path names an event's version by the chain's bodies, not by every "
    "version tag on its commit",
)
def test_a_second_version_on_an_events_commit_is_the_one_a_full_read_names(
    reg: Registry,
) -> None:
    """A version tag pushed onto v0.2.0's commit and deregistered: every tag read names the
    event's version by it (so skips it as deregistered); the chain's bodies say v0.2.0."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    hand_tag(reg, "fraud@v0.9.0", commit_of(reg, "v0.2.0"))
    hand_tag(reg, "fraud@v0.9.0!", commit_of(reg, "v0.2.0"))
    assert full_answer(reg) == ("v0.1.0", "fraud#production#4", True)
    assert quick_answer(reg) == full_answer(reg)


def test_check_reports_a_version_tag_on_another_versions_commit(reg: Registry) -> None:
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    hand_tag(reg, "fraud@v0.9.0", commit_of(reg, "v0.2.0"))
    assert check(reg.root, offline=True).problems == ("fraud@v0.9.0: manifest says fraud@v0.2.0",)
    done = mvctl(reg.root, "check", "--offline", "--json")
    assert done.returncode == 1 and not json.loads(done.stdout)["ok"]


def test_a_gold_mark_is_placed_as_every_event_places_it_despite_clock_skew(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gold mark slots in after the events stamped before it, counted over the whole
    channel: an event before the chain stamped hours ahead (a skewed clock) moves it before
    the rollback in the chain, which then makes the version bad, as every event says."""
    monkeypatch.setattr(tags, "CHAIN_LENGTH", 2)

    def at(hhmm: str) -> None:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-03-01T{hhmm}:00+00:00")

    at("10:00")
    promote_all(reg, "v0.1.0")  # #1
    at("13:00")
    promote_all(reg, "v0.2.0")  # #2, on a clock three hours ahead
    at("10:20")
    promote_all(reg, "v0.3.0")  # #3
    at("10:30")
    rollback(reg.root, "fraud", reason="bad", push=False)  # #4: v0.3.0 -> v0.2.0
    at("10:35")
    mark_gold(reg.root, "fraud", "v0.3.0", reason="fine after all", push=False)
    at("11:00")
    assert full_answer(reg) == ("v0.1.0", "fraud#production#5", True)
    assert quick_answer(reg) == full_answer(reg)


def test_a_tag_dated_beyond_year_9999_is_no_crash(reg: Registry) -> None:
    """A gold mark made with `git hash-object -t tag --literally`, dated the last second of
    9999 at +01:00 (git prints it; Python's datetime cannot hold it): every tag read takes
    it as undated, so must the fast path (it raised OverflowError, a traceback)."""
    stamp, offset = "253402300799", "+0100"
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    raw = (
        f"object {commit_of(reg, 'v0.2.0')}\ntype commit\ntag fraud@v0.2.0#gold\n"
        f"tagger Mallory <m@example.com> {stamp} {offset}\n\ngold\n"
    )
    file = reg.root.parent / "raw-tag"
    file.write_text(raw)
    obj = reg.git("hash-object", "-t", "tag", "-w", "--literally", str(file)).strip()
    reg.git("update-ref", "refs/tags/fraud@v0.2.0#gold", obj)
    assert full_answer(reg) == ("v0.2.0", "fraud#production#4", True)
    assert quick_answer(reg) == full_answer(reg)
    assert cli_rollback(reg)["version"] == "v0.2.0"


# --- huge bodies ------------------------------------------------------------------------------


def test_an_alias_naming_thousands_of_channels_is_read_in_full(reg: Registry) -> None:
    """Each channel an alias body names costs probes by name: an alias pushed with thousands
    of (well-formed) channel names is no body a move writes, and must not make the panic
    button read hundreds of thousands of names before it decides."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    alias = "fraud@production"
    fields = json.loads(reg.git("tag", "-l", "--format=%(contents)", alias).partition("\n")[2])
    fields["channels"] = [*fields["channels"], *(f"c{i}" for i in range(3000))]
    hand_tag_force(reg, alias, commit_of(reg, "v0.3.0"), fields)
    assert quick(reg) is None
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", "fraud#production#4", True)


# --- tagger lines git reads more leniently than a split on spaces -----------------------------


def raw_tag(reg: Registry, name: str, commit: str, tagger: str, message: str) -> None:
    """A tag object as `git hash-object -t tag --literally` takes it (git's fsck aside)."""
    raw = f"object {commit}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message}"
    file = reg.root.parent / "raw-tag"
    file.write_text(raw)
    obj = reg.git("hash-object", "-t", "tag", "-w", "--literally", str(file)).strip()
    reg.git("update-ref", f"refs/tags/{name}", obj)


@pytest.mark.parametrize(
    ("tail", "target"),
    [
        ("+0000 (sent from my laptop)", "v0.3.0"),  # git dates it 10:35: gold
        ("+0000\t", "v0.3.0"),
        ("+012345", "v0.1.0"),  # git: zone +123:45, no date Python reads: undated, bad
    ],
    ids=["words-after-the-zone", "tab-after-the-zone", "six-digit-zone"],
)
def test_a_gold_mark_is_dated_as_git_dates_it(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, tail: str, target: str
) -> None:
    """git takes a tagger's date from after the last '>': digits, then a signed zone of any
    length, whatever follows. v0.3.0, rolled back away from at 10:30, marked gold at 10:35
    by a tag whose tagger line ends in more than the zone, or in a zone of six digits: the
    mark is dated (gold: the rollback's target) or not (bad: skipped) as every tag read
    dates it."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T10:00:00+00:00")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T10:30:00+00:00")
    rollback(reg.root, "fraud", reason="bad", push=False)  # #4: v0.3.0 -> v0.2.0
    stamp = 1772361300  # 2026-03-01T10:35:00Z
    raw_tag(reg, "fraud@v0.3.0#gold", commit_of(reg, "v0.3.0"), f"M <m@x> {stamp} {tail}", "gold\n")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T11:00:00+00:00")
    assert full_answer(reg) == (target, "fraud#production#5", True)
    assert quick_answer(reg) == full_answer(reg)


TAGGER_LINES = (
    "M <m@x> 1772361300 +0000",
    "M <m@x> 1772361300 +0000 (sent from my laptop)",
    "M <m@x> 1772361300 +012345",
    "M <m@x> 1772361300 +0060",
    "M <m@x> 1772361300 -0000",
    "M <m@x> 1772361300 0100",
    "M <m@x> 1772361300 ++100",
    "M <m@x>   +1772361300\t-0230 and more",
    "M <m@x> 1772361300",
    "M <m@x> junk",
    "M <m@x>",
    "M <m@x>1772361300 +0000",
    "A> B <m@x> 1772361300 +0100",
    "M <m@x> 99999999999 +0000",
    "M <m@x> 253402300799 +0100",
    "M <m@x> 1772361300 +2399",
    "M <m@x> 1772361300 +4294967396",  # a C int: +0100
    "M <m@x> " + "9" * 5000 + " +0000",  # past Python's int() of 4,300 digits: a crash
    "M <m@x> 1772361300 +" + "9" * 30,
)


def test_a_tag_read_by_name_is_dated_as_every_tag_read_dates_it(tmp_path: Path) -> None:
    """Tag dates from `git cat-file` (a read by name) and from `git for-each-ref` (every
    tag) are the same instant, or both none, for any tagger line `--literally` takes."""
    repo = tmp_path / "repo"
    git_(tmp_path, "init", "-q", str(repo))
    git_(repo, "commit", "-q", "--allow-empty", "-m", "c")
    commit = git_(repo, "rev-parse", "HEAD").strip()
    names = []
    for i, line in enumerate(TAGGER_LINES):
        raw = repo.parent / "raw"
        raw.write_text(f"object {commit}\ntype commit\ntag t{i}\ntagger {line}\n\nx\n")
        obj = git_(repo, "hash-object", "-t", "tag", "-w", "--literally", str(raw)).strip()
        git_(repo, "update-ref", f"refs/tags/t{i}", obj)
        names.append(f"t{i}")
    repo_git = GitRepo.open(repo)
    listed = {r.name: r.date for r in repo_git.tags("refs/tags/")}
    by_name = {n: r.date for n, r in repo_git.named_tags(names).items() if r is not None}
    assert by_name.keys() == listed.keys()
    assert {n: channels.time_of(d) for n, d in by_name.items()} == {
        n: channels.time_of(d) for n, d in listed.items()
    }
    # the same text, but where git prints what no reader parses (10000-..., +23:99)
    undated = channels.time_of("")
    assert all(channels.time_of(listed[n]) == undated for n in names if by_name[n] != listed[n])


MESSAGES = (
    "Title\n\n{}\n",
    "\n\nkind: rollback\nversion: v0.1.0\n",  # blank lines first: for-each-ref skips them
    "Title\n\nkind: promote\n\0kind: rollback\n",  # a NUL: for-each-ref stops there
    "\r\nTitle\n",
    "",
)


def test_a_tag_read_by_name_has_the_message_every_tag_read_has(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git_(tmp_path, "init", "-q", str(repo))
    git_(repo, "commit", "-q", "--allow-empty", "-m", "c")
    commit = git_(repo, "rev-parse", "HEAD").strip()
    names = []
    for i, message in enumerate(MESSAGES):
        raw = repo.parent / "raw"
        raw.write_bytes(
            f"object {commit}\ntype commit\ntag t{i}\ntagger M <m@x> 1 +0000\n\n{message}".encode()
        )
        obj = git_(repo, "hash-object", "-t", "tag", "-w", "--literally", str(raw)).strip()
        git_(repo, "update-ref", f"refs/tags/t{i}", obj)
        names.append(f"t{i}")
    repo_git = GitRepo.open(repo)
    listed = {r.name: r.message for r in repo_git.tags("refs/tags/")}
    by_name = {n: r.message for n, r in repo_git.named_tags(names).items() if r is not None}
    assert by_name == listed


def test_an_event_whose_message_starts_with_a_blank_line_is_read_as_every_tag_read_does(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made event #4 whose message starts with a blank line, then YAML saying it is
    a rollback: every tag read skips the blank line, takes `kind: rollback` for the title and
    so reads an assignment (v0.3.0 replaced: gold, the target); read as a rollback, v0.3.0
    would be bad and the target v0.1.0."""
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T10:00:00+00:00")
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    message = (
        "\nkind: rollback\nmodel: fraud\nchannel: production\nversion: v0.2.0\n"
        "counter: 4\ntime: '2026-03-01T10:30:00Z'\n"
    )
    tagger = "M <m@x> 1772361000 +0000"  # 10:30
    raw_tag(reg, "fraud#production#4", commit_of(reg, "v0.2.0"), tagger, message)
    alias = "fraud@production"
    fields = json.loads(reg.git("tag", "-l", "--format=%(contents)", alias).partition("\n")[2])
    fields.update(
        version="v0.2.0",
        event="fraud#production#4",
        counter=4,
        chain=[*fields["chain"], "fraud#production#4"],
        next=5,
    )
    hand_tag_force(reg, alias, commit_of(reg, "v0.2.0"), fields)
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T11:00:00+00:00")
    assert full_answer(reg) == ("v0.3.0", "fraud#production#5", True)
    assert quick_answer(reg) == full_answer(reg)


# --- tags GTO writes --------------------------------------------------------------------------


@pytest.mark.slow
def test_gto_deregistering_the_target_and_assigning_elsewhere(reg: Registry) -> None:
    """`gto deprecate fraud v0.2.0` (GTO's `fraud@v0.2.0!`) after the chain was written, and
    `gto assign` of a stage no config names: the fast path reads the first by name and
    numbers its event after the second, as every tag read does."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    run("gto", "deprecate", "fraud", "v0.2.0", cwd=reg.root)
    assert "fraud@v0.2.0!" in reg.tags()
    run("gto", "assign", "fraud", "--version", "v0.5.0", "--stage", "edge", cwd=reg.root)
    assert full_answer(reg) == ("v0.1.0", "fraud#production#5", True)
    assert quick(reg) is not None
    assert quick_answer(reg) == full_answer(reg)
    run("gto", "assign", "fraud", "--version", "v0.4.0", "--stage", "production", cwd=reg.root)
    assert quick(reg) is None  # the channel moved without its alias (mvctl check says so)
    assert quick_answer(reg) == full_answer(reg)
    assert not check(reg.root, offline=True).ok


def test_a_version_tag_re_pointed_onto_the_holders_commit_is_read_in_full(
    reg: Registry,
) -> None:
    """`fraud@v0.2.0` re-pointed (`git tag -f -a`) onto v0.3.0's commit, which production
    holds: every tag read names that commit v0.3.0 (the later name), so promoting v0.2.0 is
    a move from v0.3.0; the fast path read both tags, and which of the two named the commit
    depended on the order of a set (a hash seed)."""
    promote_all(reg, "v0.1.0", "v0.3.0")
    reg.git("tag", "-f", "-a", "-m", "re-pointed", "fraud@v0.2.0", commit_of(reg, "v0.3.0"))
    assert quick_state(GitRepo.open(reg.root), "fraud", "production", ("v0.2.0",)) is None
    move = promote(reg.root, "fraud", "v0.2.0", "production", push=False, dry_run=True)
    assert (move.previous, move.changed) == ("v0.3.0", True)
    assert check(reg.root, offline=True).problems


def test_a_lightweight_deregistration_after_the_chain_skips_the_version(reg: Registry) -> None:
    """`git tag fraud@v0.2.0! COMMIT` (no body): a deregistration to every reader."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    reg.git("tag", "fraud@v0.2.0!", commit_of(reg, "v0.2.0"))
    assert quick(reg) is not None
    assert quick_answer(reg) == full_answer(reg) == ("v0.1.0", "fraud#production#4", True)


def test_a_counter_taken_by_two_channels_numbers_the_next_event_past_both(
    reg: Registry,
) -> None:
    """Moves made in two clones and both published: production's #3 (in its chain) and
    staging's #3. The fast path decides and numbers as every tag read does."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")  # production #1-#3
    hand_tag(
        reg,
        "fraud#staging#3",
        commit_of(reg, "v0.5.0"),
        event_message("promote", "v0.5.0", 3, "staging"),
    )
    assert quick(reg) is not None
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", "fraud#production#4", True)
    assert not check(reg.root, offline=True).ok  # number 3 used twice


def test_a_packed_refs_file_out_of_its_claimed_order_decides_as_git_reads_it(
    reg: Registry,
) -> None:
    """A packed-refs file whose header says ``sorted`` and whose lines are not (written by a
    tool or a fault): git trusts the trait and misses the line out of order, in its listing
    and in ``rev-parse``. The fast path decides on what git reads, never on more."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    git_(reg.root, "pack-refs", "--all")
    packed = reg.root / ".git/packed-refs"
    header, *lines = packed.read_text().splitlines()
    assert " sorted" in header
    newest = max(
        (i for i, line in enumerate(lines) if " refs/tags/fraud#production#" in line),
        key=lambda i: int(lines[i].rsplit("#", 1)[1]),
    )
    record = lines[newest : newest + 2] if lines[newest + 1].startswith("^") else [lines[newest]]
    rest = lines[:newest] + lines[newest + len(record) :]
    packed.write_text("\n".join([header, *record, *rest]) + "\n")
    assert full_answer(reg) == quick_answer(reg)


def test_a_broken_loose_event_numbers_the_next_event_as_every_tag_does(reg: Registry) -> None:
    """A loose ref whose file names no object: git warns and lists nothing for it, so the
    next event's counter is not taken from its name."""
    promote_all(reg, "v0.1.0", "v0.2.0")
    (reg.root / ".git/refs/tags/fraud#staging#90").write_text("not an object id\n")
    assert full_answer(reg) == quick_answer(reg)


def test_an_event_of_the_channel_past_the_probe_window_is_not_missed(reg: Registry) -> None:
    """The fast path names the channel's events up to the probe window by name; one the
    chain leaves out, numbered past the window (pushed by hand), is found in the listing:
    the chain is then no record, and every tag is read."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")  # #1-#3, next 4: probes 4-19
    hand_tag(
        reg,
        "fraud#production#40",
        commit_of(reg, "v0.1.0"),
        event_message("rollback", "v0.1.0", 40),
    )
    assert quick(reg) is None
    assert quick_answer(reg) == full_answer(reg)


def test_another_channels_event_past_the_probe_window_numbers_the_next_event(
    reg: Registry,
) -> None:
    """A `gto assign` to a stage no config names, numbered far past the window: the next
    event is numbered past it, as every tag read numbers it, and the chain still decides."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    hand_tag(
        reg,
        "fraud#qa#77",
        commit_of(reg, "v0.5.0"),
        event_message("promote", "v0.5.0", 77, "qa"),
    )
    assert quick(reg) is not None
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", "fraud#production#78", True)


# --- loose refs git reads past ----------------------------------------------------------------


def test_a_packed_deregistration_under_an_empty_directory_skips_the_version(
    reg: Registry,
) -> None:
    """An empty directory `refs/tags/fraud@v0.2.0!/` (left by a nested tag deleted by hand)
    over the packed `fraud@v0.2.0!`: git reads past a directory to the packed line, in its
    listing and by name, so v0.2.0 is deregistered to every reader; a read that takes the
    directory for no tag rolls back onto it."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    reg.git("tag", "fraud@v0.2.0!", commit_of(reg, "v0.2.0"))
    git_(reg.root, "pack-refs", "--all")
    (reg.root / ".git/refs/tags/fraud@v0.2.0!").mkdir()
    assert "fraud@v0.2.0!" in reg.git("for-each-ref", "--format=%(refname)", "refs/tags/")
    assert full_answer(reg) == ("v0.1.0", "fraud#production#4", True)
    assert quick_answer(reg) == full_answer(reg)


def test_a_packed_event_under_an_empty_directory_is_not_missed(reg: Registry) -> None:
    """The same over an event of the channel its alias leaves out (#4, a rollback to v0.1.0,
    not the model's newest): every reader decides on it; the probe by name must not take the
    directory for no tag and trust the chain."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")  # #1-#3, next 4
    hand_tag(
        reg,
        "fraud#production#4",
        commit_of(reg, "v0.1.0"),
        event_message("rollback", "v0.1.0", 4),
    )
    git_(reg.root, "pack-refs", "--all")
    (reg.root / ".git/refs/tags/fraud#production#4").mkdir()
    hand_tag(reg, "fraud#staging#6", commit_of(reg, "v0.5.0"))  # the newest is another's
    assert full_answer(reg) == ("v0.1.0", "fraud#production#7", True)
    assert quick_answer(reg) == full_answer(reg)


def test_an_event_numbered_with_the_most_digits_a_counter_holds_is_no_crash(
    reg: Registry,
) -> None:
    """`fraud#qa#999999999999999999` pushed by hand (18 digits, the most a counter holds):
    both readings decide alike, and the move's event, numbered one past, is no tag name any
    reader parses. The move wrote nothing and raised an AssertionError (a traceback); it
    must refuse, saying why."""
    promote_all(reg, "v0.1.0", "v0.2.0", "v0.3.0")
    top = 999_999_999_999_999_999
    hand_tag(
        reg,
        f"fraud#qa#{top}",
        commit_of(reg, "v0.5.0"),
        event_message("promote", "v0.5.0", top, "qa"),
    )
    assert quick_answer(reg) == full_answer(reg) == ("v0.2.0", f"fraud#production#{top + 1}", True)
    before = reg.tags()
    with pytest.raises(MvctlError, match="counter is used up"):
        rollback(reg.root, "fraud", reason="r", push=False)
    done = mvctl(reg.root, "rollback", "fraud", "--local", "--reason", "r")
    assert done.returncode == 1 and "counter is used up" in done.stderr
    assert "Traceback" not in done.stderr
    assert reg.tags() == before
