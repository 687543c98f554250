"""Shared helpers for benchmark scripts: isolated env, timing medians, RESULTS.md sections."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
BIN = Path(sys.executable).parent


def compile_package() -> None:
    """Write mvctl's bytecode, as a pip install does: an editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every run."""
    import compileall

    import mvctl

    compileall.compile_dir(str(Path(mvctl.__file__).parent), quiet=1)


def isolated_env(home: Path) -> dict[str, str]:
    compile_package()
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
        GIT_AUTHOR_NAME="Bench",
        GIT_AUTHOR_EMAIL="bench@example.com",
        GIT_COMMITTER_NAME="Bench",
        GIT_COMMITTER_EMAIL="bench@example.com",
        DVC_NO_ANALYTICS="1",
        NO_COLOR="1",
    )
    return env


def run(args: Sequence[str | Path], cwd: Path, env: dict[str, str], *, check: bool = True) -> str:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc.stdout


def new_registry(
    root: Path, env: dict[str, str], storage: Path, origin: Path | None = None
) -> None:
    """A git repo with one commit made an mvctl registry (DVC store ``storage``); with
    ``origin``, a bare remote of that name too."""
    run(["git", "init", "-q", "-b", "main", root], root.parent, env)
    if origin is not None:
        run(["git", "init", "-q", "--bare", "-b", "main", origin], root.parent, env)
        run(["git", "remote", "add", "origin", origin], root, env)
    (root / "README.md").write_text("bench\n")
    run(["git", "add", "README.md"], root, env)
    run(["git", "commit", "-q", "-m", "initial"], root, env)
    run([BIN / "mvctl", "init", "--storage", storage], root, env)


def fast_import(root: Path, env: dict[str, str], chunks: Sequence[str]) -> None:
    """Feed a `git fast-import` stream (built with ``fast_import_data``) to ``root``."""
    subprocess.run(
        ["git", "fast-import", "--quiet"],
        cwd=root,
        env=env,
        input="".join(chunks).encode(),
        check=True,
    )


def fast_import_data(text: str) -> str:
    return f"data {len(text.encode())}\n{text}"


def median_seconds(
    args: Sequence[str | Path], cwd: Path, env: dict[str, str], runs: int, *, check: bool = True
) -> float:
    """Median wall time of ``runs`` runs, after one warm-up run (page cache, .pyc)."""
    run(args, cwd, env, check=check)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(args, cwd, env, check=check)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md, leaving the others alone."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text)
