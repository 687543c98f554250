"""The hook of .pre-commit-hooks.yaml through the real `pre-commit` tool, as a registry repo
uses it: `repo:` this checkout at its HEAD commit (pre-commit clones it and installs mvctl
in its own environment, from the package index), on a consistent registry (passes) and on
one whose alias was re-tagged by hand (fails, naming the alias)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, git, run

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _pre_commit(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("pre-commit")
    assert tool is not None
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        # The environment pre-commit builds installs mvctl's dependencies: from the user's
        # pip cache when it has them (HOME is private to the test).
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", f"{real_home}/.cache/pip"),
    }
    return subprocess.run(
        [tool, "run", "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_the_hook_passes_a_consistent_registry_and_fails_a_hand_moved_alias(
    registry: Registry, tmp_path: Path
) -> None:
    if shutil.which("pre-commit") is None:
        pytest.skip("pre-commit is not installed (pip install -e '.[dev]')")
    if not (ROOT / ".git").exists():
        pytest.skip(f"{ROOT} is not a git checkout: pre-commit needs a rev to clone")
    rev = git(ROOT, "rev-parse", "HEAD").strip()
    for n in (1, 2):
        registry.train(weights=b"weights-%d" % n)
        register(
            RegisterRequest(
                model="fraud",
                cwd=registry.root,
                weights="models/model.bin",
                data=("data/train.csv",),
                metrics_file="metrics.json",
                push=True,
            )
        )
    promote(registry.root, "fraud", "v0.1.0", "production", push=True)
    (registry.root / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {ROOT}\n    rev: {rev}\n    hooks: [{{id: mvctl-check}}]\n"
    )
    registry.git("add", ".pre-commit-config.yaml")
    registry.git("commit", "-q", "-m", "The registry's pre-commit hook")

    home = tmp_path / "pre-commit-home"
    passed = _pre_commit(registry.root, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "mvctl registry check" in passed.stdout and "Passed" in passed.stdout

    # By hand, around mvctl: production's alias now names v0.2.0's commit, no event says so.
    commit = git(registry.root, "rev-list", "-n", "1", "fraud@v0.2.0").strip()
    run("git", "tag", "-f", "fraud@production", commit, cwd=registry.root)
    failed = _pre_commit(registry.root, home)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout and "fraud@production" in failed.stdout, failed.stdout
