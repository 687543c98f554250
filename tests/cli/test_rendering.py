"""User and registry text reaches the terminal verbatim: never parsed as Rich markup.

A rollback reason, a git identity, a param value, a metric key, a column name or a
description may hold ``[/x]`` or ``[bold red]...[/]``; every command that renders it must
print it as typed (and not crash with a MarkupError from then on).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.formats import tags
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, isolate, make_registry, mvctl

CONFIG = """version: 1
channels: [production, staging, canary, shadow]
models:
  fraud:
    gates:
      production:
        - {metric: "lat[/x]", max: 50}
    monitors:
      production:
        - {drift: psi, max: 0.25}
"""
REASON = "cpu spike [/oops] at 14:00"
APPROVED = "[bold red]APPROVED[/]"
DESCRIPTION = "[bold]big[/bold] model [/x]"
HOSTILE_LABELS = ("[/x]", "[bold]team[/]")


def _data(rows: int) -> str:
    lines = ["amt[/x],kind"]
    lines += [f"{i % 17},{'[/x]a' if i % 3 else 'b'}" for i in range(rows)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Two versions by 'Eve [/x]' full of markup-like text, promoted, then rolled back."""
    base = tmp_path_factory.mktemp("rendering")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        for who in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{who}_NAME", "Eve [/x]")
            mp.setenv(f"GIT_{who}_EMAIL", "eve@example.com")
        reg = make_registry(base)
        reg.write("mvctl.yaml", CONFIG)
        reg.git("commit", "-q", "-am", "Gates and monitors")
        for n, note in ((1, "[/x]"), (2, "[red]changed[/x]")):
            reg.write("models/model.bin", f"weights {n}".encode())
            reg.write("data/train.csv", _data(200))
            reg.write("params.yaml", f"train:\n  note: {json.dumps(note)}\n")
            reg.write("train[/x].py", f"print({n})\n")
            reg.git("add", "params.yaml", "train[/x].py")
            reg.git("commit", "-q", "-m", f"Training run {n}")
            register(
                RegisterRequest(
                    model="fraud",
                    cwd=reg.root,
                    weights="models/model.bin",
                    data=("data/train.csv",),
                    metrics=(f"lat[/x]={10 + n}",),
                    params_file="params.yaml",
                    description=DESCRIPTION,
                    labels=("team=risk",),
                )
            )
        # Labels are KEY=VALUE when mvctl writes them; a labels tag made by hand (or by a
        # peer) may hold anything, and is printed as it is.
        body = tags.LabelsBody("fraud", "v0.2.0", 1, HOSTILE_LABELS, DESCRIPTION, "Eve", "now")
        GitRepo.open(reg.root).create_annotated_tag(
            "fraud@v0.2.0#labels#1",
            reg.git("rev-parse", "fraud@v0.2.0^{commit}").strip(),
            tags.format_message("Label", body.to_dict()),
        )
        promote(reg.root, "fraud", "v0.1.0", "production")
        promote(reg.root, "fraud", "v0.2.0", "production", reason=APPROVED)
        rollback(reg.root, "fraud", "production", reason=REASON)
    yield reg


def run_ok(reg: Registry, *args: str, code: int = 0) -> str:
    proc = mvctl(reg.root, *args)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert "MarkupError" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout


def test_history_prints_reasons_and_actor_verbatim(marked: Registry) -> None:
    out = run_ok(marked, "history", "fraud")
    assert REASON in out
    assert APPROVED in out
    assert "Eve [/x]" in out


def test_list_prints_author_and_metric_keys_verbatim(marked: Registry) -> None:
    assert "fraud" in run_ok(marked, "list")
    out = run_ok(marked, "list", "fraud")
    assert "Eve [/x]" in out
    assert "lat[/x]" in out
    cells = [line.split("│")[-2].strip() for line in out.splitlines() if "│" in line]
    assert "[/x]" in cells and "[bold]team[/]" in cells  # a hand-made labels tag's, verbatim


def test_show_prints_description_and_labels_verbatim(marked: Registry) -> None:
    out = run_ok(marked, "show", "fraud@production")
    assert DESCRIPTION in out
    assert "team=risk" in out
    assert "Eve [/x]" in out


def test_diff_prints_params_metrics_and_files_verbatim(marked: Registry) -> None:
    out = run_ok(marked, "diff", "fraud", "v0.1.0", "v0.2.0")
    assert "[red]changed[/x]" in out
    assert "lat[/x]" in out
    assert "train[/x].py" in out


def test_lineage_prints_summaries_verbatim(marked: Registry) -> None:
    out = run_ok(marked, "lineage", "fraud")
    assert "v0.2.0" in out
    assert "lat[/x]" in out


def test_validate_prints_gate_names_verbatim(marked: Registry) -> None:
    out = run_ok(marked, "validate", "fraud", "v0.2.0", "--channel", "production")
    assert "lat[/x] <= 50" in out


def test_monitor_prints_column_names_verbatim(marked: Registry, tmp_path: Path) -> None:
    live = tmp_path / "live.csv"
    live.write_text(_data(200))
    out = run_ok(marked, "monitor", "fraud", "--live", str(live))
    assert "amt[/x]" in out


def test_progress_that_draws_nothing_imports_no_bars() -> None:
    """A pull that finds no change and every --json run make a RichProgress that shows
    nothing: it must not cost rich.progress's import (~60 ms of a 0.15 s poll)."""
    code = (
        "import sys\n"
        "from mvctl.cli.output import RichProgress, stderr\n"
        "for quiet in (True, False):  # quiet, and a stderr that is no terminal\n"
        "    bars = RichProgress(stderr(), quiet=quiet)\n"
        "    with bars.running():\n"
        "        bars.task('model.bin', 10)(4)\n"
        "    assert not bars.drawn\n"
        "print('rich.progress' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_a_local_move_imports_no_pointer_store() -> None:
    """The pointer files' modules (and tempfile, through them) load only once a push has
    landed: a --local move does not pay for them at start-up."""
    code = (
        "import sys\n"
        "import mvctl.channels.rollback, mvctl.channels.promotion\n"
        "print('mvctl.publishing.pointers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
