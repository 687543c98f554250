"""The fraud model and its callers for try.sh: scikit-learn and the standard library only.

    python fraud.py train --features N --out DIR   a classifier on N synthetic features:
                                                   DIR/fraud.skops and DIR/metrics.json
    python fraud.py traffic --url URL --token-file F --seconds S
                                                   about 20 requests/s of 30 features each;
                                                   a line every 5 s: who answered, what failed

Release v2 of the story is trained on 31 features (a feature the live callers do not send
yet): every live request it gets fails, which is what the error-rate alert is for.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import skops.io
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

LIVE_FEATURES = 30


def train(features: int, out: Path) -> None:
    x, y = make_classification(
        n_samples=4000, n_features=features, n_informative=8, weights=[0.97], random_state=7
    )
    x_train, x_test, y_train, y_test = train_test_split(x, y, random_state=7, stratify=y)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    out.mkdir(parents=True, exist_ok=True)
    skops.io.dump(model, out / "fraud.skops")
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    (out / "metrics.json").write_text(json.dumps({"auc": round(float(auc), 4)}) + "\n")


def _post(url: str, token: str, body: bytes) -> str:
    """The version that answered, or why the request failed."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, body, headers)  # noqa: S310 - loopback, checked
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return str(json.load(response)["model_version"])
    except urllib.error.HTTPError as exc:
        return f"failed ({exc.code})"
    except OSError as exc:
        return f"failed ({type(exc).__name__})"


def traffic(url: str, token_file: Path, seconds: float) -> None:
    if not url.startswith("http://127.0.0.1:"):
        sys.exit(f"{url}: this example's server is on loopback")
    token = token_file.read_text().strip()
    row = {"name": "x", "shape": [1, LIVE_FEATURES], "datatype": "FP64"}
    body = json.dumps({"inputs": [{**row, "data": [0.1] * LIVE_FEATURES}]}).encode()
    deadline, report = time.monotonic() + seconds, time.monotonic() + 5
    counts: collections.Counter[str] = collections.Counter()
    while time.monotonic() < deadline:
        counts[_post(url, token, body)] += 1
        if time.monotonic() >= report:
            print("traffic, last 5 s:", ", ".join(f"{k} x{n}" for k, n in sorted(counts.items())))
            sys.stdout.flush()
            counts.clear()
            report += 5
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    trainer = sub.add_parser("train")
    trainer.add_argument("--features", type=int, default=LIVE_FEATURES)
    trainer.add_argument("--out", type=Path, required=True)
    caller = sub.add_parser("traffic")
    caller.add_argument("--url", required=True)
    caller.add_argument("--token-file", type=Path, required=True)
    caller.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    if args.what == "train":
        train(args.features, args.out)
    else:
        traffic(args.url, args.token_file, args.seconds)


if __name__ == "__main__":
    main()
