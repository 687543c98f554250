"""One decision line with a 401-digit integer (valid JSON, under MAX_LINE) is skipped as
malformed: it would overflow every float conversion (``math.isfinite`` raises
OverflowError), crash `mvctl canary analyze` and kill `canary watch` for good."""

import json
from pathlib import Path

import pytest

from mvctl.channels.promotion import promote
from tests.canary.test_apply import CONFIG, Traffic
from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl

BIG = "1" + "0" * 400


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(
        Release(weights=b"one", auc=0.91, push=True, promote=("production",)),
        Release(weights=b"two", auc=0.93, push=True),
        config=CONFIG,
    )


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path)
    monkeypatch.chdir(registry.root)
    return registry


@pytest.mark.parametrize(
    "field", [f'"latency_ms": {BIG}, "output": [1]', f'"latency_ms": 1, "output": [{BIG}]']
)
def test_a_huge_integer_in_one_line_is_skipped_not_a_crash(reg: Registry, field: str) -> None:
    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=1)
    traffic.serve("production", "v0.1.0", 300, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 30, fpr=0.10)
    with traffic.log.open("a") as log:
        log.write(
            '{"time": "2099-01-01T00:00:00+00:00", "key": "evil", "channel": "canary", '
            f'"version": "v0.2.0", "role": "canary", {field}}}\n'
        )
    proc = mvctl(reg.root, "canary", "analyze", "fraud", "--log", str(traffic.log), "--json")
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr, proc.stderr[-600:]
    assert proc.returncode == 0, proc.stderr[-600:]
    assert json.loads(proc.stdout)["skipped"]["malformed"] == 1


def test_watch_survives_a_huge_integer_line(reg: Registry) -> None:
    """One replica's bad line is one malformed line to `canary watch`, round after round:
    it would otherwise kill it for good (OverflowError is no OperationalError)."""
    import signal
    import subprocess
    import sys

    promote(reg.root, "fraud", "v0.2.0", "canary", weight=5)
    traffic = Traffic(reg.root, seed=1)
    traffic.serve("production", "v0.1.0", 300, fpr=0.10)
    traffic.serve("canary", "v0.2.0", 30, fpr=0.10)
    with traffic.log.open("a") as log:
        log.write(
            '{"time": "2099-01-01T00:00:00+00:00", "key": "evil", "channel": "canary", '
            f'"version": "v0.2.0", "role": "canary", "latency_ms": {BIG}, "output": [1]}}\n'
        )
    command = ["canary", "watch", "fraud", "--log", str(traffic.log), "--interval", "0.2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mvctl", *command, "--json"],
        cwd=reg.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        rounds = [json.loads(proc.stdout.readline()) for _ in range(2)]  # blocks per round
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert [r["skipped"]["malformed"] for r in rounds] == [1, 1]
    assert "Traceback" not in err and "OverflowError" not in err, err[-400:]
    assert proc.returncode == 0, f"watch died (rc {proc.returncode}): {err[-300:]}"
