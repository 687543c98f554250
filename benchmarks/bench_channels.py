"""Rollback at 10 and at 1000 versions/events: mvctl against `gto assign --force`.

Builds registries as bench_registry.py does (git fast-import, exactly what `register`
writes), then one promotion per version on production, written as `promote` writes them
(event MODEL#production#N + alias), so each registry has N versions and N events.

    python benchmarks/bench_channels.py [--sizes 10 1000] [--runs 5]

Budget (DESIGN.md): rollback/promote under 0.3 s at 1000 versions and 1000 events, flat in
history size.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _common import (
    BIN,
    fast_import,
    fast_import_data,
    isolated_env,
    machine,
    median_seconds,
    run,
    write_section,
)
from bench_registry import MODEL, build

from mvctl.formats import tags


def add_events(root: Path, env: dict[str, str], versions: int) -> None:
    """Promote v0.1.0, v0.2.0, ... in turn on production, as `mvctl promote` writes it (the
    alias names the channel's newest events, as a move writes it)."""
    commits = {
        line.split()[1].removeprefix("refs/tags/"): line.split()[0]
        for line in run(
            ["git", "for-each-ref", "--format=%(*objectname) %(refname)", f"refs/tags/{MODEL}@v*"],
            root,
            env,
        ).splitlines()
    }
    chunks = []
    previous = None
    for i in range(1, versions + 1):
        version = f"v0.{i}.0"
        event = tags.event_tag(MODEL, "production", i)
        body = {
            "kind": "promote",
            "model": MODEL,
            "channel": "production",
            "version": version,
            "previous": previous,
            "counter": i,
            "reason": "",
            "actor": "Bench <bench@example.com>",
            "time": f"2026-02-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "gates": [],
            "request": None,
        }
        message = tags.format_message(f"Promote {MODEL} {version} to production", body)
        stamp = 1769904000 + i
        commit = commits[tags.version_tag(MODEL, version)]
        chunks.append(_tag(event, commit, stamp, message))
        previous = version
    alias_body = tags.AliasBody(
        MODEL,
        "production",
        str(previous),
        event=tags.event_tag(MODEL, "production", versions),
        counter=versions,
        chain=tuple(
            tags.event_tag(MODEL, "production", n)
            for n in range(max(1, versions - tags.CHAIN_LENGTH + 1), versions + 1)
        ),
        next=versions + 1,
        channels=("production",),
    ).to_dict()
    alias = tags.alias_tag(MODEL, "production")
    chunks.append(
        _tag(
            alias,
            commits[tags.version_tag(MODEL, str(previous))],
            1769904000 + versions,
            tags.format_message(f"{alias} -> {previous}", alias_body),
        )
    )
    fast_import(root, env, chunks)


def _tag(name: str, commit: str, stamp: int, message: str) -> str:
    return (
        f"tag {name}\nfrom {commit}\ntagger Bench <bench@example.com> {stamp} +0000\n"
        f"{fast_import_data(message)}\n"
    )


def published_copy(root: Path, base: Path, env: dict[str, str]) -> Path:
    """A copy of the registry whose tags and branch are on a bare ``origin``."""
    copy = base / "published"
    shutil.copytree(root, copy, symlinks=True)
    origin = base / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", origin], base, env)
    run(["git", "remote", "add", "origin", origin], copy, env)
    run(["git", "push", "-q", "origin", "main", "--tags"], copy, env)
    return copy


def median_rollbacks(root: Path, env: dict[str, str], runs: int, *extra: str) -> float:
    """Median wall time of plain rollbacks, each a real step back: git's clock (which mvctl
    reads for event times) moves an hour per run, past the window in which a rollback right
    after another is taken as a retry of it and does nothing."""
    times = []
    for i in range(runs + 1):  # the first is the warm-up
        stamp = f"2026-03-01T{i:02d}:00:00+00:00"
        timed = {**env, "GIT_COMMITTER_DATE": stamp}
        start = time.perf_counter()
        argv = [BIN / "mvctl", "rollback", MODEL, "--reason", "bench", "--json", *extra]
        out = run(argv, root, timed)
        elapsed = time.perf_counter() - start
        assert '"changed":true' in out.replace(" ", ""), out
        if i:
            times.append(elapsed)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-channels-"))
    rows = []
    try:
        env = isolated_env(work / "home")
        for n in args.sizes:
            root = work / f"n{n}" / "registry"
            root.parent.mkdir()
            build(root, env, n)
            add_events(root, env, n)
            check = run([BIN / "mvctl", "check", "--json"], root, env)
            assert '"ok": true' in check or '"ok":true' in check, check
            gto_root = work / f"n{n}" / "gto"
            shutil.copytree(root, gto_root, symlinks=True)
            published = published_copy(root, work / f"n{n}", env)
            # Each timed rollback moves production one gold version further back.
            mvctl_rollback = median_rollbacks(root, env, args.runs, "--local")
            # The same, publishing to a bare remote on this machine (the default with one):
            # a fetch of the model's tags before deciding, an atomic leased push after.
            published_rollback = median_rollbacks(published, env, args.runs)
            history = median_seconds(
                [BIN / "mvctl", "history", MODEL, "--json"], root, env, args.runs
            )
            promote = median_seconds(
                [BIN / "mvctl", "promote", MODEL, f"v0.{n}.0", "--to", "staging", "--local"],
                root,
                env,
                args.runs,
            )
            target = f"v0.{max(n - 1, 1)}.0"
            gto = median_seconds(
                [
                    BIN / "gto",
                    "assign",
                    MODEL,
                    "--version",
                    target,
                    "--stage",
                    "production",
                    "--force",
                ],
                gto_root,
                env,
                args.runs,
            )
            check = run([BIN / "mvctl", "check", "--json"], root, env)
            assert '"ok":true' in check.replace(" ", ""), check
            checked = median_seconds([BIN / "mvctl", "check", "--json"], root, env, args.runs)
            rows.append((n, mvctl_rollback, published_rollback, promote, history, gto, checked))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [
        "| versions / events | `mvctl rollback --local` (s) | `mvctl rollback`, published (s)"
        " | `mvctl promote --local` (s) | `mvctl history --json` (s) | `mvctl check` (s) |"
        " `gto assign --force` (s) | rollback vs GTO |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n, rb, pub, pr, hi, gto, ch in rows:
        lines.append(
            f"| {n} / {n} | {rb:.3f} | {pub:.3f} | {pr:.3f} | {hi:.3f} | {ch:.3f} | {gto:.3f} |"
            f" {gto / rb:.1f}x faster |"
        )
    if len(rows) >= 2:
        within = max(r[1] for r in rows) < 0.3 and max(r[3] for r in rows) < 0.3
        lines += [
            "",
            f"Rollback at {rows[-1][0]} vs {rows[0][0]}: {rows[-1][1] / rows[0][1]:.2f}x"
            f" (flat is 1.0x); budget < 0.3 s (local moves): {'ok' if within else 'OVER'}."
            f" Publishing adds {rows[0][2] - rows[0][1]:.3f} s at {rows[0][0]} and"
            f" {rows[-1][2] - rows[-1][1]:.3f} s at {rows[-1][0]} (fetch + push to a bare"
            " repository on the same disk; a network remote adds its round trips).",
        ]
    body = "\n".join(
        [
            "## Rollback and promote vs history size",
            "",
            f"`python benchmarks/bench_channels.py --sizes {' '.join(map(str, args.sizes))}"
            f" --runs {args.runs}` on {machine()}; medians of {args.runs} runs after one"
            " warm-up. Each rollback picks its target (the last gold"
            " version) from the whole event history; promote runs the gates (two manifest"
            " reads).",
            "",
            *lines,
        ]
    )
    write_section("channels", body)
    print(body)


if __name__ == "__main__":
    main()
