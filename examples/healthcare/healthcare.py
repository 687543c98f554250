"""Medical imaging: a domain expert overrides the registry and picks the version to serve.

A temporary registry (a git repo with a bare git remote and a directory DVC remote) and a
serving host directory; scikit-learn's bundled digits stand in for scans:

1. v1.0.0 (per-image normalised pixels, an RBF SVM) is registered, promoted, served.
2. v1.1.0 (a lighter logistic regression for edge devices) passes the gates, is promoted.
3. v2.0.0 (per-pixel standardisation) scores best-but-one overall and passes the gates: it is
   promoted and the host swaps to it.
4. The clinic's older scanners produce low-contrast images (intensities scaled down, sensor
   noise added). A radiologist measures each version on them: v2.0.0 collapses; the default
   rollback target, v1.1.0, slips too; v1.0.0 holds. She rolls production back to the
   version she chose, `mvctl rollback imaging --to v1.0.0 --reason ...`, under her own name,
   although v2.0.0 passed every gate; the host swaps to v1.0.0.
5. The history shows her rollback, its actor and reason.

    python examples/healthcare/healthcare.py [--keep]   (mvctl on PATH: `make healthcare`)

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
from rich.table import Table
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler
from sklearn.svm import SVC

console = Console(highlight=False)
MODEL = "imaging"
EXPERT = {
    "GIT_COMMITTER_NAME": "Dr. Ada Okafor",
    "GIT_COMMITTER_EMAIL": "radiology@example.com",
    "GIT_AUTHOR_NAME": "Dr. Ada Okafor",
    "GIT_AUTHOR_EMAIL": "radiology@example.com",
}
GATES = """\
models:
  imaging:
    gates:
      production:
        - {metric: accuracy, min: 0.95}     # on the standard test set
"""


def candidates() -> dict[str, tuple[str, Any]]:
    return {
        "v1.0.0": ("normalised pixels, RBF SVM", make_pipeline(Normalizer(), SVC(C=10, gamma=5))),
        "v1.1.0": (
            "normalised pixels, logistic regression (edge devices)",
            make_pipeline(Normalizer(), LogisticRegression(max_iter=2000, C=100)),
        ),
        "v2.0.0": ("standardised pixels, RBF SVM", make_pipeline(StandardScaler(), SVC(C=10))),
    }


def older_equipment(images: np.ndarray) -> np.ndarray:
    """Low contrast: a third of the intensity range, plus sensor noise."""
    noise = np.random.default_rng(0).normal(0, 0.8, images.shape)
    return np.clip(images * 0.35 + noise, 0, 16)


class StepFailed(Exception):
    pass


class Story:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.repo = work / "registry"
        self.origin = work / "origin.git"
        self.host = work / "host"
        self.started = time.monotonic()
        self.models: dict[str, Any] = {}

    # -- narration -------------------------------------------------------------------
    def chapter(self, title: str, text: str) -> None:
        console.print()
        console.rule(f"[bold]{escape(title)}")
        if text:
            console.print(escape(text))

    def ok(self, text: str) -> None:
        console.print(f"[green]✓[/] {escape(text)}")

    def sh(self, *argv: str, expect: int = 0, env: dict[str, str] | None = None) -> str:
        console.print(f"[bold cyan]$ {escape(shlex.join(argv))}[/]")
        done = subprocess.run(
            argv,
            cwd=self.repo,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
            env={**os.environ, **(env or {})},
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
    def train(self, version: str) -> None:
        what, model = candidates()[version]
        model.fit(self.x_train, self.y_train)
        self.models[version] = model
        accuracy = round(float(model.score(self.x_test, self.y_test)), 4)
        (self.repo / "models").mkdir(exist_ok=True)
        skops.io.dump(model, self.repo / "models" / f"{MODEL}.skops")
        (self.repo / "data").mkdir(exist_ok=True)
        names = [f"px{i}" for i in range(self.x_train.shape[1])]
        frame = pd.DataFrame(self.x_train, columns=names).assign(label=self.y_train)
        frame.to_csv(self.repo / "data" / "train.csv", index=False)
        (self.repo / "metrics.json").write_text(json.dumps({"accuracy": accuracy}) + "\n")
        (self.repo / "params.yaml").write_text(f"train:\n  model: {what}\n")
        self.git("add", "params.yaml")
        self.git("commit", "-q", "-m", f"Train {version}: {what}")
        console.print(
            f"[bold cyan]$ python train.py[/]  [dim]({escape(what)})[/]  accuracy {accuracy}"
        )

    def release(self, version: str, reason: str) -> None:
        self.train(version)
        self.sh(
            "mvctl", "register", MODEL,
            "--weights", f"models/{MODEL}.skops",
            "--data", "data/train.csv",
            "--metrics", "metrics.json",
            "--params", "params.yaml",
            "--version", version,
        )  # fmt: skip
        self.sh("mvctl", "promote", MODEL, version, "--to", "production", "--reason", reason)
        if self.pull() != version:
            raise StepFailed(f"the host does not serve {version}")
        self.ok(f"{version} passed the gates and is served")

    # -- the story -------------------------------------------------------------------
    def run(self) -> None:
        digits = load_digits()
        self.x_train, self.x_test, self.y_train, self.y_test = train_test_split(
            digits.data, digits.target, test_size=0.3, random_state=0
        )
        self.setup()
        self.chapter("1-3. Three releases, each through the gates", "")
        self.release("v1.0.0", "first")
        self.release("v1.1.0", "lighter model for the edge devices")
        self.release("v2.0.0", "new preprocessing")
        self.expert_override()
        self.the_record()
        elapsed = time.monotonic() - self.started
        console.print()
        console.print(
            Panel(
                "v1.0.0, v1.1.0 and v2.0.0 all passed the gates; on low-contrast images from "
                "older equipment v2.0.0 failed, and the radiologist rolled production back to "
                "the version she chose, v1.0.0 (not the default v1.1.0); the host serves it "
                f"and the history records her reason. Every step checked. ({elapsed:.0f} s)",
                title="healthcare finished",
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
        (self.repo / ".gitignore").write_text("metrics.json\n")
        self.git("add", ".gitignore")
        self.git("commit", "-q", "-m", "Training code")
        self.sh("mvctl", "init", "--storage", str(self.work / "dvc-storage"))
        config = (self.repo / "mvctl.yaml").read_text()
        if "models: {}" not in config:
            raise StepFailed("mvctl init wrote an mvctl.yaml without 'models: {}'")
        (self.repo / "mvctl.yaml").write_text(config.replace("models: {}\n", GATES))
        self.git("commit", "-q", "-am", "A production gate for imaging")
        console.print("[bold cyan]$ cat mvctl.yaml[/]  [dim](the part this story adds)[/]")
        console.print(escape(GATES), end="")
        self.git("push", "-q", "origin", "main")

    def expert_override(self) -> None:
        self.chapter(
            "4. Older equipment: the radiologist picks the version",
            "Images from the clinic's older scanners have a third of the contrast and more "
            "noise. The radiologist measures each served version on them.",
        )
        low = older_equipment(self.x_test)
        table = Table("version", "standard test set", "older equipment")
        scores = {}
        for version, model in self.models.items():
            scores[version] = float(model.score(low, self.y_test))
            standard = float(model.score(self.x_test, self.y_test))
            table.add_row(version, f"{standard:.3f}", f"{scores[version]:.3f}")
        console.print(table)
        if not scores["v2.0.0"] < 0.5 < scores["v1.1.0"] < scores["v1.0.0"]:
            raise StepFailed(f"the low-contrast slice does not tell the story: {scores}")
        default = self.json(
            "mvctl", "rollback", MODEL, "--reason", "what would it pick?", "--dry-run"
        )
        console.print(f"[dim]a plain rollback would pick: {escape(str(default.get('version')))}[/]")
        if default.get("version") != "v1.1.0":
            raise StepFailed(f"a plain rollback would pick {default}")
        self.ok("v2.0.0 fails on old-scanner images; the default target v1.1.0 slips too")
        reason = (
            f"low-contrast scans from older equipment: v2.0.0 accuracy {scores['v2.0.0']:.2f}, "
            f"v1.0.0 {scores['v1.0.0']:.2f}"
        )
        self.sh("mvctl", "rollback", MODEL, "--to", "v1.0.0", "--reason", reason, env=EXPERT)
        if self.production() != "v1.0.0":
            raise StepFailed(f"production holds {self.production()}")
        if self.pull() != "v1.0.0":
            raise StepFailed("the host does not serve v1.0.0")
        self.ok("production is v1.0.0, the version she chose; the host serves it")

    def the_record(self) -> None:
        self.chapter("5. The record", "")
        self.sh("mvctl", "history", MODEL, "--channel", "production")
        last = self.json("mvctl", "history", MODEL, "--channel", "production")["events"][-1]
        if (
            last.get("kind") != "rollback"
            or last.get("version") != "v1.0.0"
            or last.get("previous") != "v2.0.0"
            or "Okafor" not in str(last.get("actor"))
            or "older equipment" not in str(last.get("reason"))
        ):
            raise StepFailed(f"the last production event is {last}")
        self.ok("history: Dr. Ada Okafor rolled v2.0.0 back to v1.0.0, with her reason")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if shutil.which("mvctl") is None:
        sys.exit("mvctl is not on PATH: run `make healthcare`, or activate the venv it made")
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    for role in ("AUTHOR", "COMMITTER"):
        os.environ.setdefault(f"GIT_{role}_NAME", "mvctl healthcare")
        os.environ.setdefault(f"GIT_{role}_EMAIL", "healthcare@example.com")
    work = Path(tempfile.mkdtemp(prefix="mvctl-healthcare."))
    try:
        Story(work).run()
    except StepFailed as exc:
        console.print(f"[bold red]healthcare failed:[/] {escape(str(exc))}")
        sys.exit(1)
    finally:
        if args.keep:
            console.print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
