"""Start-up before and after a restructure: the same commands on two trees, side by side.

Times `mvctl --help`, `mvctl list fraud --json` and `mvctl rollback` with this checkout's
package and with an older commit's (default bee06ab, the last flat layout, checked out as
a temporary git worktree). Both run with this virtualenv's interpreter and dependencies;
PYTHONPATH picks the tree. Runs alternate between the trees (AB, then BA, round by round) so that
drift in the machine's load falls on both, and each tree's bytecode is compiled first (as a
pip install does), since a source tree run under PYTHONDONTWRITEBYTECODE=1 would otherwise
recompile every module on every run.

    python benchmarks/bench_startup.py [--old-rev bee06ab] [--new-rev REV] [--runs 11]

The registry is small (as bench_registry.py and bench_channels.py build it: versions and
one promotion each on production, no remote), copied once per tree. Each rollback is a real
step back: git's clock (GIT_COMMITTER_DATE) moves an hour per round, past the 10-minute
window in which a rollback right after another is taken as a retry and does nothing.

Goal: the current tree within 10% of the old one on every command.
"""

from __future__ import annotations

import argparse
import compileall
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, isolated_env, machine, run, write_section
from bench_channels import add_events
from bench_registry import MODEL, build

REPO = Path(__file__).resolve().parent.parent
GOAL = 1.10
IMPORT_TOP = 12


def _tree(rev: str | None, work: Path, label: str) -> Path:
    """The source tree to put on PYTHONPATH: this checkout, or a worktree of ``rev``."""
    if rev is None:
        return REPO
    path = work / f"tree-{label}"
    subprocess.run(
        ["git", "worktree", "add", "-q", "--detach", str(path), rev], cwd=REPO, check=True
    )
    return path


def _short(rev: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _drop_tree(path: Path) -> None:
    if path != REPO:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, check=False)


def _compile(tree: Path) -> None:
    compileall.compile_dir(str(tree / "mvctl"), quiet=1)


def _check_resolves(tree: Path, env: dict[str, str]) -> None:
    where = run([BIN / "python", "-c", "import mvctl; print(mvctl.__file__)"], tree.parent, env)
    assert Path(where.strip()).resolve() == (tree / "mvctl" / "__init__.py").resolve(), where


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str | Path], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Wall time and CPU time (user + system, the command and its git children) of one run."""
    cpu, start = _children_cpu(), time.perf_counter()
    out = run(argv, cwd, env)
    return time.perf_counter() - start, _children_cpu() - cpu, out


def _imports(tree: Path, env: dict[str, str], cwd: Path) -> dict[str, tuple[int, float]]:
    """What `python -X importtime -m mvctl --help` imports: top-level package -> (modules,
    milliseconds of their own import time), the interpreter's start-up included."""
    proc = subprocess.run(
        [BIN / "python", "-X", "importtime", "-m", "mvctl", "--help"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    packages: dict[str, tuple[int, float]] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        root = name.strip().split(".")[0]
        count, ms = packages.get(root, (0, 0.0))
        packages[root] = (count + 1, ms + int(self_us) / 1000)
    return packages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old-rev", default="bee06ab")
    parser.add_argument("--new-rev", default=None, help="default: this checkout as it is")
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    versions = args.runs + 5  # each timed rollback (and the warm-up) steps one version back
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-startup-"))
    trees: dict[str, Path] = {}
    try:
        env = isolated_env(work / "home")
        trees = {
            "old": _tree(args.old_rev, work, "old"),
            "new": _tree(args.new_rev, work, "new"),
        }
        template = work / "registry"
        build(template, env, versions)
        add_events(template, env, versions)
        envs, repos = {}, {}
        for label, tree in trees.items():
            _compile(tree)
            envs[label] = {**env, "PYTHONPATH": str(tree)}
            _check_resolves(tree, envs[label])
            repos[label] = work / f"registry-{label}"
            shutil.copytree(template, repos[label], symlinks=True)

        cases: dict[str, list[str | Path]] = {
            "mvctl --help": [BIN / "mvctl", "--help"],
            f"mvctl list {MODEL} --json": [BIN / "mvctl", "list", MODEL, "--json"],
            f"mvctl rollback {MODEL}": [
                BIN / "mvctl",
                *("rollback", MODEL, "--reason", "bench", "--json"),
            ],
        }
        times: dict[str, dict[str, list[float]]] = {name: {"old": [], "new": []} for name in cases}
        cpu: dict[str, dict[str, list[float]]] = {name: {"old": [], "new": []} for name in cases}
        for i in range(args.runs + 1):  # round 0 is the warm-up
            order = ["old", "new"] if i % 2 else ["new", "old"]  # ABBA across rounds
            for tree in trees.values():
                _compile(tree)  # a tree edited meanwhile must not recompile on every run
            clock = {"GIT_COMMITTER_DATE": f"2026-03-{1 + i // 24:02d}T{i % 24:02d}:00:00+00:00"}
            for name, argv in cases.items():
                for label in order:
                    seconds, cpu_seconds, out = _timed(argv, repos[label], {**envs[label], **clock})
                    if name.startswith("mvctl rollback"):
                        assert '"changed":true' in out.replace(" ", ""), out
                    if i:
                        times[name][label].append(seconds)
                        cpu[name][label].append(cpu_seconds)
        imports = {label: _imports(trees[label], envs[label], repos[label]) for label in trees}
    finally:
        for tree in trees.values():
            _drop_tree(tree)
        shutil.rmtree(work, ignore_errors=True)

    old_name = f"`{_short(args.old_rev)}`"
    new_name = f"`{_short(args.new_rev)}`" if args.new_rev else "this checkout"
    command = f"python benchmarks/bench_startup.py --old-rev {args.old_rev} --runs {args.runs}"
    if args.new_rev:
        command += f" --new-rev {args.new_rev}"
    rows = [
        f"| command | {old_name} wall (s) | {new_name} wall (s) | new / old"
        f" | {old_name} CPU (s) | {new_name} CPU (s) | new / old | goal (CPU) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in cases:
        old, new = (statistics.median(times[name][t]) for t in ("old", "new"))
        old_cpu, new_cpu = (statistics.median(cpu[name][t]) for t in ("old", "new"))
        ratio = new_cpu / old_cpu
        verdict = f"within {GOAL:.2f}x: {'ok' if ratio <= GOAL else 'OVER'}"
        rows.append(
            f"| `{name}` | {old:.3f} | {new:.3f} | {new / old:.2f}x | {old_cpu:.3f}"
            f" | {new_cpu:.3f} | {ratio:.2f}x | {verdict} |"
        )
    top = sorted(imports["new"].items(), key=lambda kv: -kv[1][1])[:IMPORT_TOP]
    import_rows = []
    for pkg, (count, ms) in top:
        old_count, old_ms = imports["old"].get(pkg, (0, 0.0))
        import_rows.append(f"| `{pkg}` | {old_count} | {old_ms:.1f} | {count} | {ms:.1f} |")
    totals = {
        label: (sum(c for c, _ in found.values()), sum(m for _, m in found.values()))
        for label, found in imports.items()
    }
    import_rows.append(
        f"| all | {totals['old'][0]} | {totals['old'][1]:.1f} | {totals['new'][0]} |"
        f" {totals['new'][1]:.1f} |"
    )
    body = "\n".join(
        [
            "## Start-up: before and after the domain-package layout",
            "",
            f"`{command}` on {machine()}; medians of {args.runs} runs per tree after one"
            " warm-up round, the trees alternating (AB, BA, ...), both with this virtualenv and"
            " compiled"
            f" bytecode. Registry: {versions} versions and {versions} production events, no"
            " remote; each rollback is a real step back (git's clock an hour later per round)."
            " CPU time (user + system of the command and its git subprocesses) is what the goal"
            " is judged on: other work on a shared machine moves it far less than wall time.",
            "",
            *rows,
            "",
            "What `python -X importtime -m mvctl --help` imports, by top-level package (the"
            f" {IMPORT_TOP} costliest now; milliseconds of the modules' own import time, one run):",
            "",
            f"| package | {old_name} modules | ms | {new_name} modules | ms |",
            "|---|---|---|---|---|",
            *import_rows,
        ]
    )
    write_section("startup", body)
    print(body)


if __name__ == "__main__":
    main()
