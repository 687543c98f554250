"""examples/observability/try.sh, as a newcomer runs it: the whole chain with the folder's
own configs and real binaries, on the ports they name. It must end with the webhook's
rollback published, the host serving v1 again and callers answered by v1, and leave
nothing behind. Skipped, with the reason, without the binaries or with a port taken."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.observability.examples import EXAMPLES

pytestmark = pytest.mark.slow


def test_try_sh_rolls_back_and_the_host_follows(tmp_path: Path) -> None:
    if shutil.which("prometheus") is None or not (
        shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    ):
        pytest.skip(
            "prometheus and alertmanager are not installed"
            " (apt-get install prometheus prometheus-alertmanager)"
        )
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(EXAMPLES / "try.sh")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=400,
        check=False,
    )
    if done.returncode == 2 and "in use on 127.0.0.1" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "rolled_back: fraud@production" in out and "v2.0.0 -> v1.0.0" in out, out[-3000:]
    traffic = [line for line in out.splitlines() if line.startswith("traffic, last 5 s:")]
    assert any("failed (400)" in line for line in traffic), traffic  # v2 failed live
    assert "v1.0.0" in traffic[-1] and "failed" not in traffic[-1], traffic
    assert list(tmp_path.iterdir()) == [], "try.sh left files behind"
