"""Read commands in a git repo with no mvctl.yaml exit 3 with the same line as outside
git does, never "no models registered yet" or "consistent" (exit 0)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import git, mvctl, run

READS = [
    ("list",),
    ("list", "fraud"),
    ("check",),
    ("check", "--offline"),
    ("show", "fraud"),
    ("history", "fraud"),
    ("lineage", "fraud"),
    ("diff", "fraud", "v0.1.0", "v0.2.0"),
    ("get", "fraud@production"),
]


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A git repo with a commit and a tag that looks like a version, but no mvctl.yaml."""
    root = tmp_path / "plain"
    run("git", "init", "-q", "-b", "main", root, cwd=tmp_path)
    (root / "README.md").write_text("# not a registry\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "tag", "-a", "-m", "v", "fraud@v0.1.0")
    return root


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_git_repo_without_mvctl_yaml_is_not_a_registry(
    plain: Path, args: tuple[str, ...]
) -> None:
    (plain / "sub").mkdir()
    proc = mvctl(plain / "sub", *args)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert proc.stderr.splitlines() == [
        f"error: {plain} is not an mvctl registry (no mvctl.yaml)",
        "hint: run 'mvctl init' first",
    ]
    assert proc.stdout == ""
    as_json = mvctl(plain, *args, "--json")
    assert as_json.returncode == 3
    assert json.loads(as_json.stdout) == {
        "error": f"{plain} is not an mvctl registry (no mvctl.yaml)",
        "hint": "run 'mvctl init' first",
        "exit": 3,
    }


@pytest.mark.parametrize("args", [("list",), ("check",), ("get", "fraud")], ids=" ".join)
def test_outside_git_is_exit_3_too(tmp_path: Path, args: tuple[str, ...]) -> None:
    proc = mvctl(tmp_path, *args)
    assert proc.returncode == 3
    assert proc.stderr.splitlines() == [
        f"error: {tmp_path} is not inside a git work tree",
        "hint: run 'git init' first, or cd into your repository",
    ]
