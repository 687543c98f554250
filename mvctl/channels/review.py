"""Promotion by pull request: ``propose`` commits a request on a new branch; ``apply`` (CI on
the main branch) performs every merged request not yet performed, exactly once.

A request is ``registry/MODEL/requests/ID.yaml`` with a Markdown gate report beside it. It is
performed when an event of MODEL records ``request: ID``; apply checks that before
promoting, and the event's compare-and-swap settles races between concurrent applies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo
from mvctl.channels import state as channels
from mvctl.channels.gates import GateReport
from mvctl.channels.markdown import gates_markdown
from mvctl.channels.promotion import gate_report, promote
from mvctl.common import yamlio
from mvctl.errors import (
    ConflictError,
    MvctlError,
    OperationalError,
    deregistered,
    unknown_channel,
    unknown_version,
)
from mvctl.formats import config, tags
from mvctl.formats.layout import is_request_path, request_path
from mvctl.formats.names import NAME_RE, Version, check_channel, check_model
from mvctl.lineage.diff import diff
from mvctl.lineage.markdown import diff_markdown
from mvctl.publishing import publish
from mvctl.publishing.sync import SyncResult, check_remote_name, sync_git

REQUEST_SCHEMA = "mvctl/request/v1"
_ID_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,150}\Z")


@dataclass(frozen=True)
class Proposal:
    request_id: str
    branch: str
    commit: str | None
    path: str
    report: GateReport
    pushed: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request_id,
            "branch": self.branch,
            "commit": self.commit,
            "path": self.path,
            "gates": self.report.to_dict(),
            "pushed": self.pushed,
            "dry_run": self.dry_run,
        }


def report_markdown(root: Path, report: GateReport) -> str:
    """The gate report plus, when the channel holds a version, the diff against it."""
    text = gates_markdown(report)
    if report.holder is not None:
        text += "\n" + diff_markdown(diff(root, report.model, report.holder, report.version))
    return text


def propose(
    root: Path,
    model: str,
    version: str,
    channel: str,
    *,
    reason: str = "",
    push: bool = False,
    remote: str = "origin",
    dry_run: bool = False,
) -> Proposal:
    check_model(model)
    check_channel(channel)
    Version.parse(version)
    git = GitRepo.open(root)
    cfg = config.load(git.root)
    if channel not in cfg.channels:
        raise unknown_channel(channel, cfg.channels)
    state = channels.load(git, model)
    if version not in state.tags.versions:
        raise unknown_version(model, version)
    if version in state.tags.deregistered:
        raise deregistered(model, version)
    report = gate_report(git, cfg, state, version, channel)
    head = git.head_commit()
    if head is None:
        raise OperationalError("the repository has no commits yet")
    stamp = datetime.now(UTC)
    safe_version = re.sub(r"[^a-z0-9.-]", "-", version.lower())
    request_id = f"{model}-{channel}-{safe_version}-{stamp.strftime('%Y%m%dt%H%M%Sz')}"
    branch = f"mvctl/{request_id}"
    path = request_path(model, request_id)
    if dry_run:
        return Proposal(request_id, branch, None, path, report, dry_run=True)
    request = {
        "schema": REQUEST_SCHEMA,
        "id": request_id,
        "model": model,
        "version": version,
        "channel": channel,
        "reason": reason,
        "requested_by": git.ident(),
        "created": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gates": report.to_dict(),
    }
    files = {
        path: yamlio.dumps(request),
        path.removesuffix(".yaml") + ".md": report_markdown(git.root, report),
    }
    title = f"Promote {model} {version} to {channel}"
    commit = git.commit_on_new_branch(branch, head, files, f"{title}\n\n{reason}".strip())
    if push:
        try:
            git.push(check_remote_name(remote), [f"refs/heads/{branch}"])
        except MvctlError:
            git.update_refs([f"delete refs/heads/{branch} {commit}"], what=branch)
            raise
    return Proposal(request_id, branch, commit, path, report, pushed=push)


@dataclass(frozen=True)
class Applied:
    request_id: str
    model: str
    version: str
    channel: str
    status: Literal["performed", "already", "refused", "conflict", "invalid"]
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request_id,
            "model": self.model,
            "version": self.version,
            "channel": self.channel,
            "status": self.status,
            "detail": self.detail,
        }


def _requests(git: GitRepo) -> list[tuple[str, dict[str, Any] | None, str]]:
    """(path, request or None, problem) for every request file at HEAD."""
    found = []
    for _, _, path in git.tree_entries("HEAD"):
        if not is_request_path(path):
            continue
        parts = path.split("/")
        try:
            data = yamlio.loads(git.read_blob("HEAD", path) or "", path)
        except MvctlError as exc:
            found.append((path, None, exc.message))
            continue
        problem = _request_problem(data, parts[1], parts[3].removesuffix(".yaml"))
        found.append((path, None if problem else data, problem))
    return sorted(found, key=lambda item: item[0])


def _request_problem(data: Any, model: str, request_id: str) -> str:
    if not isinstance(data, dict) or data.get("schema") != REQUEST_SCHEMA:
        return "not an mvctl request"
    if data.get("id") != request_id or data.get("model") != model or not _ID_RE.match(request_id):
        return "id or model does not match the file's path"
    if not (isinstance(data.get("channel"), str) and NAME_RE.match(data["channel"])):
        return "invalid channel"
    if not (isinstance(data.get("version"), str) and Version.is_valid(data["version"])):
        return "invalid version"
    return ""


def _already(
    git: GitRepo,
    request: dict[str, Any],
    event: channels.Event,
    known: SyncResult | None,
) -> Applied:
    """A request an event performed: published now if the remote lacks that event (the push
    of the run that performed it was interrupted), else nothing to do."""
    rid, model = str(request["id"]), str(request["model"])
    version, channel = str(request["version"]), str(request["channel"])
    detail = f"performed by {event.name}"
    if known is None or event.name in known.remote_objects:
        return Applied(rid, model, version, channel, "already", detail)
    records = git.tags(f"{tags.TAG_PREFIX}{model}@*", f"{tags.TAG_PREFIX}{model}#*")
    try:
        publish.push_refs(git, publish.pending(records, known))
    except MvctlError as exc:
        return Applied(rid, model, version, channel, "conflict", exc.message)
    detail += f" (published to {known.remote} now: its push had not happened)"
    return Applied(rid, model, version, channel, "performed", detail)


def _perform(
    git: GitRepo,
    request: dict[str, Any],
    *,
    push: bool | None,
    remote: str,
    dry_run: bool,
    eval_data: Path | None,
) -> Applied:
    rid, model = str(request["id"]), str(request["model"])
    version, channel = str(request["version"]), str(request["channel"])
    reason = f"request {rid}" + (f": {request['reason']}" if request.get("reason") else "")
    try:
        move = promote(
            git.root,
            model,
            version,
            channel,
            reason=reason,
            push=push,
            remote=remote,
            dry_run=dry_run,
            request=rid,
            eval_data=eval_data,
        )
    except ConflictError as exc:
        return Applied(rid, model, version, channel, "conflict", exc.message)
    except MvctlError as exc:
        return Applied(rid, model, version, channel, "refused", exc.message)
    detail = ("would write " if dry_run else "wrote ") + move.event
    return Applied(rid, model, version, channel, "performed", detail)


def apply(
    root: Path,
    *,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    eval_data: Path | None = None,
) -> list[Applied]:
    """Perform every request at HEAD that no event has performed yet, with the gates
    (``eval_data`` feeds drift and bias gates, as for ``promote``). Whether an event
    performed a request is judged on the remote's tags, fetched first: a request performed
    here whose push was interrupted is published, not performed again."""
    git = GitRepo.open(root)
    where = publish.target(git, push, remote)
    synced: dict[str, SyncResult] = {}
    outcomes: list[Applied] = []
    for path, request, problem in _requests(git):
        if request is None:
            name = path.rsplit("/", 1)[-1].removesuffix(".yaml")
            outcomes.append(Applied(name, path.split("/")[1], "", "", "invalid", problem))
            continue
        model = str(request["model"])
        if where is not None and not dry_run and model not in synced:
            synced[model] = sync_git(git, where, model)
        rid = str(request["id"])
        performed = [e for e in channels.load(git, model).events if e.request == rid]
        if performed:
            outcome = _already(git, request, performed[0], synced.get(model))
            if outcome.status == "performed":
                del synced[model]  # the remote changed: fetch again for the next request
        else:
            outcome = _perform(
                git, request, push=push, remote=remote, dry_run=dry_run, eval_data=eval_data
            )
        outcomes.append(outcome)
    return outcomes
