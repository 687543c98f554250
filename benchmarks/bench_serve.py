"""`mvctl serve` under load: a rollback (tag move -> pull -> hot swap) in the middle of a
steady stream of Open Inference Protocol requests from a standard load generator (hey).

Builds a real registry with two scikit-learn versions saved as .skops (the bundled
breast-cancer data), publishes them to a bare git remote and a directory DVC remote, pulls
production into a host directory with the real `mvctl pull`, and serves it with the real
`mvctl serve` (which follows the directory). Each round:

- steady: `hey -n N -c C -q Q` (C workers at Q requests/s each) with no swap;
- swap: the same load while production is rolled back and then promoted again, each move
  followed by `mvctl pull` on the host, so the server swaps twice during the run;
- shadow: the same load with no shadow, a shadow candidate that sleeps 1 s per call, and
  one that raises on every call (benchmarks/_shadow_loader.py, through `--loader`).

hey's CSV (one row per answered request: latency, status, offset) gives non-2xx counts,
requests that got no answer at all (N minus the rows), and the p99 inside the swap windows
(from the tag move to 2 s after the pull returned) against the steady run's p99.

Also: the server's overhead over calling the model in-process (one client, sequential
requests: median latency minus the median of `model.predict` on the same row).

    python benchmarks/bench_serve.py [--rounds 3] [--rate 60] [--workers 4] [--seconds 30]

Budgets (DESIGN.md, issue 12): zero failed requests across a swap at 200+ requests/s; p99
during the swap within 2x of steady state.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from _common import BIN, isolated_env, machine, new_registry, run, write_section

MODEL = "cancer"


def train(root: Path, c: float) -> list[float]:
    """Fit and save models/cancer.skops; return one test row."""
    import pandas as pd
    import skops.io
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bunch = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    frame = pd.DataFrame(bunch.data, columns=names)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    model.fit(frame, bunch.target)
    (root / "models").mkdir(exist_ok=True)
    skops.io.dump(model, root / "models" / f"{MODEL}.skops")
    return [float(v) for v in bunch.data[0]]


def in_process_us(weights: Path, row: list[float], runs: int = 2000) -> float:
    import warnings

    import numpy as np
    import skops.io

    warnings.simplefilter("ignore", UserWarning)  # rows without column names, as served
    model = skops.io.load(weights)
    x = np.asarray([row])
    for _ in range(50):
        model.predict(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.predict(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"server not ready at {url}")


def start_server(
    mvctl: str, host: Path, work: Path, env: dict[str, str], token_file: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (work / f"serve-{port}.log").open("wb")  # read by nobody: a pipe would fill, stall
    server = subprocess.Popen(
        [mvctl, "serve", str(host), "--port", str(port), "--token-file", str(token_file),
         "--decision-log", str(work / "decisions.jsonl"), *extra],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v2/health/ready")
    return server, base


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def served(base: str, token: str) -> dict[str, str]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{base}/v2/models/{MODEL}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - loopback
        channels: dict[str, str] = json.load(resp)["parameters"]["channels"]
    return channels


def wait_serving(base: str, token: str, want: dict[str, str]) -> None:
    """Until the server's own metadata says it serves ``want`` (it follows DIR by itself)."""
    deadline = time.monotonic() + 30
    while served(base, token) != want:
        if time.monotonic() > deadline:
            raise SystemExit(f"server never served {want}: {served(base, token)}")
        time.sleep(0.1)


def decisions_since(path: Path, offset: int) -> list[dict[str, object]]:
    with path.open("rb") as handle:
        handle.seek(offset)
        return [json.loads(line) for line in handle if line.strip()]


def hey(
    url: str, body: Path, token: str, n: int, workers: int, rate: float, env: dict[str, str]
) -> tuple[list[tuple[float, int, float]], float]:
    """Rows of (latency s, status, offset s) and the wall time at which hey started."""
    argv = [
        "hey", "-n", str(n), "-c", str(workers), "-q", str(rate), "-m", "POST",
        "-T", "application/json", "-H", f"Authorization: Bearer {token}",
        "-D", str(body), "-o", "csv", url,
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    rows = [
        (float(r["response-time"]), int(r["status-code"]), float(r["offset"]))
        for r in csv.DictReader(io.StringIO(proc.stdout))
    ]
    return rows, started


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=60.0, help="requests/s per worker")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed (apt-get install hey)")
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-serve-"))
    server: subprocess.Popen[bytes] | None = None
    try:
        env = isolated_env(work / "home")
        origin, root, storage, host = (
            work / "origin.git", work / "registry", work / "storage", work / "host"
        )  # fmt: skip
        new_registry(root, env, storage, origin)
        mvctl = str(BIN / "mvctl")
        row = train(root, 1.0)
        run([mvctl, "register", MODEL, "-w", f"models/{MODEL}.skops"], root, env)
        train(root, 0.05)
        run([mvctl, "register", MODEL, "-w", f"models/{MODEL}.skops"], root, env)
        for version in ("v0.1.0", "v0.2.0"):
            run([mvctl, "promote", MODEL, version, "--to", "production"], root, env)
            run([mvctl, "pull", str(origin), MODEL, "--dest", str(host)], root, env)
        weights = host / "current" / f"{MODEL}.skops"
        baseline_us = in_process_us(weights, row)

        token = secrets.token_hex(16)
        token_file = work / "token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        server, base = start_server(mvctl, host, work, env, token_file)
        body = work / "infer.json"
        body.write_text(
            json.dumps(
                {"inputs": [{"name": "x", "shape": [1, len(row)], "datatype": "FP64", "data": row}]}
            )
        )
        url = f"{base}/v2/models/{MODEL}/infer"

        sequential, _ = hey(url, body, token, 2000, 1, 0, env)
        http_us = statistics.median(r[0] for r in sequential) * 1e6

        n = int(args.seconds * args.rate * args.workers)
        rounds = []
        shadow_rows: list[tuple[str, float, int, int, int]] = []
        for _ in range(args.rounds):
            steady, _ = hey(url, body, token, n, args.workers, args.rate, env)
            windows: list[tuple[float, float]] = []

            def swaps(started_at: list[float], windows: list[tuple[float, float]]) -> None:
                # Two moves, each a third of the way in: the tag move, then the host's pull.
                for moves in (
                    [mvctl, "rollback", MODEL, "--reason", "bench: swap under load"],
                    [mvctl, "promote", MODEL, "v0.2.0", "--to", "production"],
                ):
                    time.sleep(args.seconds / 3)
                    t0 = time.monotonic() - started_at[0]
                    run(moves, root, env)
                    run([mvctl, "pull", str(origin), MODEL, "--dest", str(host)], root, env)
                    windows.append((t0, time.monotonic() - started_at[0] + 2.0))

            decisions = work / "decisions.jsonl"
            offset = decisions.stat().st_size
            started_at = [time.monotonic()]
            mover = threading.Thread(target=swaps, args=(started_at, windows))
            mover.start()
            swapping, started = hey(url, body, token, n, args.workers, args.rate, env)
            mover.join()
            with decisions.open("rb") as handle:  # which versions answered this run, in order
                handle.seek(offset)
                answered = [json.loads(line)["version"] for line in handle if line.strip()]
            switches = sum(1 for a, b in itertools.pairwise(answered) if a != b)
            shift = started - started_at[0]  # hey's offsets start when hey did
            in_window = [
                lat
                for lat, _, offset in swapping
                if any(a <= offset + shift <= b for a, b in windows)
            ]
            duration = max(r[2] for r in swapping) or 1.0
            rounds.append(
                {
                    "rps": len(swapping) / duration,
                    "unanswered": n - len(swapping),
                    "non_2xx": sum(1 for _, status, _ in swapping if not 200 <= status < 300),
                    "steady_p99_ms": p99([r[0] for r in steady]) * 1000,
                    "swap_p99_ms": p99(in_window) * 1000 if in_window else float("nan"),
                    "in_window": len(in_window),
                    "versions": " -> ".join(dict.fromkeys(answered)) if answered else "-",
                    "switches": switches,
                    "steady_non_2xx": sum(1 for _, s, _ in steady if not 200 <= s < 300)
                    + n
                    - len(steady),
                }
            )

        # Shadow: a second server (a loader that knows the misbehaving candidates), production
        # alone, then a shadow that sleeps 1 s per call, then one that raises on every call.
        stop_server(server)
        env_shadow = {**env, "PYTHONPATH": str(Path(__file__).parent)}
        server, base = start_server(
            mvctl, host, work, env_shadow, token_file, "--loader", "_shadow_loader:load"
        )
        url = f"{base}/v2/models/{MODEL}/infer"
        production = served(base, token)["production"]
        candidates = [("no shadow", None, None), ("sleeps 1 s", "slow.sleep", "1.0")]
        candidates.append(("raises", "boom.raise", "x"))
        for label, name, content in candidates:
            want = {"production": production}
            if name is not None and content is not None:
                (root / "models" / name).write_text(content)
                tag = json.loads(
                    run([mvctl, "register", MODEL, "-w", f"models/{name}", "--json"], root, env)
                )["tag"]
                version = tag.partition("@")[2]
                run([mvctl, "promote", MODEL, version, "--to", "shadow"], root, env)
                want["shadow"] = version
            run(
                [mvctl, "pull", str(origin), MODEL, "--channel", "production",
                 "--channel", "shadow", "--dest", str(host)],
                root, env,
            )  # fmt: skip
            wait_serving(base, token, want)
            p99s, leaked, non_2xx, shadowed = [], 0, 0, 0
            for _ in range(args.rounds):
                offset = (work / "decisions.jsonl").stat().st_size
                rows, _ = hey(url, body, token, n, args.workers, args.rate, env)
                p99s.append(p99([r[0] for r in rows]) * 1000)
                non_2xx += n - len(rows) + sum(1 for _, st, _ in rows if not 200 <= st < 300)
                lines_ = decisions_since(work / "decisions.jsonl", offset)
                leaked += sum(
                    1 for d in lines_ if d.get("role") != "shadow" and d["version"] != production
                )
                shadowed += sum(1 for d in lines_ if d.get("role") == "shadow")
            shadow_rows.append((label, statistics.median(p99s), non_2xx, leaked, shadowed))
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(work, ignore_errors=True)

    failed = sum(r["unanswered"] + r["non_2xx"] for r in rounds)
    ratio = statistics.median(r["swap_p99_ms"] / r["steady_p99_ms"] for r in rounds)
    lines = [
        "## `mvctl serve`: a rollback under load",
        "",
        f"`python benchmarks/bench_serve.py --rounds {args.rounds} --rate {args.rate:g} "
        f"--workers {args.workers} --seconds {args.seconds:g}` on {machine()}. Load: "
        f"`hey -n {int(args.seconds * args.rate * args.workers)} -c {args.workers} "
        f"-q {args.rate:g}` of OIP v2 `infer` requests (one row of 30 features) on loopback "
        "against `mvctl serve` following its host directory; in each swap run production "
        "is rolled back and promoted again, each move followed by `mvctl pull` (two swaps per "
        "run). The swap window runs from the tag move to 2 s after the pull returned. "
        f"Load average when it started: {load:.1f} (other work on the machine adds noise to "
        "every p99 here, the steady runs' too).",
        "",
        "| round | requests/s | non-2xx | unanswered | steady p99 (ms) "
        "| p99 in swap windows (ms) | requests in windows | ratio | answering version changed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rounds, 1):
        lines.append(
            f"| {i} | {r['rps']:.0f} | {r['non_2xx']} | {r['unanswered']} "
            f"| {r['steady_p99_ms']:.2f} | {r['swap_p99_ms']:.2f} | {r['in_window']} "
            f"| {r['swap_p99_ms'] / r['steady_p99_ms']:.2f}x | {r['switches']} times |"
        )
    min_rps = min(r["rps"] for r in rounds)
    lines += [
        "",
        f"Zero failed requests across a swap at 200+ requests/s: "
        f"{'ok' if failed == 0 and min_rps >= 200 else 'NOT MET'} ({failed} failed, "
        f"slowest round {min_rps:.0f} requests/s). p99 during the swap within 2x of steady "
        f"state: {'ok' if ratio <= 2 else 'NOT MET'} (median ratio {ratio:.2f}x).",
        "",
        "Server overhead over calling the model in-process (one client, 2,000 sequential "
        "requests): median request "
        f"{http_us:.0f} µs against `model.predict` on the same row {baseline_us:.0f} µs: "
        f"{http_us - baseline_us:.0f} µs for HTTP, JSON, routing and the decision log.",
    ]
    base_p99 = shadow_rows[0][1]
    lines += [
        "",
        f"A misbehaving shadow (a second server with `--loader`, production {production} and a "
        f"shadow candidate; same load, medians of {args.rounds} runs): the callers' p99, "
        "requests answered by anything but production, and shadow copies logged.",
        "",
        "| shadow | callers' p99 (ms) | change (ms) | failed | answered by the shadow "
        "| shadow copies logged |",
        "|---|---|---|---|---|---|",
    ]
    for label, value, failed_, leaked_, shadowed_ in shadow_rows:
        lines.append(
            f"| {label} | {value:.2f} | {value - base_p99:+.2f} | {failed_} | {leaked_} "
            f"| {shadowed_} |"
        )
    worst = max(abs(r[1] - base_p99) for r in shadow_rows)
    leaks = sum(r[3] + r[2] for r in shadow_rows)
    lines += [
        "",
        f"A shadow that raises or sleeps 1 s changes the callers' p99 by under 5 ms: "
        f"{'ok' if worst < 5 and leaks == 0 else 'NOT MET'} (at most {worst:.2f} ms; "
        f"{leaks} requests failed or answered by the shadow).",
    ]
    print("\n".join(lines))
    write_section("serve", "\n".join(lines))


if __name__ == "__main__":
    main()
