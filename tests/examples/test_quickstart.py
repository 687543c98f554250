"""`make demo`'s story and `make tour`, run as a newcomer runs them (a subprocess, mvctl on
PATH, a fresh TMPDIR): each must finish, say what it showed, and leave nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(argv: list[str], tmp_path: Path) -> str:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    env.pop("COLUMNS", None)
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert list(tmp_path.iterdir()) == [], "the example left files behind"
    return done.stdout


def test_quickstart_tells_the_whole_story(tmp_path: Path) -> None:
    out = _run([sys.executable, str(EXAMPLES / "quickstart" / "quickstart.py")], tmp_path)
    assert "failed the production gates" in out  # v2's planted regression
    assert "refused (exit 1): production still holds v1.0.0" in out
    assert "v1.0.0 → v3.0.0" in out  # v3 promoted
    assert "rolled cancer@production back: v3.0.0 → v1.0.0" in out  # by the monitor
    assert "v3.0.0 -> v1.0.0 (from the local cache)" in out  # the host, no download
    assert "quickstart finished" in out


def test_tour_runs_every_command_family(tmp_path: Path) -> None:
    out = _run(["bash", str(EXAMPLES / "tour.sh")], tmp_path)
    assert "tour finished" in out
