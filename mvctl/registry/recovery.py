"""Interrupted registrations: a `register` killed between its commit and its tag leaves a
commit "Register MODEL vX.Y.Z" that no version tag names. The next `register` of that model
refuses to stack a version on it, `mvctl check` reports it, and
`mvctl register MODEL --resume` finishes it: the artifacts were uploaded before the commit,
so what is missing is the tag (and publishing it)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mvctl._adapters.git import GitFailed, GitRepo
from mvctl.errors import PolicyError
from mvctl.formats import tags
from mvctl.formats.names import NAME_RE, SEMVER_RE

_NAME = NAME_RE.pattern.strip("^$")
_SEMVER = SEMVER_RE.pattern.strip("^$")
_SUBJECT = re.compile(rf"Register (?P<model>{_NAME}) (?P<version>{_SEMVER})")


@dataclass(frozen=True)
class Unfinished:
    model: str
    version: str
    commit: str

    def describe(self) -> str:
        return (
            f"commit {self.commit[:12]} 'Register {self.model} {self.version}' has no tag "
            f"{tags.version_tag(self.model, self.version)}: an interrupted registration"
        )


def _subject(git: GitRepo, rev: str) -> tuple[str, str] | None:
    try:
        out = git.run("log", "-1", "--format=%H%x00%s", rev, "--", action="read a commit")
    except GitFailed:
        return None
    commit, _, subject = out.strip().partition("\0")
    return (commit, subject) if commit else None


def unfinished_at_head(git: GitRepo, model: str) -> Unfinished | None:
    """HEAD, when it is ``model``'s registration commit and no tag of that version exists."""
    found = _subject(git, "HEAD")
    if found is None:
        return None
    commit, subject = found
    match = _SUBJECT.fullmatch(subject)
    if match is None or match["model"] != model:
        return None
    version = match["version"]
    if git.tags(f"{tags.TAG_PREFIX}{tags.version_tag(model, version)}"):
        return None
    return Unfinished(model, version, commit)


def unfinished(git: GitRepo) -> list[Unfinished]:
    """Every registration commit reachable from HEAD whose version tag does not exist."""
    if git.head_commit() is None:
        return []
    out = git.run(
        "log", "--format=%H%x00%s", "--grep=^Register ", "HEAD", "--", action="walk history"
    )
    existing = {r.name for r in git.tags(tags.ALL_VERSIONS_GLOB)}
    found = []
    for line in out.splitlines():
        commit, _, subject = line.partition("\0")
        match = _SUBJECT.fullmatch(subject)
        if match and tags.version_tag(match["model"], match["version"]) not in existing:
            found.append(Unfinished(match["model"], match["version"], commit))
    return found


def unfinished_error(left: Unfinished) -> PolicyError:
    return PolicyError(
        f"HEAD is {left.describe()}",
        hint=f"finish it: 'mvctl register {left.model} --resume' (tags and publishes it); or "
        "drop it: 'git reset --soft HEAD~1'",
    )
