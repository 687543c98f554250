"""The seasonal commands as a user types them: exit codes, one-line errors, JSON errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Registry, RegistryFactory, Release, copy_registry, mvctl

RELEASES = (
    Release(weights=b"one", auc=0.91, promote=("production",)),
    Release(weights=b"two", auc=0.93, promote=("production",)),
)


@pytest.fixture
def reg(registry_factory: RegistryFactory, tmp_path: Path) -> Registry:
    return copy_registry(registry_factory(*RELEASES), tmp_path, storage=False)


def test_label_then_list_then_promote_select(reg: Registry) -> None:
    done = mvctl(reg.root, "label", "fraud@v0.1.0", "season=holiday", "--description", "Q4")
    assert done.returncode == 0, done.stderr
    assert "labelled fraud v0.1.0 (fraud@v0.1.0#labels#1)" in done.stdout
    table = mvctl(reg.root, "list", "fraud")
    assert "status" in table.stdout and "season=holiday" in table.stdout
    assert "gold" in table.stdout  # v0.1.0 was replaced by v0.2.0 on production
    moved = mvctl(reg.root, "promote", "fraud", "--to", "production",
                  "--select", "label season=holiday", "--json")  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    body = json.loads(moved.stdout)
    assert (body["version"], body["selected"]) == ("v0.1.0", ["label season=holiday"])
    history = mvctl(reg.root, "history", "fraud", "--json")
    assert json.loads(history.stdout)["events"][-1]["reason"] == "selected: label season=holiday"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("label", "fraud@v0.1.0", "season holiday"), 2, "is not KEY=VALUE"),
        (("label", "fraud@v0.1.0"), 2, "nothing to change"),
        (("label", "fraud@v9.9.9", "a=b", "--local"), 3, "has no version v9.9.9"),
        (("promote", "fraud", "--to", "production"), 2, "give a VERSION or --select"),
        (("promote", "fraud", "v0.1.0", "--to", "production", "--select", "label a=b"), 2,
         "not both"),
        (("promote", "fraud", "--to", "production", "--select", "season=holiday"), 2,
         "names no kind"),
        (("promote", "fraud", "--to", "production", "--select", "label season=none"), 1,
         "no gold version of fraud on production matches label season=none"),
        (("list", "fraud", "--metric", "auc=>1"), 2, "is not METRIC OP NUMBER"),
    ],
)  # fmt: skip
def test_refusals_exit_with_their_code_and_say_why(
    reg: Registry, args: tuple[str, ...], code: int, words: str
) -> None:
    before = reg.snapshot()
    got = mvctl(reg.root, *args)
    assert got.returncode == code, (got.stdout, got.stderr)
    assert words in got.stderr and "Traceback" not in got.stderr
    as_json = mvctl(reg.root, *args, "--json")
    assert json.loads(as_json.stdout)["exit"] == code
    assert reg.snapshot() == before


def test_help_shows_an_example(reg: Registry) -> None:
    for command, example in (
        ("label", "mvctl label fraud@v1.4.0 season=holiday"),
        ("promote", "--select 'label season=holiday'"),
        ("list", "mvctl list fraud --label season=holiday"),
    ):
        shown = mvctl(reg.root, command, "--help")
        assert example in " ".join(shown.stdout.split()), command


def test_list_at_80_columns_keeps_metric_values_whole(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    mvctl(reg.root, "label", "fraud@v0.2.0", "season=holiday", "team=risk-and-fraud", "--local")
    monkeypatch.setenv("COLUMNS", "80")
    out = mvctl(reg.root, "list", "fraud").stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "0.93" in out and "0.91" in out
    assert "gold" in out  # the status is one word, never cut
    cells = "".join(line.split("│")[-2].strip() for line in out.splitlines() if "│" in line)
    assert "season=holiday" in cells and "team=risk-and-fraud" in cells  # folded, not cut


def test_columns_that_do_not_fit_are_left_out_never_cut() -> None:
    """`list MODEL` at a width too narrow for everything leaves out the author, then the
    metrics from the last (one stays), then the labels: what is shown is whole."""
    from mvctl.cli.render.registry import _fit

    keys = ["auc", "false_positive_rate", "recall_at_one_percent"]
    row = {
        "version": "v10.20.30",
        "created (UTC)": "2026-12-03 09:08",
        "author": "A Data Scientist",
        "auc": "0.9312",
        "false_positive_rate": "0.02051",
        "recall_at_one_percent": "0.4411",
        "channels": "production",
        "status": "gold",
        "labels": "season=holiday",
    }
    columns = list(row)
    assert _fit(columns, [row], 200, keys) == columns
    at_80 = _fit(columns, [row], 80, keys)
    assert "author" not in at_80 and "auc" in at_80 and "labels" in at_80
    assert at_80 == ["version", "created (UTC)", "auc", "channels", "status", "labels"]
    narrow = _fit(columns, [row], 40, keys)
    assert "auc" in narrow and "labels" not in narrow and "author" not in narrow
