"""README's tutorial keeps itself true: every shell block of its "Tutorial" section runs, as
pasted, in order, in one bash, in a temporary directory (the blocks make their own git
remote, training repository and DVC remote there), with this environment's mvctl and python
first on PATH. A block after ``<!-- expect-exit: N -->`` must exit N (one command per such
block); one after ``<!-- no-run: why -->`` is only parsed and its mvctl commands checked."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.markdown import README, Block, section, shell_blocks
from tests.examples.commands import check_command, mvctl_commands

_BLOCK = "::readme-block "


def _tutorial() -> list[Block]:
    return section(shell_blocks(README.read_text()), "Tutorial")


def _commands(block: Block) -> list[str]:
    """The block's command lines: continuations joined, comments and blank lines left out."""
    joined = re.sub(r"\\\n", " ", block.text)
    return [ln for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _script(blocks: list[Block]) -> str:
    """One bash script that is the blocks pasted in order, each announced on stderr, a
    failing command stopping it (set -e), an expect-exit block held to its code."""
    parts = ["set -e -o pipefail"]
    for n, block in enumerate(blocks):
        if block.marker and block.marker[0] == "no-run":
            continue
        parts.append(f"echo '{_BLOCK}{n}' >&2")
        if block.marker is None:
            parts.append(block.text)
            continue
        name, value = block.marker
        assert name == "expect-exit" and value.isdigit(), f"{block.where}: marker {name}: {value}"
        parts += [
            "set +e",
            block.text.rstrip("\n"),
            f"code=$?; set -e; if [ $code -ne {value} ]; then"
            f' echo "{_BLOCK}{n} exited $code, not {value}" >&2; exit 97; fi',
        ]
    parts.append(f"echo '{_BLOCK}done' >&2")
    return "\n".join(parts) + "\n"


def _run(blocks: list[Block], cwd: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    env = {**os.environ, "TMPDIR": str(cwd)}  # mktemp -d: a directory of this test
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-c", _script(blocks)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    announced = [ln[len(_BLOCK) :] for ln in done.stderr.splitlines() if ln.startswith(_BLOCK)]
    last = announced[-1] if announced else "none"
    return done, last


def _failure(blocks: list[Block], done: subprocess.CompletedProcess[str], last: str) -> str:
    where = blocks[int(last.split()[0])].where if last.split()[0].isdigit() else last
    tail = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return f"exit {done.returncode} in the block at {where}\n{tail}"


def test_the_markers_are_the_ones_known_and_say_why() -> None:
    blocks = _tutorial()
    assert len(blocks) >= 10, [b.where for b in blocks]
    for block in blocks:
        if block.marker is None:
            continue
        name, value = block.marker
        assert name in ("expect-exit", "no-run"), f"{block.where}: unknown marker {name}"
        if name == "expect-exit":
            assert value.isdigit() and value != "0", f"{block.where}: expect-exit {value!r}"
            assert len(_commands(block)) == 1, f"{block.where}: one command per expect-exit"
        else:
            assert len(value) > 10, f"{block.where}: no-run must say why it cannot run"
    assert any(b.marker and b.marker[0] == "expect-exit" for b in blocks)


def test_every_block_parses_and_its_mvctl_commands_exist() -> None:
    """no-run blocks included: what the test cannot run must still be a real command."""
    seen = set()
    for block in _tutorial():
        done = subprocess.run(
            ["bash", "-n"], input=block.text, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{block.where}: {done.stderr}"
        for argv in mvctl_commands(block.text):
            seen.add(check_command(argv))
    assert {"mvctl init", "mvctl register", "mvctl promote", "mvctl rollback"} <= seen
    assert {"mvctl pull", "mvctl serve", "mvctl history", "mvctl diff", "mvctl check"} <= seen


def test_a_comment_inside_a_line_continuation_fails_the_run(tmp_path: Path) -> None:
    """The runner itself: the paste-breaking mistake the register example once had."""
    broken = Block(
        lang="sh",
        text="echo one \\\n  two   # a comment ends the command here\n  --three\n",
        line=1,
        headings=("mvctl", "Tutorial"),
        levels=(1, 2),
        marker=None,
    )
    refusal = Block("sh", "false\n", 5, ("mvctl", "Tutorial"), (1, 2), ("expect-exit", "4"))
    done, last = _run([broken], tmp_path)
    assert done.returncode == 127 and last == "0", done.stderr
    done, last = _run([refusal], tmp_path)
    assert done.returncode == 97 and "exited 1, not 4" in done.stderr, done.stderr


@pytest.mark.slow
def test_the_tutorial_runs_as_pasted(tmp_path: Path) -> None:
    blocks = _tutorial()
    done, last = _run(blocks, tmp_path)
    assert done.returncode == 0 and last == "done", _failure(blocks, done, last)
    # What the tutorial says happened, on the host it built.
    assert "registered cancer v0.3.0" in done.stdout
    assert "cancer v0.2.0 failed the production gates" in done.stderr  # the expect-exit block
    assert "rolled back: v0.3.0 → v0.1.0" in done.stdout
    assert "this clone has no registry tags" in done.stderr  # the tagless CI checkout
    (scratch,) = (p for p in tmp_path.iterdir() if (p / "origin.git").is_dir())
    assert (scratch / "host" / "current").resolve().name == "v0.1.0"
