"""The example folder is valid for the real tools: promtool checks the Prometheus config
and the rules and runs the rules' unit tests (rules.test.yml), amtool checks the
Alertmanager config. Skipped, with the reason, where the tools are not installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.observability.examples import EXAMPLES, TOKENS, Ports, laid_out


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install prometheus prometheus-alertmanager)")
    return found


def _check(*argv: str, cwd: Path) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _folder(tmp_path: Path) -> Path:
    tokens = {name: f"{name}-token-0123456789abcdef" for name in TOKENS}
    return laid_out(tmp_path, Ports(8080, 9466, 9465, 9093), tokens)


def test_promtool_checks_config_and_rules(tmp_path: Path) -> None:
    promtool = _tool("promtool")
    folder = _folder(tmp_path)
    assert "SUCCESS" in _check(promtool, "check", "config", "prometheus.yml", cwd=folder)
    assert "2 rules found" in _check(promtool, "check", "rules", "rules.yml", cwd=EXAMPLES)


def test_promtool_unit_tests_of_the_rules() -> None:
    promtool = _tool("promtool")
    assert "SUCCESS" in _check(promtool, "test", "rules", "rules.test.yml", cwd=EXAMPLES)


def test_amtool_checks_alertmanager_config(tmp_path: Path) -> None:
    amtool = _tool("amtool")
    folder = _folder(tmp_path)
    out = _check(amtool, "check-config", "alertmanager.yml", cwd=folder)
    assert "SUCCESS" in out and "2 receivers" in out


def test_the_lag_alert_never_rolls_back() -> None:
    """Only an alert carrying mvctl_model reaches the webhook: the lag rule must not."""
    rules = (EXAMPLES / "rules.yml").read_text()
    lag = rules.split("alert: MvctlHostLagsAlias", 1)[1]
    assert "mvctl_model" not in lag
