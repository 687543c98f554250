"""The CLI layer: exit codes, one-line errors with hints, --json, --traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
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


def test_a_command_line_builds_its_command_alone_and_parses_as_the_whole_app(
    tmp_path: Path,
) -> None:
    """`mvctl NAME` registers NAME only (Typer inspects every registered command before
    running one); what it parses and prints is what the whole application does."""
    from typer.main import get_command

    from mvctl.cli import app as app_module

    whole = get_command(app_module.build())
    assert sorted(whole.commands) == sorted(app_module._COMMANDS)  # type: ignore[attr-defined]
    for name in ("rollback", "webhook", "canary"):
        alone = get_command(app_module.build(name))
        assert list(alone.commands) == [name]  # type: ignore[attr-defined]
        assert app_module._named_command([name, "--help"]) == name
    assert app_module._named_command(["--traceback", "rollback", "fraud"]) == "rollback"
    assert app_module._named_command(["--version"]) is None
    assert app_module._named_command(["rollbak"]) is None  # the whole app says what exists
    done = mvctl(tmp_path, "rollbak")
    assert done.returncode == 2 and "No such command" in done.stderr
    done = mvctl(tmp_path, "--traceback", "webhook", "serve", "--help")
    assert done.returncode == 0 and "--token-file" in done.stdout
    done = mvctl(tmp_path, "list", "--help")
    assert done.returncode == 0 and "Usage: python -m mvctl list" in done.stdout


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


GATED = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: auc, min: 0.95}
"""


def json_error(proc: subprocess.CompletedProcess[str], code: int) -> dict[str, Any]:
    """The one JSON object a failed --json command prints on stdout."""
    assert proc.returncode == code, (proc.args, proc.stdout, proc.stderr)
    assert len(proc.stdout.splitlines()) == 1, proc.stdout
    out: dict[str, Any] = json.loads(proc.stdout)
    assert out["exit"] == code
    assert isinstance(out["error"], str) and out["error"]
    assert "hint" in out
    assert "Traceback" not in proc.stderr
    return out


@pytest.mark.slow
def test_errors_under_json_are_one_json_object(registry: Registry, tmp_path: Path) -> None:
    registry.write("mvctl.yaml", GATED)
    registry.git("commit", "-q", "-am", "Production gate")
    registry.train(auc=0.91)
    ok = mvctl(registry.root, "register", "fraud", "-w", "models/model.bin", "-m", "auc=0.91")
    assert ok.returncode == 0, ok.stderr
    assert mvctl(registry.root, "promote", "fraud", "v0.1.0", "--to", "staging").returncode == 0

    out = json_error(mvctl(registry.root, "list", "nosuch", "--json"), 3)
    assert "nosuch" in out["error"]
    json_error(mvctl(registry.root, "show", "fraud@v9.9.9", "--json"), 3)
    json_error(mvctl(registry.root, "lineage", "nosuch", "--format", "json"), 3)
    no_target = ("rollback", "fraud", "-c", "staging", "--reason", "r", "--json")
    json_error(mvctl(registry.root, *no_target), 1)
    out = json_error(
        mvctl(registry.root, "promote", "fraud", "v0.1.0", "--to", "production", "--json"), 1
    )
    assert "gate" in out["error"]
    json_error(mvctl(tmp_path, "check", "--json"), 3)
    json_error(mvctl(registry.root, "register", "Bad Name", "-w", "x", "--json"), 2)
    # A refused report is still one object: its fields beside error/hint/exit.
    for fmt in (["--json"], ["--format", "json"]):
        args = ("validate", "fraud", "v0.1.0", "--channel", "production", *fmt)
        out = json_error(mvctl(registry.root, *args), 1)
        assert out["passed"] is False
        assert out["gates"][0]["gate"].startswith("auc")


def test_usage_errors_under_json_are_one_json_object(registry: Registry) -> None:
    for args in (
        ["list", "--no-such-option", "--json"],
        ["lineage", "--json"],
        ["diff", "fraud", "v0.1.0", "-f", "json"],
        ["validate", "fraud", "v0.1.0", "--channel", "production", "--json", "-f", "jsn"],
    ):
        out = json_error(mvctl(registry.root, *args), 2)
        assert out["hint"].endswith("--help")
    plain = mvctl(registry.root, "list", "--no-such-option")
    assert plain.returncode == 2 and plain.stdout == ""


def test_interrupted_under_json(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_cwd: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mvctl.registry.read.list_models", interrupted)
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 130
    assert json.loads(result.stdout) == {
        "error": "interrupted; nothing was left half-done",
        "hint": None,
        "exit": 130,
    }
