"""The tag listing read from git's files (mvctl._adapters.refstate.list_tags) names what
``git for-each-ref`` lists and points each name where git does, in every state the files
backend keeps tags in: loose, packed, both (the loose file wins), deleted after packing,
nested, locked, broken, linked, and under reftable (no listing from the files at all)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl._adapters.refstate import MEMO, SYMBOLIC, list_tags
from tests.conftest import git, run

PREFIXES = ("fraud@", "fraud#")


def for_each_ref(root: Path) -> set[str]:
    out = git(root, "for-each-ref", "--format=%(refname)", "refs/tags/fraud@*", "refs/tags/fraud#*")
    return {line.removeprefix("refs/tags/") for line in out.splitlines()}


def rev(root: Path, name: str) -> str:
    return git(root, "rev-parse", f"refs/tags/{name}").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    for n in range(3):
        (root / "f").write_text(str(n))
        git(root, "add", "f")
        git(root, "commit", "-qm", f"c{n}")
        git(root, "tag", "-a", "-m", f"v{n}", f"fraud@v0.{n}.0")
        git(root, "tag", "-a", "-m", f"e{n}", f"fraud#production#{n + 1}")
    git(root, "tag", "-a", "-m", "other model", "churn@v0.1.0")
    git(root, "tag", "-a", "-m", "alias", "fraud@production", "HEAD~1")
    return root


def assert_as_git(root: Path, *, extra: frozenset[str] = frozenset()) -> None:
    listing = list_tags(root / ".git", PREFIXES)
    assert listing is not None
    listed = for_each_ref(root)
    assert listing.names == listed | extra
    for name in listed:
        assert listing.oid(name) in (rev(root, name), SYMBOLIC), name
    for name in extra:
        assert listing.oid(name) is None, name
    # Read through the listing, every listed tag reads as git reads it by name.
    repo = GitRepo.open(root)
    assert repo.listed_tags(*PREFIXES).read(sorted(listed)) == repo.named_tags(sorted(listed))


def test_loose_tags_are_listed_as_git_lists_them(repo: Path) -> None:
    assert len(for_each_ref(repo)) == 7
    assert_as_git(repo)


def test_packed_loose_overriding_and_deleted_after_packing(repo: Path) -> None:
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git/refs/tags/fraud@v0.1.0").exists()
    assert_as_git(repo)
    # A new loose tag beside the packed ones, a packed one moved (its loose file wins),
    # a packed one deleted (git rewrites packed-refs without it).
    git(repo, "tag", "-a", "-m", "new", "fraud#staging#4")
    git(repo, "tag", "-f", "-a", "-m", "moved", "fraud@production", "HEAD~2")
    git(repo, "tag", "-d", "fraud@v0.0.0")
    listing = list_tags(repo / ".git", PREFIXES)
    assert listing is not None
    assert "fraud@v0.0.0" not in listing.names
    assert listing.oid("fraud@production") == rev(repo, "fraud@production")
    assert_as_git(repo)


def test_nested_tags_and_locks_are_not_listed(repo: Path) -> None:
    git(repo, "tag", "-a", "-m", "nested", "fraud@x/y")
    git(repo, "tag", "-a", "-m", "shadow", "refs/tags/fraud@production")
    (repo / ".git/refs/tags/fraud#production#9.lock").write_text(rev(repo, "fraud@v0.1.0"))
    assert_as_git(repo)
    git(repo, "pack-refs", "--all")
    assert_as_git(repo)


def test_a_packed_tag_under_a_directory_of_its_name_is_read_as_git_reads_it(repo: Path) -> None:
    """A directory at ``refs/tags/NAME`` (left empty, or holding a nested tag written by
    hand) over a packed ``NAME``: git reads past it to the packed line, listed and by name."""
    git(repo, "pack-refs", "--all")
    (repo / ".git/refs/tags/fraud@v0.1.0").mkdir()
    nested = repo / ".git/refs/tags/fraud#production#2"
    nested.mkdir()
    (nested / "x").write_text(rev(repo, "fraud@v0.0.0") + "\n")
    assert {"fraud@v0.1.0", "fraud#production#2"} <= for_each_ref(repo)
    assert_as_git(repo)


def test_a_tag_packed_after_the_listing_is_read_where_git_now_reads_it(repo: Path) -> None:
    """`git pack-refs` (a `git gc`) between the listing and a read: the loose file is gone
    and the packed-refs the listing read lacks the tag. git finds it in the new packed-refs;
    a read that takes it for deleted misses a tag that never stopped existing."""
    repo_git = GitRepo.open(repo)
    listed = repo_git.listed_tags(*PREFIXES)
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git/refs/tags/fraud@v0.1.0").exists()
    names = sorted(for_each_ref(repo))
    assert listed.read(names) == repo_git.named_tags(names)


def test_packed_refs_lines_that_name_no_flat_tag_are_not_listed(repo: Path) -> None:
    """Only ``OID refs/tags/NAME`` lines list a name: not a branch whose name holds
    refs/tags/, a nested tag, a peeled line, another model's tag or a name that is only the
    start of a longer one; a line with no object id (git refuses the file) leaves the
    listing to git."""
    git(repo, "branch", "refs/tags/fraud@staging", "HEAD")
    git(repo, "tag", "-a", "-m", "nested", "fraud@x/y")
    git(repo, "tag", "-a", "-m", "long", "fraud@production2")
    git(repo, "pack-refs", "--all")
    packed = repo / ".git/packed-refs"
    assert "^" in packed.read_text()  # peeled lines of the annotated tags
    assert_as_git(repo)
    v1 = rev(repo, "fraud@v0.1.0")
    with packed.open("a") as f:
        f.write("not-an-oid refs/tags/fraud#production#88\n")
    # git itself refuses such a file: the listing leaves it to git, which says so.
    assert list_tags(repo / ".git", PREFIXES) is None
    assert run("git", "rev-parse", "refs/tags/fraud@v0.1.0", cwd=repo, check=False).returncode
    assert v1


def test_packed_refs_are_read_sorted_or_not(repo: Path) -> None:
    """git writes packed-refs sorted and says so in its header (then a name is found by
    bisection, as git finds it); a file without that trait is searched whole."""
    git(repo, "pack-refs", "--all")
    packed = repo / ".git/packed-refs"
    header, *lines = packed.read_text().splitlines()
    assert " sorted" in header
    assert_as_git(repo)
    listing = list_tags(repo / ".git", PREFIXES)
    assert listing is not None and listing.packed.sorted
    for name in for_each_ref(repo):  # found by bisection, not by the whole-file search
        assert listing.packed._bisect(f"refs/tags/{name}") is not None, name
    assert listing.packed._bisect("refs/tags/fraud@v9.9.9") is None
    records = []  # each ref line with its peeled line
    for line in lines:
        if line.startswith("^"):
            records[-1] += f"\n{line}"
        else:
            records.append(line)
    packed.write_text("# pack-refs with: peeled\n" + "\n".join(reversed(records)) + "\n")
    assert_as_git(repo)


def test_a_broken_file_is_listed_by_name_and_reads_as_nothing(repo: Path) -> None:
    (repo / ".git/refs/tags/fraud#production#77").write_text("not an object id\n")
    # git warns and leaves it out; the listing names it (it opens no file) and reading it
    # answers None, as for a tag that is not there.
    assert_as_git(repo, extra=frozenset({"fraud#production#77"}))


def test_a_symbolic_ref_is_read_as_git_resolves_it(repo: Path) -> None:
    (repo / ".git/refs/tags/fraud#production#78").write_text("ref: refs/tags/fraud@v0.1.0\n")
    listing = list_tags(repo / ".git", PREFIXES)
    assert listing is not None and listing.oid("fraud#production#78") == SYMBOLIC
    assert_as_git(repo)
    read = GitRepo.open(repo).listed_tags(*PREFIXES).read(["fraud#production#78"])
    record = read["fraud#production#78"]
    assert record is not None and record.object == rev(repo, "fraud@v0.1.0")


def test_a_linked_ref_is_read_as_git_resolves_it(repo: Path) -> None:
    """A symbolic link in refs/tags/ is never followed by the listing: git reads it."""
    (repo / ".git/refs/tags/fraud@v9.0.0").symlink_to(repo / ".git/refs/tags/fraud@v0.1.0")
    listing = list_tags(repo / ".git", PREFIXES)
    assert listing is not None and listing.oid("fraud@v9.0.0") == SYMBOLIC
    listed = GitRepo.open(repo).listed_tags(*PREFIXES)
    assert listed.names == for_each_ref(repo)
    record = listed.read(["fraud@v9.0.0"])["fraud@v9.0.0"]
    assert record is not None and record.object == rev(repo, "fraud@v0.1.0")


def test_a_fifo_among_the_refs_never_blocks_the_listing(repo: Path) -> None:
    os.mkfifo(repo / ".git/refs/tags/fraud@v9.0.0")
    listing = list_tags(repo / ".git", PREFIXES)
    assert listing is not None and listing.oid("fraud@v9.0.0") is None


def test_a_linked_ref_beside_nested_tags_or_reftable_leaves_the_listing_to_git(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "tag", "-a", "-m", "nested", "refs/tags/fraud#staging#5", "HEAD")
    (repo / ".git/refs/tags/fraud@v9.0.0").symlink_to(repo / ".git/refs/tags/fraud@v0.1.0")
    assert list_tags(repo / ".git", PREFIXES) is None
    listed = GitRepo.open(repo).listed_tags(*PREFIXES)
    assert listed.listing is None and listed.names == for_each_ref(repo)
    assert listed.read(["fraud@v0.1.0"])["fraud@v0.1.0"] is not None

    table = tmp_path / "table"
    done = run("git", "init", "-q", "--ref-format=reftable", str(table), cwd=tmp_path, check=False)
    if done.returncode != 0:
        pytest.skip("this git has no reftable (git init --ref-format=reftable failed)")
    assert list_tags(table / ".git", PREFIXES) is None


def test_names_read_from_the_files_are_read_by_their_objects(repo: Path) -> None:
    """A name read through the listing is the object its own file names: no revision is
    resolved, so a branch or nested tag spelled ``refs/tags/NAME`` is never read for it."""
    git(repo, "branch", "refs/tags/fraud@staging", "HEAD")
    git(repo, "tag", "-a", "-m", "shadow", "refs/tags/fraud#staging#5", "HEAD")
    listed = GitRepo.open(repo).listed_tags(*PREFIXES)
    assert listed.listing is not None
    read = listed.read(["fraud@staging", "fraud#staging#5", "fraud@production"])
    assert set(read) == {"fraud@production"}
    record = read["fraud@production"]
    assert record is not None and record.object == rev(repo, "fraud@production")


def assert_listed_as_git(root: Path) -> None:
    """What mvctl lists and reads (from the files or through git) is what git lists and
    reads, whatever the files hold."""
    repo = GitRepo.open(root)
    listed = repo.listed_tags(*PREFIXES)
    names = for_each_ref(root)
    assert listed.names == names
    assert listed.read(sorted(names)) == repo.named_tags(sorted(names))


def _packed_records(repo: Path) -> tuple[str, list[str]]:
    git(repo, "pack-refs", "--all")
    header, *lines = (repo / ".git/packed-refs").read_text().splitlines()
    records: list[str] = []
    for line in lines:
        if line.startswith("^"):
            records[-1] += f"\n{line}"
        else:
            records.append(line)
    return header, records


def test_a_file_that_says_sorted_but_is_not_is_listed_as_git_lists_it(repo: Path) -> None:
    """git trusts the ``sorted`` trait: its listing of ``refs/tags/fraud#*`` starts where
    bisection lands and misses a line out of order, and so does ``rev-parse``. The listing
    from the files must not see what git does not (a rollback would decide on an event
    the full read never sees)."""
    header, records = _packed_records(repo)
    assert " sorted" in header
    moved = next(r for r in records if " refs/tags/fraud#production#3" in r)
    records.remove(moved)
    (repo / ".git/packed-refs").write_text("\n".join([header, moved, *records]) + "\n")
    assert "fraud#production#3" not in for_each_ref(repo)  # git misses it
    assert_listed_as_git(repo)
    assert list_tags(repo / ".git", PREFIXES) is None


@pytest.mark.parametrize(
    "line",
    [
        "{oid} refs/heads/x refs/tags/fraud#staging#60",  # a name with a space: git skips it
        "{oid} refs/tags/fraud#staging#61\r",  # CRLF: a name git reads as broken
        "{oid} refs/tags/fraud#production#1",  # a name on two lines: git lists both
        "{OID} refs/tags/fraud#staging#62",  # an object id in capitals: git reads it
    ],
)
def test_packed_lines_git_reads_otherwise_leave_the_listing_to_git(repo: Path, line: str) -> None:
    header, records = _packed_records(repo)
    oid = rev(repo, "fraud@v0.0.0")
    extra = line.format(oid=oid, OID=oid.upper())
    text = "\n".join([header.replace(" sorted", ""), *records, extra]) + "\n"
    (repo / ".git/packed-refs").write_text(text)
    assert_listed_as_git(repo)
    assert list_tags(repo / ".git", PREFIXES) is None


@pytest.mark.parametrize(
    ("text", "broken"),
    [
        ("{oid} junk\n", False),  # git reads the object id and ignores what follows a space
        ("{oid}\nsecond line\n", False),
        ("{OID}\n", False),  # capitals: git reads them as the same object id
        ("  {oid}\n", True),  # leading blanks: git warns and leaves it out
        ("{oid}x\n", True),  # no blank after the id: broken
    ],
)
def test_a_loose_ref_file_reads_as_git_reads_it(repo: Path, text: str, broken: bool) -> None:
    oid = rev(repo, "fraud@v0.1.0")
    (repo / ".git/refs/tags/fraud@v9.0.0").write_text(text.format(oid=oid, OID=oid.upper()))
    assert ("fraud@v9.0.0" in for_each_ref(repo)) is not broken
    assert_as_git(repo, extra=frozenset({"fraud@v9.0.0"}) if broken else frozenset())


def test_the_packed_refs_check_is_remembered_by_the_files_bytes_only(repo: Path) -> None:
    """The check that packed-refs is as git reads it is remembered by the file's SHA-256: a
    file rewritten afterwards (here, out of its claimed order) is checked again, and a memo
    that cannot be written costs only the check."""
    header, records = _packed_records(repo)
    packed = repo / ".git/packed-refs"
    assert list_tags(repo / ".git", PREFIXES) is not None
    memo = repo / ".git" / MEMO
    assert memo.read_text() == hashlib.sha256(packed.read_bytes()).hexdigest()
    assert_listed_as_git(repo)  # read again, through the memo

    moved = next(r for r in records if " refs/tags/fraud#production#3" in r)
    records.remove(moved)
    packed.write_text("\n".join([header, moved, *records]) + "\n")
    assert list_tags(repo / ".git", PREFIXES) is None  # the memo names the other file
    assert memo.read_text() != hashlib.sha256(packed.read_bytes()).hexdigest()

    memo.unlink()
    _packed_records(repo)  # packed again, sorted
    (repo / ".git/mvctl").mkdir(exist_ok=True)
    memo.mkdir()  # a memo that is no file: never read, never written
    assert_listed_as_git(repo)
    assert memo.is_dir()
