"""The one error family: each error owns its message, hint and exit code (DESIGN.md)."""

from __future__ import annotations


class MvctlError(Exception):
    """Base of every error mvctl reports to a user; never shown with a traceback by default."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class PolicyError(MvctlError):
    """Refused by policy: a gate failed, a version exists, the tree is dirty, a hash mismatched."""

    exit_code = 1


class UsageError(MvctlError):
    """The command was called with words that cannot mean anything (bad name, bad version)."""

    exit_code = 2


class OperationalError(MvctlError):
    """A file, repo, git or DVC operation failed; nothing was changed."""

    exit_code = 3


class NotFoundError(OperationalError):
    """The registry has no such model (or version): looking again will not find it."""


class ConflictError(MvctlError):
    """Someone else changed the same ref first; nothing was changed, retrying is safe."""

    exit_code = 4


class Interrupted(MvctlError):
    """SIGINT or SIGTERM stopped a command; the message says which state it left."""

    exit_code = 130


# Factories: one wording and one exit code per situation, whichever command meets it.


def unknown_model(model: str) -> NotFoundError:
    return NotFoundError(
        f"model {model!r} has no registered versions", hint="see 'mvctl list' for models"
    )


def unknown_version(model: str, version: str) -> NotFoundError:
    return NotFoundError(f"{model} has no version {version}", hint=f"see 'mvctl list {model}'")


def deregistered(model: str, version: str, *, pruned: bool = False) -> PolicyError:
    if pruned:
        return PolicyError(
            f"{model} {version} was pruned by 'mvctl gc' (its artifacts are gone from the DVC"
            " remote); a channel never points at it",
            hint="pick a kept version ('mvctl list' shows which are deregistered); the pruned"
            " one can still be inspected with show, diff and lineage",
        )
    return PolicyError(
        f"{model} {version} is deregistered; a channel never points at it",
        hint="pick a registered version",
    )


def unknown_channel(channel: str, channels: tuple[str, ...]) -> UsageError:
    return UsageError(
        f"unknown channel {channel!r}", hint=f"channels in mvctl.yaml: {', '.join(channels)}"
    )


def holds_no_version(model: str, channel: str, consequence: str) -> NotFoundError:
    """``channel`` of ``model`` points at nothing, so there is ``consequence`` (a refusal
    to move it is a PolicyError of the caller's own words instead)."""
    return NotFoundError(f"{model}@{channel} holds no version: {consequence}")
