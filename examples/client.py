"""A client of `mvctl serve`, standard library only: what a caller of the model sees.

    python examples/client.py infer            one Open Inference Protocol v2 request
    python examples/client.py share N [--expect VERSION=PERCENT]
                                               N requests with keys customer-0..N-1 through
                                               /predict: which version answered how many

The server is at $MVCTL_DEMO_URL, its token in the file $MVCTL_DEMO_TOKEN_FILE. With
--expect, `share` asks again (for up to 15 s) until VERSION answers PERCENT ± 5 of the keys:
the server swaps on its own a moment after `mvctl pull` has changed its directory.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from sklearn.datasets import load_breast_cancer


def call(path: str, body: Any, key: str | None = None) -> dict[str, Any]:
    token = Path(os.environ["MVCTL_DEMO_TOKEN_FILE"]).read_text().strip()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key is not None:
        headers["X-Request-Key"] = key
    url = os.environ["MVCTL_DEMO_URL"] + path
    if not url.startswith("http://127.0.0.1:"):
        sys.exit(f"{url}: the demo's server is on loopback")
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        answer: dict[str, Any] = json.load(response)
    return answer


def record() -> dict[str, float]:
    bunch = load_breast_cancer()
    names = [n.replace(" ", "_") for n in bunch.feature_names]
    return dict(zip(names, (float(v) for v in bunch.data[0]), strict=True))


def share(n: int, row: dict[str, float]) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for i in range(n):
        counts[call("/predict", [row], key=f"customer-{i}")["model_version"]] += 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", choices=["infer", "share"])
    parser.add_argument("n", type=int, nargs="?", default=1000)
    parser.add_argument("--expect", help="VERSION=PERCENT")
    args = parser.parse_args()
    row = record()
    if args.what == "infer":
        data = list(row.values())
        body = {
            "inputs": [{"name": "x", "shape": [1, len(data)], "datatype": "FP64", "data": data}]
        }
        print(json.dumps(call("/v2/models/cancer/infer", body)))
        return
    deadline = time.monotonic() + 15
    while True:
        counts = share(args.n, row)
        print(", ".join(f"{v}: {c} of {args.n} keys" for v, c in sorted(counts.items())))
        if not args.expect:
            return
        version, _, percent = args.expect.partition("=")
        if abs(100 * counts[version] / args.n - float(percent)) <= 5:
            return
        if time.monotonic() > deadline:
            sys.exit(f"{version} never answered {percent}% of the keys")
        time.sleep(0.5)  # the server follows its directory a few times a second


if __name__ == "__main__":
    main()
