"""Every command's --help: a one-sentence summary in the command list, and examples that
run on the command they document (its flags, its arguments, valid names), readable at 80
columns."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from mvctl.channels.labels import split_ref
from mvctl.cli.app import EXAMPLES, app, epilog
from mvctl.errors import UsageError
from mvctl.formats.labels import check_labels, parse_selector
from mvctl.formats.names import Version, check_channel, check_model
from tests.examples.commands import ROOT, check_command, mvctl_commands, resolve, walk

runner = CliRunner()
WIDTH = 80
# A line of help at most this long fits at COLUMNS=80 (a space of padding each side, and
# an example's two of indent), so Rich never wraps it mid-command or mid-sentence.
TEXT_WIDTH = WIDTH - 4


PATHS = [path for path, _ in walk()]
LEAVES = [path for path, command in walk() if not hasattr(command, "commands")]


def _examples(path: str) -> list[list[str]]:
    """The commands command ``path``'s examples run, as argv (comments are prose)."""
    return mvctl_commands("\n".join(EXAMPLES[path]))


def test_every_command_and_group_has_examples_and_no_example_is_stale() -> None:
    assert len(PATHS) > 30, PATHS
    for path, command in walk():
        assert path in EXAMPLES, f"mvctl {path}: no examples in cli/app.py's EXAMPLES"
        assert command.epilog == epilog(path), f"mvctl {path}: its --help shows no Examples"
        assert _examples(path), f"mvctl {path}: its examples run no mvctl command"
    assert sorted(EXAMPLES) == sorted(PATHS)


def test_every_example_runs_its_command_with_flags_and_arguments_it_declares() -> None:
    for path in PATHS:
        documented = f"mvctl {path}".strip()
        for argv in _examples(path):
            shown = check_command(argv)
            # A group's examples run its commands; a command's, itself.
            assert shown == documented or shown.startswith(f"{documented} "), (path, argv)
        if path in LEAVES:
            assert any(resolve(a)[2] == documented for a in _examples(path)), path


def _names(path: str, params: dict[str, Any]) -> Iterator[str]:
    """Check each model, version, channel, reference, label and selector an example gives
    as mvctl itself would; yield what was checked."""
    for name, value in params.items():
        if value in (None, "", (), []):
            continue
        if name == "model":
            yield check_model(value)
        elif name in ("version", "old", "new") or (name == "to" and path == "rollback"):
            yield str(Version.parse(value))
        elif name in ("channel", "to"):
            for channel in [value] if isinstance(value, str) else value:
                yield check_channel(str(channel))
        elif name == "ref":
            model, _, held = value.partition("@")
            check_model(model)
            if held and not Version.is_valid(held):
                check_channel(held)
            if path == "label":
                split_ref(value)
            yield value
        elif name == "labels" or (name == "label" and path in ("list", "register")):
            yield from check_labels(value)
        elif name == "select":
            for text in value:
                parse_selector(text)
                yield text


def test_every_example_spells_models_versions_and_channels_as_mvctl_accepts() -> None:
    checked = []
    for path in PATHS:
        for argv in _examples(path):
            command, rest, shown = resolve(argv)
            ctx = command.make_context(shown, list(rest), resilient_parsing=True)
            checked += _names(shown.removeprefix("mvctl "), ctx.params)
    expected = {"fraud", "v1.4.0", "production", "fraud@production", "season=holiday"}
    assert expected | {"label season=holiday"} <= set(checked), checked
    for path, params, refused in (
        ("list", {"model": "Fraud"}, "invalid model name"),
        ("rollback", {"to": "1.2.0"}, "invalid version"),
        ("promote", {"to": "Production"}, "invalid channel name"),
        ("show", {"ref": "fraud@Prod"}, "invalid channel name"),
        ("label", {"labels": ["season"]}, "KEY=VALUE"),
    ):
        with pytest.raises(UsageError, match=refused):
            list(_names(path, params))


def test_example_lines_fit_80_columns_and_hold_no_rich_markup() -> None:
    for path, lines in EXAMPLES.items():
        for line in lines:
            assert len(line) <= TEXT_WIDTH, f"mvctl {path}: {line!r} wraps at 80 columns"
            assert "[" not in line, f"mvctl {path}: {line!r} would be read as Rich markup"
            assert line.startswith(("mvctl ", "# ", "    ")), (path, line)


def _summary(command: Any) -> str:
    """What `mvctl --help` lists for a command: its help's first paragraph."""
    return str(inspect.cleandoc(command.help or "").split("\n\n")[0])


def test_every_summary_is_one_sentence_on_one_line() -> None:
    for path, command in walk():
        summary = _summary(command)
        assert "\n" not in summary, f"mvctl {path}: its summary breaks a line: {summary!r}"
        assert re.fullmatch(r"[A-Z].*[^.]\.", summary), f"mvctl {path}: {summary!r}"
        assert ". " not in summary, f"mvctl {path}: one sentence, not several: {summary!r}"
        # One line atop its own --help at 80 columns (two at most in the command list).
        assert len(summary) <= TEXT_WIDTH, f"mvctl {path}: wraps at 80 columns: {summary!r}"
    assert _summary(ROOT.commands["list"]).startswith("List the models")


def test_no_help_line_is_wrapped_into_a_stub_at_80_columns() -> None:
    """Typer keeps a help paragraph's line breaks (Rich markup mode): a line longer than
    the terminal would wrap, leaving a word or two on a line of its own."""
    for path, command in walk():
        for line in inspect.cleandoc(command.help or "").splitlines():
            assert len(line) <= TEXT_WIDTH, f"mvctl {path}: {line!r} wraps at 80 columns"


def test_every_help_reads_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    for path, command in walk():
        result = runner.invoke(app, [*path.split(), "--help"])
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= WIDTH, path
        assert _summary(command) in [x.strip() for x in lines], f"mvctl {path}: summary wraps"
        start = [line.strip() for line in lines].index("Examples")
        shown = [line.strip() for line in lines[start + 1 :] if line.strip()]
        assert shown == [line.strip() for line in EXAMPLES[path]], path
    # A group's command list (mvctl's own too) gives each command one line, its summary.
    for path, group in walk():
        if not hasattr(group, "commands"):
            continue
        listed = runner.invoke(app, [*path.split(), "--help"]).output.splitlines()
        start = next(n for n, line in enumerate(listed) if "─ Commands ─" in line) + 1
        rows = [row.strip("│ ") for row in listed[start : start + len(group.commands)]]
        expected = [f"{name} {_summary(c)}" for name, c in group.commands.items()]
        assert [re.sub(r"\s+", " ", row) for row in rows] == expected, f"mvctl {path}"
