"""The CLI layer: exit codes, one-line errors with hints, --json, --traceback."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from mvctl import __version__
from mvctl.cli.app import app
from tests.conftest import Registry, mvctl

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("init", "register", "list", "show"):
        assert command in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mvctl {__version__}"


def test_usage_errors_exit_2(registry: Registry) -> None:
    registry.train()
    for args in (
        ["register", "Bad Name", "-w", "models/model.bin"],
        ["register", "fraud", "-w", "models/model.bin", "--version", "1.0"],
        ["register", "fraud", "-w", "models/model.bin", "--bump", "huge"],
        ["register", "fraud", "-w", "models/model.bin", "--metric", "auc"],
        ["list", "--no-such-option"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)


def test_error_is_one_line_plus_hint_and_traceback_on_request(registry: Registry) -> None:
    registry.train()
    proc = mvctl(registry.root, "register", "fraud", "-w", "models/none.bin")
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: weights models/none.bin do not exist", "hint: train the model first"]
    proc = mvctl(registry.root, "--traceback", "register", "fraud", "-w", "models/none.bin")
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "OperationalError" in proc.stderr


def test_register_cli_end_to_end_json(registry: Registry) -> None:
    registry.train()
    proc = mvctl(
        registry.root,
        "register",
        "fraud",
        "--weights",
        "models/model.bin",
        "--data",
        "data/train.csv",
        "--metrics",
        "metrics.json",
        "--metric",
        "latency_p95_ms=12.5",
        "--params",
        "params.yaml",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["tag"] == "fraud@v0.1.0"
    assert out["manifest"]["metrics"]["latency_p95_ms"] == 12.5
    assert out["commit"] == registry.git("rev-parse", "HEAD").strip()


def test_register_cli_refusal_exit_codes(registry: Registry) -> None:
    registry.train()
    ok = mvctl(registry.root, "register", "fraud", "-w", "models/model.bin", "--version", "v1.0.0")
    assert ok.returncode == 0, ok.stderr
    assert "registered fraud v1.0.0" in ok.stdout
    again = mvctl(
        registry.root, "register", "fraud", "-w", "models/model.bin", "--version", "v1.0.0"
    )
    assert again.returncode == 1
    assert "already registered" in again.stderr


def test_dry_run_cli(registry: Registry) -> None:
    registry.train()
    before = registry.snapshot()
    proc = mvctl(registry.root, "register", "fraud", "-w", "models/model.bin", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "would register fraud v0.1.0" in proc.stdout
    assert registry.snapshot() == before
