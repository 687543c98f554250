"""The hot paths against history size, side by side in one run: 10 and 10,000 versions and
production events (by default), built with git fast-import exactly as mvctl writes them
(bench_registry.build, bench_channels.add_events).

    python benchmarks/bench_scale.py [--sizes 10 10000] [--runs 5] [--pack-refs]

Budgets (DESIGN.md): rollback and promote under 0.3 s at the largest size and within 1.2x
of the smallest; list, show and history under 0.5 s. Every figure is the median wall time
of ``--runs`` fresh processes after one warm-up; every timed rollback and promotion is a
real move (a step back, or a change of the version staging holds).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _common import BIN, isolated_env, machine, run, write_section
from bench_channels import add_events, published_copy
from bench_registry import MODEL, build

MOVE_BUDGET_S = 0.3
MOVE_RATIO = 1.2
READ_BUDGET_S = 0.5


@dataclass(frozen=True)
class Registries:
    root: Path
    published: Path
    versions: int
    built: float


def prepare(work: Path, env: dict[str, str], n: int, *, pack: bool = False) -> Registries:
    root = work / f"n{n}" / "registry"
    root.parent.mkdir()
    start = time.perf_counter()
    build(root, env, n)
    add_events(root, env, n)
    built = time.perf_counter() - start
    check = run([BIN / "mvctl", "check", "--json"], root, env)
    assert '"ok":true' in check.replace(" ", ""), check
    published = published_copy(root, work / f"n{n}", env)
    if pack:  # as `git gc` and hosting services leave refs: one packed-refs file
        for repo in (root, published, work / f"n{n}" / "origin.git"):
            run(["git", "pack-refs", "--all"], repo, env)
    return Registries(root, published, n, built)


Case = Callable[[Registries, int], tuple[list[str | Path], Path, dict[str, str], str | None]]


def _reads(env: dict[str, str]) -> dict[str, Case]:
    def read(*args: str) -> Case:
        def case(r: Registries, i: int) -> tuple[list[str | Path], Path, dict[str, str], None]:
            argv = [a.replace("MIDDLE", f"0.{max(r.versions // 2, 1)}.0") for a in args]
            return [BIN / "mvctl", *argv], r.root, env, None

        return case

    def rollback(published: bool) -> Case:
        def case(r: Registries, i: int) -> tuple[list[str | Path], Path, dict[str, str], str]:
            # git's clock (which mvctl reads for event times) moves an hour per run: each
            # rollback is a real step back, past the window in which it would be a retry.
            timed = {**env, "GIT_COMMITTER_DATE": f"2026-03-01T{i:02d}:00:00+00:00"}
            argv: list[str | Path] = [BIN / "mvctl", "rollback", MODEL, "--reason", "bench"]
            argv += ["--json"] if published else ["--json", "--local"]
            return argv, r.published if published else r.root, timed, '"changed":true'

        return case

    def promote(r: Registries, i: int) -> tuple[list[str | Path], Path, dict[str, str], str]:
        # Between the two newest versions in turn: staging changes every time.
        version = f"v0.{r.versions - i % 2}.0"
        argv: list[str | Path] = [BIN / "mvctl", "promote", MODEL, version, "--to", "staging"]
        return [*argv, "--local", "--json"], r.root, env, '"changed":true'

    return {
        "mvctl list --json": read("list", "--json"),
        f"mvctl list {MODEL} --json": read("list", MODEL, "--json"),
        f"mvctl show {MODEL}@vMIDDLE --json": read("show", f"{MODEL}@vMIDDLE", "--json"),
        f"mvctl show {MODEL}@production --json": read("show", f"{MODEL}@production", "--json"),
        f"mvctl history {MODEL} --json": read("history", MODEL, "--json"),
        "mvctl rollback --local": rollback(published=False),
        "mvctl promote --local": promote,
        "mvctl rollback (published)": rollback(published=True),
    }


def _timed(case: Case, r: Registries, i: int) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, of the process and its git children)."""
    argv, cwd, env, expect = case(r, i)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = run(argv, cwd, env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if expect is not None:
        assert expect in out.replace(" ", ""), out
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(small: Registries, large: Registries, runs: int) -> list[tuple[str, Figures]]:
    """Each command on both registries in turn (small, large, small, ...), so a machine
    whose speed drifts slows both alike; the ratio is the median of the pairs' ratios."""
    env = isolated_env(small.root.parent.parent / "home")
    found = []
    for name, case in _reads(env).items():
        pairs = []
        for i in range(runs + 1):  # the first pair is the warm-up
            pair = (_timed(case, small, i), _timed(case, large, i))
            if i:
                pairs.append(pair)
        found.append((name, Figures.of(pairs)))
    return found


@dataclass(frozen=True)
class Figures:
    small: float  # median wall seconds
    large: float
    ratio: float  # median of large / small, pair by pair (wall)
    cpu_small: float
    cpu_large: float

    @classmethod
    def of(cls, pairs: list[tuple[tuple[float, float], tuple[float, float]]]) -> Figures:
        med = statistics.median
        return cls(
            small=med(a[0] for a, _ in pairs),
            large=med(b[0] for _, b in pairs),
            ratio=med(b[0] / a[0] for a, b in pairs),
            cpu_small=med(a[1] for a, _ in pairs),
            cpu_large=med(b[1] for _, b in pairs),
        )


def _verdict(name: str, f: Figures) -> str:
    if name.startswith(("mvctl rollback --local", "mvctl promote")):
        ok = f.large < MOVE_BUDGET_S and f.ratio <= MOVE_RATIO
        return f"< {MOVE_BUDGET_S} s and <= {MOVE_RATIO}x: {'ok' if ok else 'OVER'}"
    if name.startswith(("mvctl list", "mvctl show", "mvctl history")):
        return f"< {READ_BUDGET_S} s: {'ok' if f.large < READ_BUDGET_S else 'OVER'}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10, 10_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--pack-refs", action="store_true", help="pack every repository's refs first"
    )
    args = parser.parse_args()
    small_n, large_n = args.sizes
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-scale-"))
    try:
        env = isolated_env(work / "home")
        small, large = (prepare(work, env, n, pack=args.pack_refs) for n in (small_n, large_n))
        load_before = os.getloadavg()[0]
        results = measure(small, large, args.runs)
        load_after = os.getloadavg()[0]
        for r in (small, large):  # the moves left both consistent
            check = run([BIN / "mvctl", "check", "--json"], r.root, env)
            assert '"ok":true' in check.replace(" ", ""), check
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [
        f"| command | {small_n} / {small_n} (s) | {large_n} / {large_n} (s) | ratio |"
        " CPU s (small / large) | budget |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in results:
        rows.append(
            f"| `{name}` | {f.small:.3f} | {f.large:.3f} | {f.ratio:.2f}x |"
            f" {f.cpu_small:.3f} / {f.cpu_large:.3f} | {_verdict(name, f)} |"
        )
    packed = " --pack-refs" if args.pack_refs else ""
    refs = (
        "Every repository's refs were packed first (`git pack-refs --all`, as `git gc` and"
        " hosting services leave them)."
        if args.pack_refs
        else "Refs are loose files, as the fast-import build and one big push leave them (2N"
        " per repository); `--pack-refs` measures them packed."
    )
    body = "\n".join(
        [
            "## Hot paths at 10 and 10,000 versions and events, side by side"
            + (", refs packed" if args.pack_refs else ""),
            "",
            f"`python benchmarks/bench_scale.py --sizes {small_n} {large_n} --runs {args.runs}"
            f"{packed}`"
            f" on {machine()}; medians of {args.runs} fresh processes after one warm-up, the"
            " two sizes in turn (the ratio is the median of the pairs' ratios; CPU is user +"
            " system of mvctl and its git children). Each registry has N versions and N"
            " production promotions (one event each), the alias as a move writes it;"
            " rollbacks and promotions are real moves. A published rollback fetches the"
            " model's tags from a bare remote on the same disk first and pushes after, so it"
            f" grows with the number of tags (no budget here). {refs} Building took"
            f" {small.built:.1f} s and {large.built:.1f} s. The machine is shared: the"
            f" 1-minute load average was {load_before:.2f} when the timings began and"
            f" {load_after:.2f} when they ended.",
            "",
            *rows,
        ]
    )
    write_section("scale-packed" if args.pack_refs else "scale", body)
    print(body)


if __name__ == "__main__":
    main()
