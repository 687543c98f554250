"""Running git: one subprocess per operation, its failure one line of what git said.

What git prints repeats the URL it was given; every line mvctl repeats goes through
:func:`redacted_text`, so a password or token in a URL never reaches output.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

from mvctl.errors import OperationalError
from mvctl.formats.names import redacted_url


class GitFailed(OperationalError):
    """A git command exited non-zero; ``stdout``/``stderr`` hold what it said."""

    def __init__(self, message: str, stderr: str, stdout: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr
        self.stdout = stdout


class GitTimedOut(OperationalError):
    """A git command ran past its ``timeout`` and was killed (a remote that never answers)."""


def run(
    args: Sequence[str],
    cwd: Path,
    action: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    try:
        proc = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            input=stdin.encode("utf-8") if stdin is not None else None,
            capture_output=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitTimedOut(f"git took over {timeout:g} s to {action}") from exc
    except OSError as exc:
        raise OperationalError(
            f"could not run git to {action}: {exc.strerror}", hint="is git installed?"
        ) from exc
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        stdout = proc.stdout.decode("utf-8", "replace")
        raise GitFailed(f"git failed to {action}: {stderr_line(stderr)}", stderr, stdout)
    return proc.stdout.decode("utf-8", "surrogateescape")


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


def redacted_text(text: str) -> str:
    """``text`` (what git said) with every URL in it redacted: git repeats the URL it was
    given, password, ``?token=`` and all."""
    return _URL_IN_TEXT.sub(lambda m: redacted_url(m[0]), text)


def stderr_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return redacted_text(line)
    return redacted_text(lines[-1]) if lines else "unknown error"
