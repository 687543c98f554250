"""Train a small scikit-learn classifier on the bundled breast-cancer data.

Writes the weights with skops (a format `mvctl serve` loads without running code, unlike a
pickle), a CSV of the training data, metrics.json and reads params.yaml.

    python examples/train.py --out DIR [--c 1.0] [--max-iter 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path())
    args = parser.parse_args()
    out: Path = args.out
    params_path = out / "params.yaml"
    params = yaml.safe_load(params_path.read_text()) if params_path.exists() else {}
    c = float(params.get("train", {}).get("C", 1.0))
    max_iter = int(params.get("train", {}).get("max_iter", 200))

    bunch = load_breast_cancer()
    x, y = bunch.data, bunch.target
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    header = ",".join([*(n.replace(" ", "_") for n in bunch.feature_names), "target"])
    table = np.column_stack([x, y])
    np.savetxt(data_dir / "train.csv", table, delimiter=",", header=header, comments="", fmt="%.6g")

    # Fitted on named columns, so a server can take JSON records keyed by column name.
    frame = pd.DataFrame(x, columns=header.split(",")[:-1])
    x_train, x_test, y_train, y_test = train_test_split(frame, y, test_size=0.25, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
    model.fit(x_train, y_train)

    start = time.perf_counter()
    scores = model.predict_proba(x_test)[:, 1]
    latency_ms = (time.perf_counter() - start) * 1000 / len(x_test)
    metrics = {
        "auc": round(float(roc_auc_score(y_test, scores)), 6),
        "accuracy": round(float(accuracy_score(y_test, scores > 0.5)), 6),
        "latency_p95_ms": round(latency_ms, 6),
    }
    models_dir = out / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    skops.io.dump(model, models_dir / "cancer.skops")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"trained C={c}: auc={metrics['auc']} accuracy={metrics['accuracy']}")


if __name__ == "__main__":
    main()
