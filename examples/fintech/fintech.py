"""Fraud detection: a holiday retrain that flags more legitimate customers, caught live.

A temporary registry (a git repo with a bare git remote and a directory DVC remote) and a
serving host directory; an imbalanced synthetic card-transaction set (`make_classification`,
3% fraud):

1. v1 is trained, its threshold set to flag 2% of legitimate customers (the analysts'
   review budget), registered and promoted to production; the host downloads it. A day of
   live traffic: the false-positive-rate monitor stays quiet.
2. v2, the "holiday" retrain (labelled season=holiday), is tuned on holiday-season traffic,
   where it also flags 2%: it passes the gates and is promoted; the host swaps to it.
3. Back to ordinary traffic: v2 flags about 15% more legitimate customers. One poll of
   `mvctl monitor --rollback` measures it on the labelled predictions, trips and rolls
   production back to v1; the host swaps back from its own disk.
4. The history shows the automatic rollback and its reason.

    python examples/fintech/fintech.py [--keep]     (mvctl on PATH: `make fintech` does it)

Every claim printed is checked first; a step that does not do what it says exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

console = Console(highlight=False)
MODEL = "fraud"
FEATURES = [f"f{i}" for i in range(12)]
# Legitimate holiday shoppers spend a little differently: the holiday retrain learns it.
HOLIDAY_SHIFT = 0.012
GATES_AND_MONITORS = """\
models:
  fraud:
    columns: {label: is_fraud, prediction: pred}
    gates:
      production:
        - {metric: auc, min: 0.65}
        - {metric: false_positive_rate, max: 0.021}  # review budget
    monitors:
      production:
        # live labelled predictions: <= 5% above the served version
        - {metric: false_positive_rate, max_increase: 0.05, min_rows: 1000}
"""


class StepFailed(Exception):
    pass


def transactions() -> tuple[np.ndarray, np.ndarray]:
    """One pool of card transactions (3% fraud): train, validation and live slices."""
    x, y = make_classification(
        n_samples=140_000,
        n_features=len(FEATURES),
        n_informative=6,
        weights=[0.97, 0.03],
        flip_y=0.005,
        random_state=7,
    )
    return x, y


TRAIN, VALID, LIVE = slice(0, 20_000), slice(20_000, 40_000), slice(40_000, None)


class Story:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.repo = work / "registry"
        self.origin = work / "origin.git"
        self.host = work / "host"
        self.started = time.monotonic()
        self.x, self.y = transactions()
        self.thresholds: dict[str, float] = {}

    # -- narration -------------------------------------------------------------------
    def chapter(self, title: str, text: str) -> None:
        console.print()
        console.rule(f"[bold]{escape(title)}")
        if text:
            console.print(escape(text))

    def ok(self, text: str) -> None:
        console.print(f"[green]✓[/] {escape(text)}")

    def sh(self, *argv: str, expect: int = 0) -> str:
        console.print(f"[bold cyan]$ {escape(shlex.join(argv))}[/]")
        done = subprocess.run(
            argv, cwd=self.repo, capture_output=True, text=True, check=False, timeout=300
        )
        sys.stdout.write(done.stdout)
        if done.stderr.strip():
            sys.stdout.write(done.stderr)
        sys.stdout.flush()
        if done.returncode != expect:
            raise StepFailed(f"{shlex.join(argv)} exited {done.returncode}, expected {expect}")
        return done.stdout

    def json(self, *argv: str, expect: int = 0) -> Any:
        done = subprocess.run(
            [*argv, "--json"], cwd=self.repo, capture_output=True, text=True, check=False
        )
        if done.returncode != expect:
            raise StepFailed(f"{shlex.join(argv)} --json exited {done.returncode}: {done.stderr}")
        return json.loads(done.stdout)

    def git(self, *argv: str) -> None:
        subprocess.run(["git", *argv], cwd=self.repo, check=True, capture_output=True)

    def production(self) -> str:
        return str(self.json("mvctl", "show", f"{MODEL}@production")["version"])

    def pull(self) -> str:
        """One poll of the serving host (a real host runs `mvctl pull --watch`)."""
        argv = ["mvctl", "pull", str(self.origin), MODEL, "--channel", "production"]
        self.sh(*argv, "--dest", str(self.host))
        status = self.json("mvctl", "pull", "--status", "--dest", str(self.host))
        return str(status["version"])

    # -- training --------------------------------------------------------------------
    def train(self, version: str, *, holiday: bool) -> dict[str, float]:
        x = self.x.copy()
        if holiday:
            x[self.y == 0, 0] += HOLIDAY_SHIFT
        model = LogisticRegression(max_iter=1000).fit(x[TRAIN], self.y[TRAIN])
        scores = model.predict_proba(x[VALID])[:, 1]
        legit = self.y[VALID] == 0
        # Flag 2% of legitimate customers on the validation window it was trained for.
        threshold = float(np.quantile(scores[legit], 0.98))
        self.thresholds[version] = threshold
        flagged = scores > threshold
        metrics = {
            "auc": round(float(roc_auc_score(self.y[VALID], scores)), 4),
            "false_positive_rate": round(float(flagged[legit].mean()), 4),
            "recall": round(float(flagged[~legit].mean()), 4),
        }
        (self.repo / "models").mkdir(exist_ok=True)
        skops.io.dump(model, self.repo / "models" / f"{MODEL}.skops")
        (self.repo / "data").mkdir(exist_ok=True)
        frame = pd.DataFrame(x[TRAIN], columns=FEATURES).assign(is_fraud=self.y[TRAIN])
        frame.to_csv(self.repo / "data" / "train.csv", index=False)
        (self.repo / "metrics.json").write_text(json.dumps(metrics) + "\n")
        season = "holiday" if holiday else "regular"
        params = f"train:\n  season: {season}\n  threshold: {threshold:.6f}\n"
        (self.repo / "params.yaml").write_text(params)
        self.git("add", "params.yaml")
        self.git("commit", "-q", "-m", f"Train {version} on {season} traffic")
        console.print(
            f"[bold cyan]$ python train.py --season {season}[/]  auc {metrics['auc']}, "
            f"false_positive_rate {metrics['false_positive_rate']}, recall {metrics['recall']}"
        )
        return metrics

    def register(self, version: str, label: str) -> None:
        self.sh(
            "mvctl", "register", MODEL,
            "--weights", f"models/{MODEL}.skops",
            "--data", "data/train.csv",
            "--metrics", "metrics.json",
            "--params", "params.yaml",
            "--label", label,
            "--version", version,
        )  # fmt: skip

    def live_day(self, name: str) -> float:
        """A day of ordinary traffic scored by the model the host serves, labelled later
        (chargebacks): the predictions file the monitor reads. Returns its FPR."""
        current = self.host / "current"
        weights = next(p for p in current.rglob("*.skops"))
        model = skops.io.load(weights, trusted=skops.io.get_untrusted_types(file=weights))
        served = self.json("mvctl", "pull", "--status", "--dest", str(self.host))
        threshold = self.thresholds[str(served["version"])]  # from the served version's params
        pred = (model.predict_proba(self.x[LIVE])[:, 1] > threshold).astype(int)
        frame = pd.DataFrame({"is_fraud": self.y[LIVE], "pred": pred})
        frame.to_csv(self.repo / name, index=False)
        legit = frame["is_fraud"] == 0
        fpr = float(frame.loc[legit, "pred"].mean())
        console.print(
            f"[bold cyan]$ export-labelled-predictions > {escape(name)}[/]  "
            f"{len(frame)} transactions, {int(legit.sum())} legitimate, "
            f"false-positive rate {fpr:.4f}"
        )
        return fpr

    # -- the story -------------------------------------------------------------------
    def run(self) -> None:
        self.setup()
        v1_fpr = self.first_release()
        self.holiday_release()
        self.monitor_rolls_back(v1_fpr)
        self.the_record()
        self.next_holiday()
        elapsed = time.monotonic() - self.started
        console.print()
        console.print(
            Panel(
                "v1 promoted; the holiday retrain v2 passed its gates and was promoted; on "
                "ordinary traffic it flagged about 15% more legitimate customers, and one "
                "monitor poll rolled production back to v1; the host swapped back without a "
                "download. Next holiday season the holiday model is picked by its label, and "
                f"the regular one after. Every step checked. ({elapsed:.0f} s)",
                title="fintech finished",
                border_style="green",
            )
        )

    def setup(self) -> None:
        self.chapter(
            "0. A registry",
            "A git repo with a bare git remote, a directory DVC remote and a serving host "
            "directory, in " + str(self.work) + ".",
        )
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)], check=True)
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", str(self.origin))
        (self.repo / ".gitignore").write_text("metrics.json\nlive-*.csv\n")
        self.git("add", ".gitignore")
        self.git("commit", "-q", "-m", "Training code")
        self.sh("mvctl", "init", "--storage", str(self.work / "dvc-storage"))
        config = (self.repo / "mvctl.yaml").read_text()
        if "models: {}" not in config:
            raise StepFailed("mvctl init wrote an mvctl.yaml without 'models: {}'")
        (self.repo / "mvctl.yaml").write_text(config.replace("models: {}\n", GATES_AND_MONITORS))
        self.git("commit", "-q", "-am", "Gates and a live false-positive-rate monitor")
        console.print("[bold cyan]$ cat mvctl.yaml[/]  [dim](the part this story adds)[/]")
        console.print(escape(GATES_AND_MONITORS), end="")
        self.git("push", "-q", "origin", "main")

    def first_release(self) -> float:
        self.chapter("1. v1: trained, registered, promoted, served; a quiet day", "")
        self.train("v1.0.0", holiday=False)
        self.register("v1.0.0", "season=regular")
        self.sh("mvctl", "promote", MODEL, "v1.0.0", "--to", "production", "--reason", "first")
        if self.pull() != "v1.0.0":
            raise StepFailed("the host does not serve v1.0.0")
        self.ok("the host downloaded v1.0.0, verified it and serves it")
        fpr = self.live_day("live-day1.csv")
        self.sh("mvctl", "monitor", MODEL, "--predictions", "live-day1.csv", "--rollback")
        if self.production() != "v1.0.0":
            raise StepFailed("a quiet monitor poll moved production")
        self.ok("the monitor is quiet on v1's own traffic (exit 0): nothing moved")
        return fpr

    def holiday_release(self) -> None:
        self.chapter(
            "2. v2: the holiday retrain",
            "Retrained on holiday-season traffic and tuned there to flag 2% of legitimate "
            "customers, like v1: its gates pass and it is promoted.",
        )
        self.train("v2.0.0", holiday=True)
        self.register("v2.0.0", "season=holiday")
        self.sh(
            "mvctl", "promote", MODEL, "v2.0.0", "--to", "production",
            "--reason", "holiday season retrain",
        )  # fmt: skip
        if self.pull() != "v2.0.0":
            raise StepFailed("the host does not serve v2.0.0")
        self.ok("the host serves v2.0.0 (and keeps v1.0.0 on disk)")

    def monitor_rolls_back(self, v1_fpr: float) -> None:
        self.chapter(
            "3. Ordinary traffic again: one monitor poll rolls production back",
            "The holiday is over. Yesterday's predictions, labelled by chargebacks: the "
            "monitor measures the false-positive rate on them and holds its 95% lower "
            "bound to 5% above what v2 registered.",
        )
        fpr = self.live_day("live-day2.csv")
        rise = fpr / v1_fpr - 1
        if not 0.10 <= rise <= 0.25:
            raise StepFailed(f"v2's live false-positive rate is {rise:+.0%} against v1's")
        self.ok(f"v2 flags {rise:.0%} more legitimate customers than v1 did")
        self.sh("mvctl", "monitor", MODEL, "--predictions", "live-day2.csv", "--rollback", expect=1)
        if self.production() != "v1.0.0":
            raise StepFailed(f"production holds {self.production()} after the monitor")
        self.ok("one poll: breach found, production is v1.0.0 again on the remote")
        before = sorted(p.name for p in (self.host / "versions").iterdir())
        served = self.pull()
        after = sorted(p.name for p in (self.host / "versions").iterdir())
        if served != "v1.0.0" or before != after:
            raise StepFailed(f"the host serves {served}; kept {before} -> {after}")
        self.ok("the host swapped back to v1.0.0 from its own disk: nothing downloaded")

    def the_record(self) -> None:
        self.chapter("4. The record: every move, who and why", "")
        self.sh("mvctl", "list", MODEL)
        self.sh("mvctl", "history", MODEL, "--channel", "production")
        events = self.json("mvctl", "history", MODEL, "--channel", "production")["events"]
        last = events[-1] if events else {}
        if last.get("kind") != "rollback" or last.get("version") != "v1.0.0":
            raise StepFailed(f"the last production event is {last}")
        if "false_positive_rate" not in str(last.get("reason")):
            raise StepFailed(f"the rollback's reason does not name the metric: {last}")
        self.ok("history: the automatic rollback v2.0.0 -> v1.0.0, with the breach as reason")

    def next_holiday(self) -> None:
        self.chapter(
            "5. The next holiday season: switch by label, and back",
            "v2 is wrong for ordinary traffic but right for the holidays. The risk team "
            "vouches for it (gold), and production picks the newest gold version labelled "
            "season=holiday; after the season, the one labelled season=regular.",
        )
        self.sh(
            "mvctl", "mark-gold", MODEL, "v2.0.0",
            "--reason", "the holiday model: right for holiday traffic",
        )  # fmt: skip
        for season, version in (("holiday", "v2.0.0"), ("regular", "v1.0.0")):
            self.sh(
                "mvctl", "promote", MODEL, "--to", "production",
                "--select", f"label season={season}", "--reason", f"{season} season",
            )  # fmt: skip
            if self.production() != version:
                raise StepFailed(f"--select season={season} left production on {self.production()}")
            kept = sorted(p.name for p in (self.host / "versions").iterdir())
            served = self.pull()
            if served != version or kept != sorted(
                p.name for p in (self.host / "versions").iterdir()
            ):
                raise StepFailed(f"the host serves {served} after the {season} switch")
            self.ok(f"season={season}: production is {version}; the host swapped from its own disk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if shutil.which("mvctl") is None:
        sys.exit("mvctl is not on PATH: run `make fintech`, or activate the venv it made")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "mvctl fintech")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "fintech@example.com")
    work = Path(tempfile.mkdtemp(prefix="mvctl-fintech."))
    try:
        Story(work).run()
    except StepFailed as exc:
        console.print(f"[bold red]fintech failed:[/] {escape(str(exc))}")
        sys.exit(1)
    finally:
        if args.keep:
            console.print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
