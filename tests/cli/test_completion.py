"""Shell completion, as a shell asks for it (the real command in a subprocess), and `mvctl`
typed alone: the usage, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The installed command, as a shell runs it (completion keys on the program's name).
MVCTL = str(Path(sys.executable).parent / "mvctl")


def _complete(tmp_path: Path, words: str) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        "_MVCTL_COMPLETE": "complete_bash",
    }
    done = subprocess.run([MVCTL], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout.split()


def test_mvctl_alone_shows_the_usage(tmp_path: Path) -> None:
    done = subprocess.run([MVCTL], cwd=tmp_path, capture_output=True, text=True)
    assert "Traceback" not in done.stderr, done.stderr
    assert "Usage: mvctl" in done.stdout and "rollback" in done.stdout
    assert done.returncode == 2


def test_commands_subcommands_and_options_complete(tmp_path: Path) -> None:
    assert _complete(tmp_path, "mvctl pro") == ["promote", "propose"]
    assert "serve" in _complete(tmp_path, "mvctl webhook s")
    assert "--channel" in _complete(tmp_path, "mvctl rollback --ch")
