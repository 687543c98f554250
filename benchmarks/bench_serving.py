"""Serving host: no-change poll, cached rollback swap, a 100 MB fetch against `dvc get`, and a
fleet of 20 pollers converging after a rollback.

Builds a real registry (mvctl init/register/promote --push to a bare git remote and a
directory DVC remote), then times the host side as separate processes.

    python benchmarks/bench_serving.py [--runs 5] [--size-mb 100] [--hosts 20] [--interval 1]

Budgets (DESIGN.md): no-change poll under 0.15 s plus one `git ls-remote`; a fetch within
1.2x of `dvc get` for the same file; a rollback to a cached version under 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _common import BIN, isolated_env, machine, median_seconds, new_registry, run, write_section


def timed(args: list[str | Path], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    run(args, cwd, env)
    return time.perf_counter() - start


def serves(host: Path, version: str) -> bool:
    try:
        state = json.loads((host / "state.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(state.get("version") == version)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-serving-"))
    try:
        env = isolated_env(work / "home")
        origin, root, storage = work / "origin.git", work / "registry", work / "storage"
        new_registry(root, env, storage, origin)
        (root / "models").mkdir()
        weights = root / "models" / "model.bin"
        for i in (1, 2):
            with weights.open("wb") as handle:
                handle.write(os.urandom(args.size_mb * 1024 * 1024 - 1) + bytes([i]))
            run([BIN / "mvctl", "register", "big", "-w", "models/model.bin", "--push"], root, env)
        mvctl = BIN / "mvctl"
        run([mvctl, "promote", "big", "v0.1.0", "--to", "production", "--push"], root, env)

        # A fetch of the whole artifact: mvctl pull into a fresh host vs `dvc get`.
        def pull_fresh() -> float:
            host = work / "fresh-host"
            shutil.rmtree(host, ignore_errors=True)
            return timed([mvctl, "pull", origin, "big", "--dest", host], work, env)

        def dvc_get() -> float:
            out = work / "dvc-get"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            return timed(
                [
                    BIN / "dvc",
                    "get",
                    origin,
                    "models/model.bin",
                    "--rev",
                    "big@v0.1.0",
                    "-o",
                    out / "model.bin",
                ],
                work,
                env,
            )

        pull_fresh(), dvc_get()  # warm-up
        fetch = statistics.median(pull_fresh() for _ in range(args.runs))
        get = statistics.median(dvc_get() for _ in range(args.runs))

        host = work / "host"
        run([mvctl, "pull", origin, "big", "--dest", host], work, env)
        no_change = median_seconds(
            [mvctl, "pull", origin, "big", "--dest", host], work, env, args.runs
        )
        ls_remote = median_seconds(
            ["git", "ls-remote", "--", origin, "refs/tags/big@production"], work, env, args.runs
        )
        # Cached rollback: both versions kept; each run swaps to the other one.
        run([mvctl, "promote", "big", "v0.2.0", "--to", "production", "--push"], root, env)
        run([mvctl, "pull", origin, "big", "--dest", host], work, env)
        swaps = []
        for i in range(args.runs + 1):
            target = "v0.1.0" if i % 2 == 0 else "v0.2.0"
            run(
                [mvctl, "rollback", "big", "--to", target, "--reason", "bench", "--push"], root, env
            )
            swaps.append(timed([mvctl, "pull", origin, "big", "--dest", host], work, env))
            assert serves(host, target)
        cached = statistics.median(swaps[1:])
        current = json.loads((host / "state.json").read_text())["version"]

        # The fleet: N pollers, all serving `current`; roll back and time until all follow.
        hosts = [work / f"fleet{i}" for i in range(args.hosts)]
        for h in hosts:
            shutil.copytree(host, h, symlinks=True)
        procs = [
            subprocess.Popen(
                [
                    mvctl,
                    "pull",
                    origin,
                    "big",
                    "--dest",
                    h,
                    "--watch",
                    "--interval",
                    str(args.interval),
                ],
                cwd=work,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for h in hosts
        ]
        converge = []
        try:
            for i in range(3):
                target = "v0.2.0" if current == "v0.1.0" else "v0.1.0"
                run(
                    [mvctl, "rollback", "big", "--to", target, "--reason", "fleet", "--push"],
                    root,
                    env,
                )
                start = time.perf_counter()
                deadline = start + args.interval * 10 + 30
                while not all(serves(h, target) for h in hosts):
                    if time.perf_counter() > deadline:
                        raise SystemExit(f"fleet did not converge on {target} (round {i})")
                    time.sleep(0.02)
                converge.append(time.perf_counter() - start)
                current = target
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=60)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    overhead = no_change - ls_remote
    lines = [
        "| measurement | median (s) | compared with | budget |",
        "|---|---|---|---|",
        f"| poll, no change (`mvctl pull`) | {no_change:.3f} | `git ls-remote` alone:"
        f" {ls_remote:.3f} (mvctl's own share {overhead:.3f}) | < 0.15 s + ls-remote:"
        f" {'ok' if overhead < 0.15 else 'OVER'} |",
        f"| rollback to a cached version (`mvctl pull`) | {cached:.3f} | - |"
        f" < 0.2 s: {'ok' if cached < 0.2 else 'OVER'} |",
        f"| fetch {args.size_mb} MB into a fresh host (`mvctl pull`) | {fetch:.3f} |"
        f" `dvc get`: {get:.3f} ({fetch / get:.2f}x) | within 1.2x:"
        f" {'ok' if fetch <= 1.2 * get else 'OVER'} |",
        f"| {args.hosts} pollers (interval {args.interval} s) converge after a rollback |"
        f" {statistics.median(converge):.3f} (max {max(converge):.3f} of {len(converge)}) |"
        f" interval + a few s | {'ok' if max(converge) < args.interval + 5 else 'OVER'} |",
    ]
    body = "\n".join(
        [
            "## Serving host",
            "",
            f"`python benchmarks/bench_serving.py --runs {args.runs} --size-mb {args.size_mb}"
            f" --hosts {args.hosts} --interval {args.interval}` on {machine()}; medians of"
            f" {args.runs} runs; git remote is a bare repo and the DVC remote a directory on"
            " this machine. The fetch includes the verification of every byte (sha256).",
            "",
            *lines,
        ]
    )
    write_section("serving", body)
    print(body)


if __name__ == "__main__":
    main()
