"""GTO reads a channel `mvctl unassign` cleared as empty, with the unassignment in its
history, and agrees with mvctl again after the channel's next promotion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl, run


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), push=True) for v in ("a", "bb")))


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path)


def gto(reg: Registry, *args: str) -> Any:
    return json.loads(run("gto", *args, "--json", cwd=reg.root).stdout)


@pytest.mark.slow
def test_gto_reads_an_unassigned_channel_as_empty(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GTO orders events by tag time (one-second resolution): one second each, by git's clock.
    def at(second: int, *args: str) -> None:
        monkeypatch.setenv("GIT_COMMITTER_DATE", f"2026-01-01T00:00:{second:02d}+00:00")
        proc = mvctl(reg.root, *args)
        assert proc.returncode == 0, proc.stderr

    at(1, "promote", "fraud", "v0.1.0", "--to", "production")
    at(2, "promote", "fraud", "v0.2.0", "--to", "staging")
    assert gto(reg, "show")["fraud"]["stage"] == {"production": "v0.1.0", "staging": "v0.2.0"}
    at(3, "unassign", "fraud", "--channel", "staging", "--reason", "trial over")
    assert gto(reg, "show", "fraud#staging") == []
    assert gto(reg, "show")["fraud"]["stage"] == {"production": "v0.1.0"}
    history = gto(reg, "history", "fraud")
    assert [(e["event"], e["ref"]) for e in history if e["stage"] == "staging"] == [
        ("unassignment", "fraud#staging!#3"),
        ("assignment", "fraud#staging#2"),
    ]
    # Production too, with --force: GTO then shows no stage at all.
    at(4, "unassign", "fraud", "-c", "production", "--reason", "decommission", "--force")
    assert gto(reg, "show")["fraud"]["stage"] == {}
    # The next promotion: GTO and mvctl agree again.
    at(5, "promote", "fraud", "v0.1.0", "--to", "staging")
    [held] = gto(reg, "show", "fraud#staging")
    assert held["version"] == "v0.1.0"
    assert mvctl(reg.root, "check").returncode == 0
