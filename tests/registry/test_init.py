"""init: a git repo becomes a registry; idempotent; refuses outside git."""

from __future__ import annotations

from pathlib import Path

import pytest

from mvctl.errors import OperationalError, PolicyError
from mvctl.formats import config
from mvctl.registry.initialise import init
from tests.conftest import git, mvctl, run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    run("git", "init", "-q", "-b", "main", root, cwd=tmp_path)
    return root


def test_init_sets_up_dvc_config_and_an_embedded_store(repo: Path) -> None:
    result = init(repo)
    assert result.dvc_initialised and result.config_written and result.remote_configured
    assert (repo / ".dvc").is_dir()
    assert config.load(repo).channels == ("production", "staging", "canary", "shadow")
    text = (repo / "mvctl.yaml").read_text()
    assert text.startswith("# mvctl registry configuration")
    dvc_config = (repo / ".dvc/config").read_text()
    assert "remote = mvctl" in dvc_config
    assert f"url = {repo / '.mvctl/storage'}" in dvc_config
    assert (repo / ".mvctl/storage").is_dir()
    # Everything init wrote is committed; the embedded store is ignored by git.
    assert git(repo, "status", "--porcelain") == ""
    assert result.commit == git(repo, "rev-parse", "HEAD").strip()
    assert sorted(git(repo, "ls-files").split()) == sorted(
        [".dvc/.gitignore", ".dvc/config", ".dvcignore", ".gitignore", "mvctl.yaml"]
    )
    assert git(repo, "check-ignore", ".mvctl/storage/x").strip() == ".mvctl/storage/x"


def test_init_is_idempotent(repo: Path) -> None:
    init(repo)
    head = git(repo, "rev-parse", "HEAD")
    again = init(repo)
    assert not again.changed
    assert again.commit is None
    assert git(repo, "rev-parse", "HEAD") == head


def test_init_storage_accepts_paths_and_urls(repo: Path, tmp_path: Path) -> None:
    result = init(repo, "s3://bucket/models")
    assert result.remote == ("mvctl", "s3://bucket/models")
    assert "url = s3://bucket/models" in (repo / ".dvc/config").read_text()
    # Same storage again: nothing to do; a different one: refused, nothing changed.
    assert not init(repo, "s3://bucket/models").changed
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(PolicyError, match="already points at s3://bucket/models"):
        init(repo, str(tmp_path / "elsewhere"))
    assert git(repo, "rev-parse", "HEAD") == head


def test_init_keeps_an_existing_dvc_remote(repo: Path, tmp_path: Path) -> None:
    run("dvc", "init", "-q", cwd=repo)
    run("dvc", "remote", "add", "-d", "team", str(tmp_path / "team-store"), cwd=repo)
    result = init(repo)
    assert result.remote == ("team", str(tmp_path / "team-store"))
    assert not result.remote_configured
    assert 'remote "mvctl"' not in (repo / ".dvc/config").read_text()


def test_init_dry_run_writes_nothing(repo: Path) -> None:
    result = init(repo, dry_run=True)
    assert result.dry_run and result.changed and result.commit is None
    assert not (repo / ".dvc").exists()
    assert not (repo / "mvctl.yaml").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_init_refuses_outside_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(OperationalError, match="not inside a git work tree"):
        init(plain)
    proc = mvctl(plain, "init")
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 2  # one line of cause, one of hint
    assert "not inside a git work tree" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (plain / ".dvc").exists()
