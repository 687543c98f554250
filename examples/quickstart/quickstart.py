"""mvctl's safety net in under two minutes, on this machine, narrated.

A temporary registry (a git repo with a bare git remote and a directory DVC remote) and a
serving host directory; scikit-learn's bundled breast-cancer data:

1. v1 is trained, registered and promoted to production; the host downloads it.
2. v2 is trained on labels with a quarter of them flipped (a planted regression): the
   production gate refuses it.
3. v3 (stronger regularisation) beats v1: promoted, the host swaps to it.
4. A live batch drifts (a sensor recalibrated upstream): the monitor rolls production back
   to v1, and the host swaps back with no download.
5. Lineage, what changed between v1 and v3, and the channel's history.

    python examples/quickstart/quickstart.py [--keep]     (mvctl on PATH: `make demo` does it)

Every claim printed is checked first (an exit code, a `--json` field); a step that does not
do what it says stops the run with exit 1. Nothing is left behind unless --keep.
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
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

console = Console(highlight=False)
MODEL = "cancer"
GATES_AND_MONITORS = """\
models:
  cancer:
    gates:
      production:
        - {metric: auc, min: 0.95}          # an absolute floor
        - {metric: auc, max_drop: 0.01}     # no worse than the version it replaces
        - {metric: accuracy, min: 0.93}
    monitors:
      production:
        - {drift: psi, max: 0.25}           # worst column's population stability index
"""


class StepFailed(Exception):
    pass


class Story:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.repo = work / "registry"
        self.origin = work / "origin.git"
        self.host = work / "host"
        self.started = time.monotonic()

    # -- narration -------------------------------------------------------------------
    def chapter(self, title: str, text: str) -> None:
        console.print()
        console.rule(f"[bold]{escape(title)}")
        console.print(escape(text))

    def ok(self, text: str) -> None:
        console.print(f"[green]✓[/] {escape(text)}")

    def sh(self, *argv: str, expect: int = 0, quiet: bool = False) -> str:
        """Run a command as a user would, show it and its output; its exit code must be
        ``expect``. Returns what it printed on stdout."""
        console.print(f"[bold cyan]$ {escape(shlex.join(argv))}[/]")
        done = subprocess.run(
            argv, cwd=self.repo, capture_output=True, text=True, check=False, timeout=300
        )
        if not quiet:
            sys.stdout.write(done.stdout)
            sys.stdout.flush()
        if done.stderr.strip() and (done.returncode != 0 or not quiet):
            sys.stdout.write(done.stderr)
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
        shown = self.json("mvctl", "show", f"{MODEL}@production")
        return str(shown["version"])

    def served(self) -> str:
        status = self.json("mvctl", "pull", "--status", "--dest", str(self.host))
        return str(status["version"])

    def pull(self) -> dict[str, Any]:
        """One poll of the serving host (a real host runs `mvctl pull --watch`)."""
        argv = ["mvctl", "pull", str(self.origin), MODEL, "--channel", "production"]
        self.sh(*argv, "--dest", str(self.host))
        status = self.json("mvctl", "pull", "--status", "--dest", str(self.host))
        return dict(status)

    # -- training --------------------------------------------------------------------
    def train(self, version: str, *, c: float, label_noise: float = 0.0) -> dict[str, float]:
        """What a training script does: fit, write weights, data and metrics, commit."""
        bunch = load_breast_cancer()
        names = [n.replace(" ", "_") for n in bunch.feature_names]
        frame = pd.DataFrame(bunch.data, columns=names)
        x_train, x_test, y_train, y_test = train_test_split(
            frame, bunch.target, test_size=0.25, random_state=0
        )
        labels = np.array(y_train)
        if label_noise:
            flip = np.random.default_rng(0).random(len(labels)) < label_noise
            labels[flip] = 1 - labels[flip]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
        model.fit(x_train, labels)
        scores = model.predict_proba(x_test)[:, 1]
        metrics = {
            "auc": round(float(roc_auc_score(y_test, scores)), 4),
            "accuracy": round(float(accuracy_score(y_test, scores > 0.5)), 4),
        }
        (self.repo / "models").mkdir(exist_ok=True)
        skops.io.dump(model, self.repo / "models" / f"{MODEL}.skops")
        (self.repo / "data").mkdir(exist_ok=True)
        train = x_train.assign(target=y_train)
        train.to_csv(self.repo / "data" / "train.csv", index=False)
        (self.repo / "metrics.json").write_text(json.dumps(metrics) + "\n")
        params = f"train:\n  C: {c}\n  label_noise: {label_noise}\n"
        (self.repo / "params.yaml").write_text(params)
        self.git("add", "params.yaml")
        self.git("commit", "-q", "--allow-empty", "-m", f"Train {version}: C={c}")
        noise = f", {label_noise:.0%} of labels flipped" if label_noise else ""
        console.print(
            f"[bold cyan]$ python train.py[/]  [dim](C={c}{noise})[/]  "
            f"auc {metrics['auc']}, accuracy {metrics['accuracy']}"
        )
        return metrics

    def register(self, version: str) -> None:
        self.sh(
            "mvctl",
            "register",
            MODEL,
            "--weights",
            f"models/{MODEL}.skops",
            "--data",
            "data/train.csv",
            "--metrics",
            "metrics.json",
            "--params",
            "params.yaml",
            "--version",
            version,
        )

    # -- the story -------------------------------------------------------------------
    def run(self) -> None:
        self.setup()
        self.first_release()
        self.planted_regression()
        self.better_release()
        self.drift_rolls_back()
        self.the_record()
        elapsed = time.monotonic() - self.started
        console.print()
        console.print(
            Panel(
                "v1 promoted; v2 refused by its gate; v3 promoted; drift on live data rolled "
                "production back to v1 and the host swapped back without a download. "
                f"Every step checked. ({elapsed:.0f} s)",
                title="quickstart finished",
                border_style="green",
            )
        )

    def setup(self) -> None:
        self.chapter(
            "0. A registry",
            "A git repo with a bare git remote (what the fleet follows) and a directory DVC "
            "remote (where weights and data go), in " + str(self.work) + ".",
        )
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
            check=True,
        )
        self.repo.mkdir()
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", str(self.origin))
        (self.repo / ".gitignore").write_text("metrics.json\n")
        self.git("add", ".gitignore")
        self.git("commit", "-q", "-m", "Training code")
        self.sh("mvctl", "init", "--storage", str(self.work / "dvc-storage"))
        config = (self.repo / "mvctl.yaml").read_text()
        if "models: {}" not in config:
            raise StepFailed("mvctl init wrote an mvctl.yaml without 'models: {}'")
        (self.repo / "mvctl.yaml").write_text(config.replace("models: {}\n", GATES_AND_MONITORS))
        self.git("commit", "-q", "-am", "Production gates and a drift monitor for cancer")
        console.print("[bold cyan]$ cat mvctl.yaml[/]  [dim](the part this story adds)[/]")
        console.print(escape(GATES_AND_MONITORS), end="")
        self.git("push", "-q", "origin", "main")

    def first_release(self) -> None:
        self.chapter("1. v1: trained, registered, promoted, served", "")
        self.train("v1.0.0", c=1.0)
        self.register("v1.0.0")
        self.sh("mvctl", "promote", MODEL, "v1.0.0", "--to", "production", "--reason", "first")
        status = self.pull()
        if status["version"] != "v1.0.0":
            raise StepFailed(f"the host serves {status['version']}, not v1.0.0")
        self.ok("the host downloaded v1.0.0, verified it and serves it")

    def planted_regression(self) -> None:
        self.chapter(
            "2. v2: a planted regression",
            "The labelling pipeline flipped a quarter of the training labels. The model "
            "trains fine and registers fine; the production gate is what stops it.",
        )
        self.train("v2.0.0", c=1.0, label_noise=0.25)
        self.register("v2.0.0")
        self.sh("mvctl", "promote", MODEL, "v2.0.0", "--to", "production", expect=1)
        if self.production() != "v1.0.0":
            raise StepFailed("production moved although the gate refused v2.0.0")
        self.ok("refused (exit 1): production still holds v1.0.0")

    def better_release(self) -> None:
        self.chapter("3. v3: better than v1, promoted; the host swaps to it", "")
        self.train("v3.0.0", c=0.1)
        self.register("v3.0.0")
        self.sh("mvctl", "promote", MODEL, "v3.0.0", "--to", "production", "--reason", "auc up")
        status = self.pull()
        if status["version"] != "v3.0.0":
            raise StepFailed(f"the host serves {status['version']}, not v3.0.0")
        self.ok("the host serves v3.0.0 (and keeps v1.0.0 on disk for a rollback)")

    def drift_rolls_back(self) -> None:
        self.chapter(
            "4. Live data drifts: the monitor rolls production back",
            "A sensor was recalibrated upstream: mean_radius arrives 60% larger. The monitor "
            "compares the live batch with the profile stored with v3 at register time, and "
            "with --rollback it moves production back to the last good version itself.",
        )
        train = pd.read_csv(self.repo / "data" / "train.csv")
        drifted = train.sample(300, random_state=2).drop(columns="target")  # no labels yet
        drifted["mean_radius"] *= 1.6
        drifted.to_csv(self.repo / "live.csv", index=False)
        self.sh("mvctl", "monitor", MODEL, "--live", "live.csv", "--rollback", expect=1)
        if self.production() != "v1.0.0":
            raise StepFailed(f"production holds {self.production()} after the monitor")
        self.ok("production is v1.0.0 again, on the remote the hosts follow")
        before = sorted(p.name for p in (self.host / "versions").iterdir())
        status = self.pull()
        after = sorted(p.name for p in (self.host / "versions").iterdir())
        if status["version"] != "v1.0.0" or before != after:
            raise StepFailed(f"the host serves {status['version']}; kept {before} -> {after}")
        self.ok("the host swapped back to v1.0.0 from its own disk: nothing downloaded")

    def the_record(self) -> None:
        self.chapter("5. The record: lineage, what changed v1 -> v3, history", "")
        self.sh("mvctl", "lineage", MODEL)
        self.sh("mvctl", "diff", MODEL, "v1.0.0", "v3.0.0")
        history = self.sh("mvctl", "history", MODEL)
        if "rollback" not in history:
            raise StepFailed("history shows no rollback")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if shutil.which("mvctl") is None:
        sys.exit("mvctl is not on PATH: run `make demo`, or activate the venv it made")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    # A fresh machine may have no git identity: bring one without touching the user's.
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "mvctl quickstart")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "quickstart@example.com")
    work = Path(tempfile.mkdtemp(prefix="mvctl-quickstart."))
    try:
        Story(work).run()
    except StepFailed as exc:
        console.print(f"[bold red]quickstart failed:[/] {escape(str(exc))}")
        sys.exit(1)
    finally:
        if args.keep:
            console.print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
