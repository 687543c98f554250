"""Byte progress of `mvctl register`'s upload and `mvctl pull`'s download: the totals are
the artifacts' sizes, bars go to a terminal's stderr only, never with --json."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from mvctl import serving
from mvctl.channels.promotion import promote
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry

MODEL = "models/model.bin"
WEIGHTS = b"w" * 300_000
ROWS = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(5000))
NET = {"net/config.json": b"{}", "net/layers/0.bin": b"0" * 70_000, "net/layers/1.bin": b"1"}


class Recorded:
    """A ProgressSink keeping each task's label, total and the amounts reported."""

    def __init__(self) -> None:
        self.tasks: list[tuple[str, int | None, list[int]]] = []

    def task(self, label: str, total: int | None) -> Callable[[int], None]:
        seen: list[int] = []
        self.tasks.append((label, total, seen))
        return seen.append

    def done(self, prefix: str) -> list[tuple[str, int | None, int]]:
        return [(lbl, tot, sum(seen)) for lbl, tot, seen in self.tasks if lbl.startswith(prefix)]


def _train(registry: Registry) -> None:
    registry.write("models/model.bin", WEIGHTS)
    registry.write("data/train.csv", ROWS)


def test_register_upload_counts_the_artifacts_bytes(registry: Registry) -> None:
    _train(registry)
    progress = Recorded()
    register(
        RegisterRequest(model="fraud", cwd=registry.root, weights=MODEL, data=("data/train.csv",)),
        progress,
    )
    total = len(WEIGHTS) + len(ROWS)
    assert progress.done("pushing") == [("pushing to the DVC remote", total, total)]
    # The bytes came from the copies themselves, in more than one step (not one jump).
    (_, _, seen), *_ = (t for t in progress.tasks if t[0].startswith("pushing"))
    assert len(seen) >= 2
    assert registry.storage_files()  # and DVC's push did put them in the remote


def test_register_upload_of_a_directory_counts_its_files_not_its_listing(
    registry: Registry,
) -> None:
    for rel, content in NET.items():
        registry.write(f"models/{rel}", content)
    progress = Recorded()
    register(RegisterRequest(model="fraud", cwd=registry.root, weights="models/net"), progress)
    total = sum(len(c) for c in NET.values())
    assert progress.done("pushing") == [("pushing to the DVC remote", total, total)]


def test_register_again_with_the_objects_in_the_remote_still_completes(
    registry: Registry,
) -> None:
    _train(registry)
    register(RegisterRequest(model="fraud", cwd=registry.root, weights=MODEL))
    registry.write("metrics.json", json.dumps({"auc": 0.5}))
    registry.git("add", "metrics.json")
    registry.git("commit", "-qm", "metrics")
    progress = Recorded()
    register(
        RegisterRequest(model="fraud", cwd=registry.root, weights=MODEL, bump="minor"), progress
    )
    assert progress.done("pushing") == [("pushing to the DVC remote", len(WEIGHTS), len(WEIGHTS))]


def _served(registry: Registry) -> None:
    _train(registry)
    register(RegisterRequest(model="fraud", cwd=registry.root, weights=MODEL))
    promote(registry.root, "fraud", "v0.1.0", "production", push=True)


def _request(registry: Registry, host: Path) -> serving.PullRequest:
    return serving.PullRequest(str(registry.origin), "fraud", "production", host)


def test_pull_download_counts_the_weights_bytes(registry: Registry, tmp_path: Path) -> None:
    _served(registry)
    progress = Recorded()
    serving.pull_channels(_request(registry, tmp_path / "host"), progress)
    assert progress.done("fraud") == [("fraud v0.1.0 model.bin", len(WEIGHTS), len(WEIGHTS))]


def test_pull_of_directory_weights_counts_its_files(registry: Registry, tmp_path: Path) -> None:
    for rel, content in NET.items():
        registry.write(f"models/{rel}", content)
    register(RegisterRequest(model="fraud", cwd=registry.root, weights="models/net"))
    promote(registry.root, "fraud", "v0.1.0", "production", push=True)
    progress = Recorded()
    got = serving.pull_channels(_request(registry, tmp_path / "host"), progress)
    assert got.errors == ()
    total = sum(len(c) for c in NET.values())
    assert progress.done("fraud") == [("fraud v0.1.0 net", total, total)]


def _pull(
    registry: Registry, host: Path, *extra: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "mvctl", "pull", str(registry.origin), "fraud"]
    return subprocess.run(
        [*argv, "--dest", str(host), *extra],
        cwd=registry.root,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )


def test_cli_pull_draws_a_bar_on_a_terminal_only(registry: Registry, tmp_path: Path) -> None:
    _served(registry)
    forced = _pull(registry, tmp_path / "a", env={"TTY_COMPATIBLE": "1"})
    assert forced.returncode == 0, forced.stderr
    assert "fraud v0.1.0 model.bin" in forced.stderr
    assert "300.0/300.0 kB" in forced.stderr  # bytes done / total
    assert "fraud v0.1.0 model.bin" not in forced.stdout
    piped = _pull(registry, tmp_path / "b", env={})
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""


def test_cli_pull_json_draws_no_bar(registry: Registry, tmp_path: Path) -> None:
    _served(registry)
    done = _pull(registry, tmp_path / "a", "--json", env={"TTY_COMPATIBLE": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == "v0.1.0"
    assert done.stderr == ""


def test_cli_register_draws_a_bar_on_a_terminal_and_none_with_json(
    registry: Registry, tmp_path: Path
) -> None:
    _train(registry)
    env = {**os.environ, "TTY_COMPATIBLE": "1"}
    argv = [sys.executable, "-m", "mvctl", "register", "fraud", "--weights", "models/model.bin"]
    shown = subprocess.run(argv, cwd=registry.root, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "pushing to the DVC remote" in shown.stderr
    assert "300.0/300.0 kB" in shown.stderr
    registry.write("models/model.bin", WEIGHTS + b"2")
    quiet = subprocess.run(
        [*argv, "--json"], cwd=registry.root, capture_output=True, text=True, env=env
    )
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["manifest"]["version"] == "v0.2.0"
    assert "pushing" not in quiet.stderr


def test_watch_logs_one_line_per_download_and_draws_no_bar(
    registry: Registry, tmp_path: Path
) -> None:
    _served(registry)
    host = tmp_path / "host"
    argv = [sys.executable, "-m", "mvctl", "pull", str(registry.origin), "fraud"]
    proc = subprocess.Popen(
        [*argv, "--dest", str(host), "--watch", "--interval", "0.2"],
        cwd=registry.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TTY_COMPATIBLE": "1"},  # a terminal: still no bar in a log
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # blocks until the poller writes: no sleep
            lines.append(line)
            if "(downloaded and verified)" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    out = "".join(lines) + rest
    assert proc.returncode == 0, err
    downloads = [ln for ln in out.splitlines() if " downloaded fraud " in ln]
    assert len(downloads) == 1, out
    assert re.search(
        rf"downloaded fraud v0\.1\.0 model\.bin: {len(WEIGHTS):,} bytes in \d+\.\d s$",
        downloads[0],
    )
    assert "kB" not in out + err and "━" not in out + err


def test_cli_pull_status_folds_a_long_path_at_80_columns(
    registry: Registry, tmp_path: Path
) -> None:
    _served(registry)
    host = tmp_path / ("a-host-directory-with-a-long-name-" * 2)
    assert _pull(registry, host, env={}).returncode == 0
    argv = [sys.executable, "-m", "mvctl", "pull", "--status", "--dest", str(host)]
    shown = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}, check=True
    )
    assert "…" not in shown.stdout
    cells = "".join(
        line.split("│")[2].strip() for line in shown.stdout.splitlines() if line.count("│") == 3
    )
    assert str(host / "versions" / "v0.1.0" / "model.bin") in cells


def test_cli_get_json_draws_no_bar_on_a_terminal(registry: Registry, tmp_path: Path) -> None:
    _served(registry)
    env = {**os.environ, "TTY_COMPATIBLE": "1"}
    argv = [sys.executable, "-m", "mvctl", "get", "fraud@production", "-o"]
    drawn = subprocess.run(
        [*argv, str(tmp_path / "a.bin")], cwd=registry.root, capture_output=True, text=True, env=env
    )
    assert drawn.returncode == 0 and "300.0/300.0 kB" in drawn.stderr
    quiet = subprocess.run(
        [*argv, str(tmp_path / "b.bin"), "--json"],
        cwd=registry.root,
        capture_output=True,
        text=True,
        env=env,
    )
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["bytes"] == len(WEIGHTS)
    assert quiet.stderr == ""
