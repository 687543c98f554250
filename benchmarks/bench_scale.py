"""The hot paths against history size, side by side in one run: 10 and 10,000 versions and
production events (by default), built with git fast-import exactly as mvctl writes them
(bench_registry.build, bench_channels.add_events).

    python benchmarks/bench_scale.py [--sizes 10 10000] [--runs 5]

Budgets (DESIGN.md): rollback and promote under 0.3 s at the largest size and within 1.2x
of the smallest; list, show and history under 0.5 s. Every figure is the median wall time
of ``--runs`` fresh processes after one warm-up; every timed rollback and promotion is a
real move (a step back, or a change of the version staging holds).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import BIN, isolated_env, machine, median_seconds, run, write_section
from bench_channels import add_events, median_rollbacks, published_copy
from bench_registry import MODEL, build

MOVE_BUDGET_S = 0.3
MOVE_RATIO = 1.2
READ_BUDGET_S = 0.5


def median_promotions(root: Path, env: dict[str, str], runs: int, versions: int) -> float:
    """Median wall time of ``promote --local`` to staging, each a real move: it alternates
    between the two newest versions, so the channel changes every time."""
    times = []
    for i in range(runs + 1):  # the first is the warm-up
        version = f"v0.{versions - i % 2}.0"
        argv = [BIN / "mvctl", "promote", MODEL, version, "--to", "staging", "--local", "--json"]
        start = time.perf_counter()
        out = run(argv, root, env)
        elapsed = time.perf_counter() - start
        assert '"changed":true' in out.replace(" ", ""), out
        if i:
            times.append(elapsed)
    return statistics.median(times)


def measure(work: Path, env: dict[str, str], n: int, runs: int) -> dict[str, float]:
    root = work / f"n{n}" / "registry"
    root.parent.mkdir()
    start = time.perf_counter()
    build(root, env, n)
    add_events(root, env, n)
    built = time.perf_counter() - start
    check = run([BIN / "mvctl", "check", "--json"], root, env)
    assert '"ok":true' in check.replace(" ", ""), check
    published = published_copy(root, work / f"n{n}", env)
    middle = f"{MODEL}@v0.{max(n // 2, 1)}.0"
    reads: dict[str, list[str | Path]] = {
        "mvctl list --json": [BIN / "mvctl", "list", "--json"],
        f"mvctl list {MODEL} --json": [BIN / "mvctl", "list", MODEL, "--json"],
        f"mvctl show {MODEL}@vMIDDLE --json": [BIN / "mvctl", "show", middle, "--json"],
        f"mvctl show {MODEL}@production --json": [
            BIN / "mvctl",
            "show",
            f"{MODEL}@production",
            "--json",
        ],
        f"mvctl history {MODEL} --json": [BIN / "mvctl", "history", MODEL, "--json"],
    }
    figures = {name: median_seconds(argv, root, env, runs) for name, argv in reads.items()}
    figures["mvctl rollback --local"] = median_rollbacks(root, env, runs, "--local")
    figures["mvctl rollback (published)"] = median_rollbacks(published, env, runs)
    figures["mvctl promote --local"] = median_promotions(root, env, runs, n)
    check = run([BIN / "mvctl", "check", "--json"], root, env)
    assert '"ok":true' in check.replace(" ", ""), check  # the moves left it consistent
    figures["build (s, not a command)"] = built
    return figures


def _budget(name: str) -> Callable[[float, float], str] | None:
    if name.startswith(("mvctl rollback --local", "mvctl promote")):

        def move(small: float, large: float) -> str:
            ok = large < MOVE_BUDGET_S and large <= MOVE_RATIO * small
            return f"< {MOVE_BUDGET_S} s and <= {MOVE_RATIO}x: {'ok' if ok else 'OVER'}"

        return move
    if name.startswith(("mvctl list", "mvctl show", "mvctl history")):
        return lambda small, large: (
            f"< {READ_BUDGET_S} s: {'ok' if large < READ_BUDGET_S else 'OVER'}"
        )
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10, 10_000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    small, large = args.sizes
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-scale-"))
    try:
        env = isolated_env(work / "home")
        results = {n: measure(work, env, n, args.runs) for n in (small, large)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        f"| command | {small} / {small} (s) | {large} / {large} (s) | ratio | budget |",
        "|---|---|---|---|---|",
    ]
    for name, a in results[small].items():
        b = results[large][name]
        judge = _budget(name)
        verdict = judge(a, b) if judge else ""
        rows.append(f"| `{name}` | {a:.3f} | {b:.3f} | {b / a:.2f}x | {verdict} |")
    body = "\n".join(
        [
            "## Hot paths at 10 and 10,000 versions and events, side by side",
            "",
            f"`python benchmarks/bench_scale.py --sizes {small} {large} --runs {args.runs}` on"
            f" {machine()}; medians of {args.runs} fresh processes after one warm-up. Each"
            f" registry has N versions and N production promotions (one event each), the"
            " alias as a move writes it; rollbacks and promotions are real moves. A published"
            " rollback fetches the model's tags from a bare remote on the same disk first and"
            " pushes after, so it grows with the number of tags (no budget here).",
            "",
            *rows,
        ]
    )
    write_section("scale", body)
    print(body)


if __name__ == "__main__":
    main()
