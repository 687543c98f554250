"""The derived index of ``list MODEL`` and ``history MODEL`` (mvctl.registry.index) only ever
answers what reading every tag answers: after moves fetched in from another clone, with a
corrupted file, with another model's or another view's file in its place, and when writers
race; a directory it cannot write costs nothing but speed, and ``mvctl check`` never reads it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mvctl._adapters import refstate
from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels.catalog import catalog_dicts
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.channels.state import history
from mvctl.errors import MvctlError
from mvctl.registry import index, read
from mvctl.registry.read import list_models, list_versions
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, git, run

VERSIONS = ("v0.1.0", "v0.2.0", "v0.3.0")
REFS = ("fraud", "fraud@v0.1.0", "fraud@v0.2.0", "fraud@production", "fraud@staging")


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        *(Release(weights=v.encode(), version=v) for v in VERSIONS),
        promotions=(("v0.1.0", "production"), ("v0.2.0", "production"), ("v0.3.0", "staging")),
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    return registry


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stamps count as settled at once (by default only when two seconds old), so that the
    index answers from its stamp without reading the refs, as it does in use."""
    monkeypatch.setattr(refstate, "SETTLE_NS", 0)


def answers(root: Path) -> list[list[list[Any]]]:
    """Every field of everything list and history return."""
    return [
        [m.to_row() for m in list_models(root)],
        [v.to_row() for v in list_versions(root, "fraud")],
        [e.to_row() for e in history(root, "fraud")],
        [e.to_row() for e in history(root, "fraud", "staging")],
        [read.resolve_version(GitRepo.open(root), ref).to_row() for ref in REFS],
        catalog_dicts(root, "fraud"),  # `list fraud --json`, from the catalog view's rows
    ]


def full_read(root: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[list[Any]]]:
    """What reading every tag answers, with no index at all."""

    def direct(git: GitRepo, view: str, model: str, patterns: Any, build: Any, rows: Any) -> Any:
        return build(git.tags(*patterns))

    def by_names(git: GitRepo, view: str, key: str, patterns: Any, build: Any, rows: Any) -> Any:
        return build(git.ref_objects(*patterns))

    def direct_as(
        git: GitRepo, view: str, model: str, patterns: Any, build: Any, rows: Any, shape: Any
    ) -> Any:
        return [item.to_dict() for item in build(git.tags(*patterns))]

    with monkeypatch.context() as mp:
        mp.setattr(index, "cached", direct)
        mp.setattr(index, "cached_as", direct_as)
        mp.setattr(index, "cached_by_names", by_names)
        mp.setattr(index, "peek", lambda *args: None)
        return answers(root)


def index_file(reg: Registry, view: str, model: str = "fraud") -> Path:
    return reg.root / ".git" / "mvctl" / "index" / view / f"{model}.json"


def header(path: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(path.read_bytes().partition(b"\n")[0])
    return found


def no_tags_read(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: object) -> list[TagRecord]:
        raise AssertionError("read the tags")

    for method in ("tags", "ref_objects", "named_tags"):
        monkeypatch.setattr(GitRepo, method, refused)


def test_the_index_answers_what_the_tags_say(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    expected = full_read(reg.root, monkeypatch)
    assert answers(reg.root) == expected  # built
    for view in ("versions", "history"):
        assert header(index_file(reg, view))["stamp"] is not None
    assert header(index_file(reg, "models", "all"))["stamp"] is not None
    no_tags_read(monkeypatch)
    assert answers(reg.root) == expected  # from the index alone
    assert [v.channels for v in list_versions(reg.root, "fraud")] == [
        (),
        ("production",),
        ("staging",),
    ]


def test_a_fresh_stamp_is_not_stored(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refs written a moment ago may change again within the same clock tick without
    changing a time: such a stamp is never stored, the digest of the refs decides."""
    promote(reg.root, "fraud", "v0.3.0", "production", push=False)
    expected = full_read(reg.root, monkeypatch)
    assert answers(reg.root) == expected
    assert header(index_file(reg, "versions"))["stamp"] is None
    reads = []
    real = GitRepo.tags

    def counted(self: GitRepo, *patterns: str) -> list[TagRecord]:
        reads.append(patterns)
        return real(self, *patterns)

    monkeypatch.setattr(GitRepo, "tags", counted)
    assert answers(reg.root) == expected
    assert len(reads) == 4  # versions, history twice, catalog: each by its digest
    assert not index_file(reg, "models", "all").exists()  # it reads aliases after listing


def test_a_tag_moved_while_list_reads_the_aliases_is_not_kept(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    """``list`` lists the tags, then reads the aliases by name: a move in between could
    pair the listing's digest with another alias, so that answer is never kept."""
    real = read._quick_models

    def moved_meanwhile(git: GitRepo, listed: Any) -> Any:
        promote(reg.root, "fraud", "v0.3.0", "production", push=False)
        return real(git, listed)

    with monkeypatch.context() as mp:
        mp.setattr(read, "_quick_models", moved_meanwhile)
        list_models(reg.root)
    assert not index_file(reg, "models", "all").exists()
    assert list_models(reg.root)[0].channels == {"production": "v0.3.0", "staging": "v0.3.0"}


@pytest.mark.slow
def test_moves_from_another_clone_fetched_in_are_seen(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    """Register, promote and rollback in another clone, fetched in: each is seen at once."""
    reg = copy_registry(template, tmp_path)  # its DVC store too: the other clone registers
    monkeypatch.chdir(reg.root)
    other = Registry(tmp_path / "other", reg.origin, reg.storage)
    run("git", "clone", "-q", str(reg.origin), str(other.root), cwd=tmp_path)
    git(other.root, "fetch", "-q", "origin", "refs/tags/*:refs/tags/*")
    before = answers(reg.root)
    assert header(index_file(reg, "history"))["stamp"] is not None

    def fetched() -> list[list[list[Any]]]:
        reg.git("fetch", "-q", "origin", "+refs/tags/*:refs/tags/*")
        found = answers(reg.root)
        assert found == full_read(reg.root, monkeypatch)
        return found

    other.train(weights=b"v0.4.0", auc=0.95)
    request = RegisterRequest(
        model="fraud",
        cwd=other.root,
        weights="models/model.bin",
        data=("data/train.csv",),
        metrics_file="metrics.json",
        version="v0.4.0",
        push=True,
    )
    register(request)
    registered = fetched()
    assert registered != before
    assert [v.version for v in list_versions(reg.root, "fraud")][-1] == "v0.4.0"

    promote(other.root, "fraud", "v0.4.0", "production", push=True)
    promoted = fetched()
    assert list_versions(reg.root, "fraud")[-1].channels == ("production",)
    assert history(reg.root, "fraud")[-1].version == "v0.4.0"

    rollback(other.root, "fraud", "production", reason="bad", push=True)
    rolled_back = fetched()
    assert rolled_back != promoted
    assert list_versions(reg.root, "fraud")[1].channels == ("production",)
    assert history(reg.root, "fraud")[-1].kind == "rollback"


def test_a_deregistration_and_a_gold_mark_are_seen(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    from mvctl.channels.marks import mark_gold, retire

    answers(reg.root)
    retire(reg.root, "fraud", "v0.1.0", push=False)
    assert answers(reg.root) == full_read(reg.root, monkeypatch)
    assert list_versions(reg.root, "fraud")[0].deregistered
    mark_gold(reg.root, "fraud", "v0.3.0", push=False)
    assert answers(reg.root) == full_read(reg.root, monkeypatch)


def test_packed_refs_and_a_move_after_them_are_seen(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    answers(reg.root)
    reg.git("pack-refs", "--all")
    assert answers(reg.root) == full_read(reg.root, monkeypatch)
    promote(reg.root, "fraud", "v0.3.0", "production", push=False)  # a loose ref again
    assert answers(reg.root) == full_read(reg.root, monkeypatch)
    reg.git("pack-refs", "--all")
    newest = history(reg.root, "fraud")[-1].name
    reg.git("tag", "-d", newest)  # deleting a packed ref rewrites packed-refs
    assert history(reg.root, "fraud")[-1].name != newest
    assert answers(reg.root) == full_read(reg.root, monkeypatch)


def test_a_linked_work_tree_shares_the_index_of_the_repository(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    linked = tmp_path / "linked"
    reg.git("worktree", "add", "-q", "--detach", str(linked))
    assert answers(linked) == full_read(reg.root, monkeypatch)
    assert index_file(reg, "versions").exists()
    promote(reg.root, "fraud", "v0.3.0", "production", push=False)
    assert answers(linked) == full_read(reg.root, monkeypatch)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda data: data[: len(data) // 2], id="truncated"),
        pytest.param(lambda data: b"", id="empty"),
        pytest.param(lambda data: b"\x00\xff garbage", id="garbage"),
        pytest.param(lambda data: data.replace(b"v0.2.0", b"v9.9.9"), id="edited-rows"),
        pytest.param(lambda data: data.replace(b'"format": 1', b'"format": 0'), id="old-format"),
        pytest.param(lambda data: data.partition(b"\n")[0] + b"\n[1, 2]", id="other-rows"),
    ],
)
def test_a_corrupted_index_is_ignored_and_rebuilt(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None, damage: Any
) -> None:
    expected = full_read(reg.root, monkeypatch)
    answers(reg.root)
    for path in (index_file(reg, "versions"), index_file(reg, "history")):
        path.write_bytes(damage(path.read_bytes()))
    path = index_file(reg, "models", "all")
    path.write_bytes(damage(path.read_bytes()))
    assert answers(reg.root) == expected
    no_tags_read(monkeypatch)  # rebuilt whole: the next read needs no tags
    assert answers(reg.root) == expected


def test_a_whole_file_of_rows_that_are_not_ours_is_rebuilt(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    """A whole file (checksum right) whose rows are not rows of this mvctl."""
    expected = full_read(reg.root, monkeypatch)
    answers(reg.root)
    path = index_file(reg, "versions")
    fields = header(path)
    payload = b'[["fraud"]]'
    fields["sha256"] = hashlib.sha256(payload).hexdigest()
    path.write_bytes(json.dumps(fields).encode() + b"\n" + payload)
    assert answers(reg.root) == expected


def test_the_index_of_another_model_or_view_is_never_used(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    answers(reg.root)
    for view in ("versions", "history"):
        index_file(reg, view, "churn").write_bytes(index_file(reg, view).read_bytes())
    for call in (lambda: list_versions(reg.root, "churn"), lambda: history(reg.root, "churn")):
        with pytest.raises(MvctlError, match="churn"):
            call()
    expected = full_read(reg.root, monkeypatch)
    index_file(reg, "versions").write_bytes(index_file(reg, "history").read_bytes())
    assert answers(reg.root) == expected


def test_an_older_writer_finishing_last_is_not_trusted(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    """Two readers race: the one that read the refs before a move renames its file over
    the newer one's. Its keys are the old refs', so the next read does not trust it."""
    answers(reg.root)
    files = [index_file(reg, "versions"), index_file(reg, "history")]
    files.append(index_file(reg, "models", "all"))
    old = {path: path.read_bytes() for path in files}
    promote(reg.root, "fraud", "v0.3.0", "production", push=False)
    expected = full_read(reg.root, monkeypatch)
    assert answers(reg.root) == expected
    for path, data in old.items():
        path.write_bytes(data)
    assert answers(reg.root) == expected


@pytest.mark.slow
def test_concurrent_readers_leave_a_whole_index(reg: Registry, settled: None) -> None:
    """Eight processes build the index at once, while the channel moves: each answers a
    state the refs had, the file left is whole, and no temporary file stays behind."""
    code = (
        "import json, sys; from pathlib import Path;"
        "from mvctl.registry.read import list_versions;"
        "from mvctl.channels.state import history;"
        "print(json.dumps([[v.to_row() for v in list_versions(Path.cwd(), 'fraud')],"
        " [e.to_row() for e in history(Path.cwd(), 'fraud')]]))"
    )
    before = [v.to_row() for v in list_versions(reg.root, "fraud")]
    shutil.rmtree(reg.root / ".git" / "mvctl")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=reg.root, stdout=subprocess.PIPE, text=True
        )
        for _ in range(8)
    ]
    promote(reg.root, "fraud", "v0.3.0", "production", push=False)
    outputs = [json.loads(p.communicate()[0]) for p in procs]
    after = [v.to_row() for v in list_versions(reg.root, "fraud")]
    assert before != after
    assert all(versions in (before, after) for versions, _ in outputs)
    for view in ("versions", "history"):
        path = index_file(reg, view)
        assert index._load(path, view, "fraud", index_columns(view)) is not None
        assert [p.name for p in path.parent.iterdir()] == ["fraud.json"]


def index_columns(view: str) -> tuple[str, ...]:
    from mvctl.channels.state import _EVENT_ROWS
    from mvctl.registry.read import _VERSION_ROWS

    return (_VERSION_ROWS if view == "versions" else _EVENT_ROWS).columns


def test_an_index_that_cannot_be_written_costs_only_speed(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = full_read(reg.root, monkeypatch)
    (reg.root / ".git" / "mvctl").write_text("not a directory\n")
    assert answers(reg.root) == expected


def test_check_never_reads_the_index(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from mvctl.check import check

    def refused(*args: object) -> None:
        raise AssertionError("read the index")

    monkeypatch.setattr(index, "cached", refused)
    assert check(reg.root, offline=True).ok


def test_a_replaced_tag_object_is_read_as_every_tag_read_reads_it(
    reg: Registry, monkeypatch: pytest.MonkeyPatch, settled: None
) -> None:
    """``git replace`` changes what a tag object reads as, not its id: the refs' digest is
    the same, and the index must not answer what the object read as before."""
    answers(reg.root)
    obj = git(reg.root, "rev-parse", "fraud@v0.2.0").strip()
    body = git(reg.root, "cat-file", "tag", obj)
    crafted = reg.root.parent / "crafted-tag"
    crafted.write_text(body.replace('"auc": 0.91', '"auc": 0.99', 1))
    git(
        reg.root,
        "replace",
        obj,
        git(reg.root, "hash-object", "-t", "tag", "-w", str(crafted)).strip(),
    )
    assert answers(reg.root) == full_read(reg.root, monkeypatch)
