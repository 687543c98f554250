"""Every command's --help: a one-sentence summary in the command list, and examples that
run on the command they document (its flags, its arguments, valid names), readable at 80
columns."""

from __future__ import annotations

import inspect
import re
import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from mvctl.channels.labels import split_ref
from mvctl.cli.app import EXAMPLES, app, epilog
from mvctl.errors import UsageError
from mvctl.formats.labels import check_labels, parse_selector
from mvctl.formats.names import Version, check_channel, check_model
from tests.examples.commands import ROOT, check_command, mvctl_commands, resolve

runner = CliRunner()
WIDTH = 80
# An example line at most this long fits at COLUMNS=80 (one space of padding each side and
# two of indent), so it is never wrapped mid-command.
EXAMPLE_WIDTH = WIDTH - 4


def _walk(command: Any = ROOT, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every command and group of the application, by path ("" is mvctl itself)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, f"{path} {name}".strip())


PATHS = [path for path, _ in _walk()]
LEAVES = [path for path, command in _walk() if not hasattr(command, "commands")]


def _examples(path: str) -> list[list[str]]:
    """The commands command ``path``'s examples run, as argv (comments are prose)."""
    return mvctl_commands("\n".join(EXAMPLES[path]))


def test_every_command_and_group_has_examples_and_no_example_is_stale() -> None:
    assert len(PATHS) > 30, PATHS
    for path, command in _walk():
        assert command.epilog == epilog(path), f"mvctl {path}: no Examples in its --help"
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
            assert len(line) <= EXAMPLE_WIDTH, f"mvctl {path}: {line!r} wraps at 80 columns"
            assert "[" not in line, f"mvctl {path}: {line!r} would be read as Rich markup"
            assert line.startswith(("mvctl ", "# ", "    ")), (path, line)


def _summary(command: Any) -> str:
    """What `mvctl --help` lists for a command: its help's first paragraph."""
    return str(inspect.cleandoc(command.help or "").split("\n\n")[0])


def test_every_summary_is_one_sentence_on_one_line() -> None:
    for path, command in _walk():
        summary = _summary(command)
        assert "\n" not in summary, f"mvctl {path}: its summary breaks a line: {summary!r}"
        assert re.fullmatch(r"[A-Z].*[^.]\.", summary), f"mvctl {path}: {summary!r}"
        assert ". " not in summary, f"mvctl {path}: one sentence, not several: {summary!r}"
        assert len(summary) <= 90, f"mvctl {path}: over two lines at 80 columns: {summary!r}"
    assert _summary(ROOT.commands["list"]).startswith("List the models")


def test_every_help_reads_at_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    for path, command in _walk():
        result = runner.invoke(app, [*path.split(), "--help"])
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert max(len(line) for line in lines) <= WIDTH, path
        assert _summary(command) in " ".join(x.strip() for x in lines), path
        start = [line.strip() for line in lines].index("Examples")
        shown = [line.strip() for line in lines[start + 1 :] if line.strip()]
        assert shown == [line.strip() for line in EXAMPLES[path]], path
    # The command list shows each summary as one paragraph, wrapped only by the terminal.
    listed = runner.invoke(app, ["--help"]).output
    cells = [re.sub(r"^│ [a-z-]* +| +│$", "", row) for row in listed.splitlines() if "│" in row]
    shown = " ".join(cell.strip() for cell in cells)
    for name, command in ROOT.commands.items():
        assert _summary(command) in shown, name


def test_the_readme_documents_every_command_and_its_examples_options() -> None:
    """README's command reference names each command in a heading, and the options a
    heading shows are the command's: the reference agrees with what --help shows."""
    from tests.docs.markdown import README

    text = README.read_text()
    headings = [line for line in text.splitlines() if line.startswith("#")]
    for path in LEAVES:
        named = [h for h in headings if f"`mvctl {path}" in h]
        assert named, f"README has no heading for mvctl {path}"
    for heading in headings:
        for usage in re.findall(r"`(mvctl [^`]+)`", heading):
            command, _, documented = resolve(shlex.split(usage.split(" [")[0]))
            options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            for flag in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", usage):
                assert flag in options, f"README heading {heading!r}: {documented} has no {flag}"
