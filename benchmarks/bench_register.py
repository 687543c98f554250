"""register against the DVC + git commands it stands for, on the same weights.

Each run writes fresh random weights of the same size, then either runs
`dvc add` + `git add` + `git commit` (and, separately, also `dvc push`), or
`mvctl register` (which also hashes, captures the environment, writes the manifest, tags,
and pushes to the DVC remote).

    python benchmarks/bench_register.py [--size-mb 50] [--runs 5]

Budget (DESIGN.md): register within 1.5x of `dvc add` + `git commit` for the same weights.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import BIN, isolated_env, machine, new_registry, run, write_section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-register-"))
    size = args.size_mb * 1024 * 1024
    results: dict[str, list[float]] = {"dvc": [], "dvc+push": [], "mvctl": []}
    try:
        env = isolated_env(work / "home")
        repos = {}
        for name in results:
            root = work / name
            new_registry(root, env, work / f"storage-{name}")
            repos[name] = root
        for i in range(args.runs + 1):  # the first round warms caches and is not counted
            for name, root in repos.items():
                (root / "model.bin").write_bytes(os.urandom(size))
                start = time.perf_counter()
                if name == "mvctl":
                    run([BIN / "mvctl", "register", "m", "-w", "model.bin"], root, env)
                else:
                    run([BIN / "dvc", "add", "-q", "model.bin"], root, env)
                    run(["git", "add", "model.bin.dvc", ".gitignore"], root, env)
                    run(["git", "commit", "-q", "-m", f"weights {i}"], root, env)
                    if name == "dvc+push":
                        run([BIN / "dvc", "push", "-q"], root, env)
                if i:
                    results[name].append(time.perf_counter() - start)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in results.items()}
    ratio = med["mvctl"] / med["dvc"]
    lines = [
        "| command | median (s) | mvctl register vs it |",
        "|---|---|---|",
        f"| `dvc add` + `git add` + `git commit` | {med['dvc']:.3f} | {ratio:.2f}x |",
        f"| the same + `dvc push` | {med['dvc+push']:.3f} |"
        f" {med['mvctl'] / med['dvc+push']:.2f}x |",
        f"| `mvctl register` (+ hash, env, manifest, tag, DVC push) | {med['mvctl']:.3f} | - |",
        "",
        f"Budget: within 1.5x of `dvc add` + `git commit`: {'ok' if ratio <= 1.5 else 'OVER'}.",
    ]
    body = "\n".join(
        [
            "## Register vs dvc add + git commit",
            "",
            f"`python benchmarks/bench_register.py --size-mb {args.size_mb} --runs {args.runs}`"
            f" on {machine()}; medians of {args.runs} runs after one warm-up, fresh random"
            " weights each run, a directory DVC remote.",
            "",
            *lines,
        ]
    )
    write_section("register", body)
    print(body)


if __name__ == "__main__":
    main()
