"""The decision log never follows a planted symlink: `mvctl serve DIR` appends to
DIR/decisions.jsonl by default, and a symlink planted there (DIR is the puller's) would
make the server append request keys to any file it can write. A FIFO is refused too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mvctl.errors import OperationalError
from mvctl.serving import Router
from mvctl.serving.decisions import DecisionLog
from tests.serving.test_router import TEXT_LOADER, write_state, write_version
from tests.web.test_serve import _free_port


def test_a_planted_decision_log_symlink_is_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.conf"
    outside.write_text("precious = true\n")
    log = tmp_path / "host" / "decisions.jsonl"
    log.parent.mkdir()
    log.symlink_to(outside)
    with pytest.raises(OperationalError, match="is a symlink: refusing") as refused:
        Router("fraud", decision_log=log)
    assert refused.value.exit_code == 3
    assert outside.read_text() == "precious = true\n"
    dangling = tmp_path / "host" / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "created-through-the-link")
    with pytest.raises(OperationalError, match="symlink"):
        DecisionLog(dangling)
    assert not (tmp_path / "created-through-the-link").exists()


def test_a_fifo_is_refused_without_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # with a reader, open succeeds
    try:
        with pytest.raises(OperationalError, match="not a regular file"):
            DecisionLog(fifo)
    finally:
        os.close(reader)
    with pytest.raises(OSError):  # no reader: refused at once, never blocked on
        DecisionLog(fifo)
    # A regular file, and a device such as /dev/null, are appended to as before.
    real = DecisionLog(tmp_path / "real.jsonl")
    real.outcome("k", 1)
    real.close()
    assert json.loads((tmp_path / "real.jsonl").read_text())["outcome"] == 1
    DecisionLog(Path(os.devnull)).close()


@pytest.mark.slow
def test_serve_refuses_a_planted_decision_log_symlink(tmp_path: Path) -> None:
    """Reproduction: `mvctl serve` opened DIR/decisions.jsonl without O_NOFOLLOW and
    appended attacker-chosen request keys to the file a planted symlink named."""
    host = tmp_path / "host"
    write_version(host, "v1.0.0", "one")
    write_state(host, {"production": ("v1.0.0", None)})
    (host / "current").symlink_to("versions/v1.0.0")
    outside = tmp_path / "outside.conf"
    outside.write_text("precious = true\n")
    (host / "decisions.jsonl").symlink_to(outside)
    port = str(_free_port())
    argv = [sys.executable, "-m", "mvctl", "serve", str(host), "--no-auth", "--port", port]
    # Were the link followed, the server would start: the timeout ends the test then.
    proc = subprocess.run(
        [*argv, "--loader", TEXT_LOADER], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3, proc.stderr
    assert "is a symlink: refusing" in proc.stderr
    assert outside.read_text() == "precious = true\n"
