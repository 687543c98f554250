"""Monitor on 1M live rows x 20 numeric columns against a stored reference profile.

Registers a model whose training data has 20 numeric columns (so `register` writes the
profile), serves it on production, then times `mvctl monitor` (PSI, KS with a Bonferroni
correction and the dataset-level share, over every column) on a live batch as Parquet and
as CSV; also reports the profile's size.

    python benchmarks/bench_monitor.py [--rows 1000000] [--columns 20] [--runs 3]

Budget (DESIGN.md): under 3 s for 1M rows x 20 columns on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from _common import BIN, isolated_env, machine, median_seconds, new_registry, run, write_section

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  wide:
    monitors:
      production:
        - {drift: psi, max: 0.25}
        - {drift: ks, alpha: 0.05, correction: bonferroni}
        - {drift: dataset, max_share: 0.3}
"""


def frame(rows: int, columns: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            f"f{i:02d}": rng.normal(shift if i == 0 else 0.0, 1.0 + i / 10, rows)
            for i in range(columns)
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-monitor-"))
    try:
        env = isolated_env(work / "home")
        root = work / "registry"
        new_registry(root, env, work / "storage")
        (root / "mvctl.yaml").write_text(CONFIG)
        run(["git", "commit", "-q", "-am", "monitors"], root, env)
        frame(200_000, args.columns, 1).to_parquet(root / "train.parquet")
        (root / "model.bin").write_bytes(b"weights")
        run(
            [BIN / "mvctl", "register", "wide", "-w", "model.bin", "-d", "train.parquet"], root, env
        )
        run([BIN / "mvctl", "promote", "wide", "v0.1.0", "--to", "production"], root, env)
        profile_bytes = len((root / "registry/wide/profile.json").read_bytes())

        live = frame(args.rows, args.columns, 2, shift=0.5)
        parquet, csv = work / "live.parquet", work / "live.csv"
        live.to_parquet(parquet)
        live.to_csv(csv, index=False)
        out = json.loads(
            run(
                [BIN / "mvctl", "monitor", "wide", "--live", parquet, "--json"],
                root,
                env,
                check=False,
            )
        )
        assert out["breached"] and len(out["drift"]) == args.columns, out["results"]
        times = {}
        for name, path in (("Parquet", parquet), ("CSV", csv)):
            cmd = [BIN / "mvctl", "monitor", "wide", "--live", path, "--json"]
            times[name] = median_seconds(cmd, root, env, args.runs, check=False)
        sizes = {name: path.stat().st_size for name, path in (("Parquet", parquet), ("CSV", csv))}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        "| live batch | file size | `mvctl monitor` median (s) | budget |",
        "|---|---|---|---|",
    ]
    for name, seconds in times.items():
        verdict = "ok" if seconds < 3 else "OVER"
        rows.append(
            f"| {args.rows:,} rows x {args.columns} numeric, {name} | "
            f"{sizes[name] / 1e6:.0f} MB | {seconds:.2f} | < 3 s: {verdict} |"
        )
    body = "\n".join(
        [
            "## Monitor: drift on 1M rows",
            "",
            f"`python benchmarks/bench_monitor.py --rows {args.rows} --columns {args.columns}"
            f" --runs {args.runs}` on {machine()}; medians of {args.runs} runs after one"
            " warm-up, each a fresh `mvctl monitor` process (start-up, reading the batch with"
            " pyarrow, PSI + KS + dataset share over every column, JSON out).",
            "",
            *rows,
            "",
            f"Reference profile stored with the version: {profile_bytes / 1024:.1f} KiB for"
            f" {args.columns} columns (from 200,000 training rows; its size does not grow with"
            " the data).",
        ]
    )
    write_section("monitor", body)
    print(body)


if __name__ == "__main__":
    main()
