"""End to end on a real registry: decision logs written by mvctl serve's own DecisionLog,
`mvctl canary analyze --apply` stepping the weight, promoting through production's gates,
stopping a bad canary or shadow, each event carrying its evidence; history shows it and GTO
still reads the registry."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mvctl._adapters.git import GitRepo
from mvctl.canary.apply import analyze_round
from mvctl.channels import state as channels
from mvctl.channels.promotion import promote
from mvctl.serving.decisions import DecisionLog
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    git_shim,
    mvctl,
    remote_holder,
    remote_tags,
    run,
)

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.90}
    canary:
      steps: [5, 25, 50]
      max_failed: 2
      alpha: 0.05
      min_samples: 200
      metrics:
        - {metric: false_positive_rate, primary: true}
        - {metric: error_rate}
        - {metric: latency_p99_ms, max: 50}
"""


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        Release(weights=b"one", auc=0.91, push=True, promote=("production",)),
        Release(weights=b"two", auc=0.93, push=True),
        Release(weights=b"three", auc=0.85, push=True),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


class Traffic:
    """Requests answered by production and a candidate, logged by mvctl serve's DecisionLog,
    with their outcomes (1: fraud) in a separate outcome file."""

    def __init__(self, root: Path, seed: int) -> None:
        self.log = root / "decisions.jsonl"
        self.outcomes = root / "outcomes.jsonl"
        self.rng = np.random.default_rng(seed)
        self.count = 0

    def serve(
        self,
        channel: str,
        version: str,
        n: int,
        *,
        fpr: float,
        errors: float = 0.0,
        latency_ms: float = 5.0,
        copies: list[tuple[str, int]] | None = None,
    ) -> list[tuple[str, int]]:
        """``n`` requests (or shadow ``copies`` of production's: same keys, same truth),
        their outcomes written once per key."""
        role = {"production": "primary"}.get(channel, channel)
        log = DecisionLog(self.log, model="fraud")
        used: list[tuple[str, int]] = []
        with self.outcomes.open("a") as out:
            for i in range(n):
                if copies:
                    key, fraud = copies[i]
                else:
                    key, fraud = f"k{self.count}", int(self.rng.random() < 0.1)
                    self.count += 1
                    out.write(json.dumps({"key": key, "outcome": fraud}) + "\n")
                used.append((key, fraud))
                if self.rng.random() < errors:
                    log.decision(
                        key=key,
                        channel=channel,
                        version=version,
                        latency_s=latency_ms / 1000,
                        role=role,
                        outputs=None,
                        error="RuntimeError: boom",
                    )
                    continue
                flagged = fraud or int(self.rng.random() < fpr)
                log.decision(
                    key=key,
                    channel=channel,
                    version=version,
                    latency_s=self.rng.gamma(4, latency_ms / 4) / 1000,
                    role=role,
                    outputs=[flagged],
                )
        log.close()
        return used

    def analyze(self, reg: Registry, *args: str) -> tuple[int, dict[str, Any]]:
        proc = mvctl(
            reg.root,
            *("canary", "analyze", "fraud", "--log", str(self.log)),
            *("--outcomes", str(self.outcomes), "--json", *args),
        )
        return proc.returncode, json.loads(proc.stdout)


def events(reg: Registry, channel: str) -> list[channels.Event]:
    return list(channels.load(GitRepo.open(reg.root), "fraud").channel_events(channel))


@pytest.mark.slow
def test_a_good_canary_walks_the_steps_and_is_promoted_with_its_evidence(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=1)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 250, fpr=0.10)

    code, report = traffic.analyze(reg)  # without --apply: a report, nothing moves
    assert code == 0 and report["verdict"] == "next_step" and report["next_weight"] == 25
    assert report["applied"] is None and events(reg, "canary")[-1].weight == 5
    by_name = {m["metric"]: m for m in report["metrics"]}
    assert by_name["false_positive_rate"]["primary"] is True
    assert by_name["latency_p50_ms"]["guarded"] is False  # reported, never deciding

    code, report = traffic.analyze(reg, "--apply")
    assert code == 0, report
    [move] = report["applied"]["moves"]
    assert move["kind"] == "weight" and move["weight"] == 25 and move["pushed"]
    step = events(reg, "canary")[-1]
    assert step.kind == "weight" and step.weight == 25 and step.previous_weight == 5
    assert step.evidence is not None and step.evidence["verdict"] == "next_step"
    assert step.reason.startswith("canary analysis: next step")

    # The step's requests count from the weight event on: nothing new yet, so it waits.
    code, report = traffic.analyze(reg, "--apply")
    assert report["verdict"] == "continue" and report["applied"]["moves"] == []
    traffic.serve("canary", "v0.2.0", 250, fpr=0.10)
    code, report = traffic.analyze(reg, "--apply")
    assert report["applied"]["moves"][0]["weight"] == 50

    # At the last step: equal false-positive rates are never promoted ...
    traffic.serve("canary", "v0.2.0", 1500, fpr=0.10)
    traffic.serve("production", "v0.1.0", 1500, fpr=0.10)
    code, report = traffic.analyze(reg, "--apply")
    assert report["verdict"] == "continue", report["reasons"]
    # ... a clearly better one is: through production's gates, then the canary is stopped.
    traffic.serve("canary", "v0.2.0", 3000, fpr=0.02)
    code, report = traffic.analyze(reg, "--apply")
    assert code == 0 and report["verdict"] == "promote", report
    promoted, stopped = report["applied"]["moves"]
    assert promoted["channel"] == "production" and promoted["version"] == "v0.2.0"
    assert stopped["kind"] == "stop" and stopped["channel"] == "canary"
    assert promoted["gates"]["passed"] is True and promoted["gates"]["gates"]
    production = events(reg, "production")[-1]
    assert production.version == "v0.2.0" and production.evidence is not None
    fpr = next(m for m in production.evidence["metrics"] if m["metric"] == "false_positive_rate")
    assert fpr["verdict"] == "better" and fpr["candidate"] < fpr["baseline"]

    proc = mvctl(reg.root, "history", "fraud", "--json")
    shown = json.loads(proc.stdout)["events"]
    decided = [e for e in shown if "evidence" in e]
    assert [e["kind"] for e in decided] == ["weight", "weight", "promote", "stop"]
    proc = mvctl(reg.root, "history", "fraud", "--channel", "canary")
    assert "canary analysis: next step" in proc.stdout

    # GTO still reads the registry: production is v0.2.0, the canary has no version.
    gto = json.loads(run("gto", "show", "fraud", "--json", cwd=reg.root).stdout)
    assert any(v["version"] == "v0.2.0" and "production" in str(v) for v in gto)
    history = run("gto", "history", "fraud", cwd=reg.root).stdout
    assert "v0.2.0" in history


def test_a_canary_with_more_errors_is_stopped_with_the_evidence(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=2)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.05)
    traffic.serve("canary", "v0.2.0", 400, fpr=0.05, errors=0.2)

    code, report = traffic.analyze(reg, "--dry-run", "--apply")
    assert code == 1 and report["verdict"] == "rollback"
    assert report["applied"]["moves"][0]["dry_run"] is True
    assert events(reg, "canary")[-1].kind == "promote"  # a dry run changed nothing

    code, report = traffic.analyze(reg, "--apply")
    assert code == 1 and "should be rolled back" in report["error"]
    [stopped] = report["applied"]["moves"]
    assert stopped["kind"] == "stop" and stopped["pushed"]
    last = events(reg, "canary")[-1]
    assert last.kind == "stop" and last.evidence is not None
    error_rate = next(m for m in last.evidence["metrics"] if m["metric"] == "error_rate")
    assert error_rate["verdict"] == "worse" and error_rate["p_worse"] <= 0.05
    assert "error_rate" in last.reason
    assert not run("git", "tag", "-l", "fraud@canary", cwd=reg.root).stdout.strip()


def test_a_slow_canary_fails_its_latency_threshold_twice_and_is_stopped(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=3)
    traffic.serve("production", "v0.1.0", 600, fpr=0.05, latency_ms=5)
    traffic.serve("canary", "v0.2.0", 200, fpr=0.05, latency_ms=80)
    round_one = analyze_round(reg.root, "fraud", [traffic.log], [traffic.outcomes])
    p99 = next(m for m in round_one.report.metrics if m.metric == "latency_p99_ms")
    assert p99.failed_checks == 1 and p99.windows == 1
    traffic.serve("canary", "v0.2.0", 200, fpr=0.05, latency_ms=80)
    found = analyze_round(reg.root, "fraud", [traffic.log], [traffic.outcomes], apply=True)
    assert found.report.verdict.kind == "rollback"
    assert any("latency_p99_ms" in r for r in found.report.verdict.reasons)
    assert found.applied is not None and found.applied.moves[0].kind == "stop"


def test_a_promotion_the_gates_refuse_is_refused(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.3.0", "canary", weight=50)
    traffic = Traffic(reg.root, seed=4)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.10)
    traffic.serve("canary", "v0.3.0", 3000, fpr=0.02)
    code, report = traffic.analyze(reg, "--apply")
    assert code == 1 and "failed the production gates" in report["error"]
    assert events(reg, "production")[-1].version == "v0.1.0"
    assert events(reg, "canary")[-1].kind == "promote"  # nothing was stopped either


@pytest.mark.slow
def test_a_shadow_that_only_agrees_is_never_promoted_a_better_one_is(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "shadow")
    traffic = Traffic(reg.root, seed=5)
    keys = traffic.serve("production", "v0.1.0", 3000, fpr=0.0)
    traffic.serve("shadow", "v0.2.0", 3000, fpr=0.0, copies=keys)  # the same answers
    code, report = traffic.analyze(reg, "--channel", "shadow", "--apply")
    assert code == 0 and report["verdict"] == "continue"
    agreement = next(m for m in report["metrics"] if m["metric"] == "agreement")
    assert agreement["candidate"] == 1.0 and agreement["guarded"] is False
    assert report["applied"]["moves"] == []
    # A shadow with fewer false positives than production (fpr 0.10 here) is promoted.
    keys = traffic.serve("production", "v0.1.0", 4000, fpr=0.10)
    traffic.serve("shadow", "v0.2.0", 4000, fpr=0.0, copies=keys)
    code, report = traffic.analyze(reg, "--channel", "shadow", "--apply")
    assert code == 0 and report["verdict"] == "promote", report["metrics"][0]
    assert events(reg, "production")[-1].version == "v0.2.0"
    assert events(reg, "shadow")[-1].kind == "stop"


def test_hostile_log_lines_are_skipped_and_counted(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=6)
    traffic.serve("production", "v0.1.0", 10, fpr=0.1)
    with traffic.log.open("a") as log:
        log.write("not json\n[1, 2]\n")
        log.write(json.dumps({"time": "x", "key": "k", "channel": "canary"}) + "\n")
        good = {"time": "2030-01-01T00:00:00.000Z", "channel": "canary", "version": "v0.2.0"}
        log.write(json.dumps(good | {"key": "k", "latency_ms": "NaN", "role": "canary"}) + "\n")
        log.write(json.dumps(good | {"key": "../" * 200, "latency_ms": 1, "role": "x"}) + "\n")
        log.write("[" * 100_000 + "\n")  # too long, and would nest too deep
        log.write('{"key": "' + "a" * 200_000 + '"}\n')
    code, report = traffic.analyze(reg)
    assert code == 0
    assert report["skipped"]["malformed"] == 5 and report["skipped"]["too_long"] == 2
    assert report["baseline"]["requests"] == 10 and report["candidate"]["requests"] == 0
    proc = mvctl(reg.root, "canary", "analyze", "fraud", "--log", "missing.jsonl")
    assert proc.returncode == 3 and "cannot read" in proc.stderr


def test_rich_and_markdown_reports(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=7)
    traffic.serve("production", "v0.1.0", 300, fpr=0.1)
    traffic.serve("canary", "v0.2.0", 300, fpr=0.1)
    args = ("canary", "analyze", "fraud", "--log", str(traffic.log))
    proc = mvctl(reg.root, *args, "--outcomes", str(traffic.outcomes))
    assert proc.returncode == 0, proc.stderr
    assert "false_positive_rate (primary)" in proc.stdout and "next step" in proc.stdout
    proc = mvctl(reg.root, *args, "--format", "markdown")
    assert proc.returncode == 0 and proc.stdout.startswith("### Canary analysis")
    assert "| error_rate |" in proc.stdout


def _watch(reg: Registry, traffic: Traffic, *args: str) -> subprocess.Popen[str]:
    command = ("canary", "watch", "fraud", "--log", str(traffic.log))
    files = ("--outcomes", str(traffic.outcomes), "--interval", "0.2")
    return subprocess.Popen(
        [sys.executable, "-m", "mvctl", *command, *files, *args],
        cwd=reg.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_watch_applies_until_the_rollback_then_exits(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=8)
    traffic.serve("production", "v0.1.0", 2000, fpr=0.05)
    traffic.serve("canary", "v0.2.0", 300, fpr=0.05, errors=0.3)
    proc = _watch(reg, traffic, "--apply")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "roll back" in out and "stop fraud#canary!#" in out
    assert events(reg, "canary")[-1].kind == "stop"


@pytest.mark.slow
def test_watch_stops_cleanly_on_sigterm(reg: Registry) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=9)
    traffic.serve("production", "v0.1.0", 100, fpr=0.05)
    proc = _watch(reg, traffic, "--json")
    assert proc.stdout is not None
    first = json.loads(proc.stdout.readline())  # one round done: it is in its wait
    assert first["verdict"] == "continue"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "received SIGTERM: stopping" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_apply_killed_at_every_git_step_a_retry_stops_the_canary_exactly_once(
    reg: Registry, tmp_path: Path
) -> None:
    """`canary analyze --apply` deciding a rollback, SIGKILLed before each of its git calls in
    turn (a `git` shim first on PATH), then run again as a scheduler would: the remote ends
    with exactly one stop of the canary, no canary alias and production untouched.
    Reproduction: killed before the push, the retry found the channel empty here and said
    "nothing to analyze", leaving the fleet routing to the canary it had stopped."""
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=2)
    traffic.serve("production", "v0.1.0", 3000, fpr=0.05)
    traffic.serve("canary", "v0.2.0", 400, fpr=0.05, errors=0.2)
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    git_shim(shim, str(Path(real).resolve()))
    apply = (
        *("canary", "analyze", "fraud", "--log", str(traffic.log)),
        *("--outcomes", str(traffic.outcomes), "--apply", "--json"),
    )

    def run_apply(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mvctl", *apply],
            cwd=reg.root,
            env={**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    pristine = tmp_path / "pristine"
    shutil.copytree(reg.root.parent, pristine, symlinks=True)
    counter = tmp_path / "count"
    assert run_apply({"MVCTL_SHIM_COUNT": str(counter)}).returncode == 1  # the rollback verdict
    steps = int(counter.read_text())
    assert steps >= 3
    for step in range(1, steps + 1):
        shutil.rmtree(reg.root.parent)
        shutil.copytree(pristine, reg.root.parent, symlinks=True)
        count = tmp_path / f"calls-{step}"  # the shim counts calls here to find the Nth
        env = {"MVCTL_SHIM_AT": str(step), "MVCTL_SHIM_WHEN": "before"}
        killed = run_apply({**env, "MVCTL_SHIM_COUNT": str(count)})
        assert killed.returncode == -9, (step, killed.stderr)
        retry = run_apply({})
        assert "Traceback" not in retry.stderr, (step, retry.stderr)
        theirs = remote_tags(reg.origin)
        stops = sorted(name for name in theirs if name.startswith("fraud#canary!#"))
        assert len(stops) == 1, (step, sorted(theirs), retry.stdout, retry.stderr)
        assert "fraud@canary" not in theirs, (step, retry.stdout)
        assert remote_holder(reg.origin, "fraud", "production") == "v0.1.0", step
