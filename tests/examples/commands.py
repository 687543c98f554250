"""Every `mvctl ...` command a shell script, a CI template or a manifest runs, checked
against the real command tree: the command exists, every option given is one it declares,
and its required options and arguments are given (Typer's own click, as `--help` shows)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from typing import Any

import typer

from mvctl.cli.app import app

ROOT = typer.main.get_command(app)


def walk(command: Any = ROOT, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every command and group of the application, by path ("" is mvctl itself)."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, f"{path} {name}".strip())


def _without_comment(line: str) -> str:
    """The line up to a shell comment: a `#` that starts a word, outside quotes."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def mvctl_commands(script: str) -> list[list[str]]:
    """Every `mvctl ...` in a shell script, as argv, up to a pipe, redirection, `||` or `)`;
    comments are not commands (`# ... mvctl serve ...` is prose)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    commands = []
    for line in joined.splitlines():
        code = _without_comment(line)
        for match in re.finditer(r"(?:^|[\s;&|(])mvctl\s", code):
            rest = code[match.end() :]
            argv = ["mvctl"]
            for token in shlex.split(rest, posix=True):
                if token in ("|", "||", "&&", ";", ">", ">>") or token.startswith((">", "2>")):
                    break
                if token.endswith(")") and "(" not in token:  # the end of a (subshell)
                    argv.append(token[:-1])
                    break
                argv.append(token)
            commands.append(argv)
    return commands


def resolve(argv: list[str]) -> tuple[Any, list[str], str]:
    """The command argv names (Typer's own click: its classes, not the click package's)."""
    command: Any = ROOT
    rest = argv[1:]
    path = "mvctl"
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        path += " " + rest[0]
        command = command.commands[rest[0]]
        rest = rest[1:]
    assert not hasattr(command, "commands"), f"{shlex.join(argv)}: no such command"
    return command, rest, path


def check_command(argv: list[str]) -> str:
    command, rest, path = resolve(argv)
    options = {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    given, positional = set(), 0
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            assert name in options, f"{path}: no option {name}"
            param = options[name]
            given.add(param.name)
            if not getattr(param, "is_flag", False) and "=" not in token:
                i += 1  # its value
        else:
            positional += 1
        i += 1
    for param in command.params:
        if param.param_type_name == "option" and param.required:
            assert param.name in given, f"{path}: required {param.opts[0]} missing"
    arguments = [p for p in command.params if p.param_type_name == "argument" and p.required]
    assert positional >= len(arguments), f"{path}: {len(arguments)} arguments, {positional} given"
    return path
