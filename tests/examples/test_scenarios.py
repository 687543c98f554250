"""The fintech and healthcare scenarios, run as a newcomer runs them (a subprocess, mvctl
on PATH, a fresh TMPDIR): each must finish, show the rollback it is about, and leave
nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: Path, tmp_path: Path) -> str:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    env.pop("COLUMNS", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert list(tmp_path.iterdir()) == [], "the example left files behind"
    return done.stdout


def test_fintech_monitor_rolls_the_holiday_model_back(tmp_path: Path) -> None:
    out = _run(EXAMPLES / "fintech" / "fintech.py", tmp_path)
    assert "v1.0.0 → v2.0.0" in out  # the holiday retrain promoted through its gates
    assert "rolled fraud@production back: v2.0.0 → v1.0.0" in out  # by the monitor
    assert "v2.0.0 -> v1.0.0 (from the local cache)" in out  # the host, no download
    assert "history: the automatic rollback v2.0.0 -> v1.0.0" in out
    assert "season=holiday: production is v2.0.0" in out  # picked by its label
    assert "season=regular: production is v1.0.0" in out  # and back
    assert "fintech finished" in out


def test_healthcare_expert_rolls_back_to_the_version_she_chose(tmp_path: Path) -> None:
    out = _run(EXAMPLES / "healthcare" / "healthcare.py", tmp_path)
    assert "v1.1.0 → v2.0.0" in out  # v2 promoted through its gates
    assert "a plain rollback would pick: v1.1.0" in out
    assert "imaging@production rolled back: v2.0.0 → v1.0.0" in out  # her chosen version
    assert "imaging@production: v2.0.0 -> v1.0.0 (from the local cache)" in out  # the host
    assert "history: Dr. Ada Okafor rolled v2.0.0 back to v1.0.0" in out
    assert "healthcare finished" in out
