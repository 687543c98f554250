"""``mvctl check``: is the registry consistent? Aliases agree with their newest events (a
channel whose newest event is a stop has no alias, and only such a channel lacks one), every
event and alias points at a registered (not deregistered) version of its model, and every
version's manifest is schema-valid and matches its tag, its DVC file and dvc.yaml; mvctl.yaml
is valid and gives gates or monitors only to registered models."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels import state as channels
from mvctl.common import yamlio
from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.formats import config, tags
from mvctl.formats.labels import label_problems
from mvctl.formats.layout import manifest_path
from mvctl.formats.manifest import Manifest, problems
from mvctl.formats.names import check_text
from mvctl.publishing import publish
from mvctl.registry import recovery
from mvctl.registry.read import open_registry


@dataclass(frozen=True)
class CheckReport:
    models: int
    versions: int
    events: int
    problems: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "models": self.models,
            "versions": self.versions,
            "events": self.events,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _channel_problems(state: channels.ModelState) -> list[str]:
    found = []
    model = state.model
    for event in state.events:
        if event.version is None:
            found.append(f"{event.name} points at a commit with no version of {model}")
        elif (
            event.version in state.tags.deregistered
            and state.holder(event.channel) == event.version
        ):
            found.append(
                f"{event.name}: {model}@{event.channel} holds deregistered {event.version}"
            )
    channels_seen = {e.channel for e in state.events} | set(state.tags.aliases)
    for channel in sorted(channels_seen):
        alias = state.alias(channel)
        newest = state.channel_events(channel)[-1:] or None
        name = tags.alias_tag(model, channel)
        stopped = newest is not None and newest[0].kind == "stop"
        # The newest event is a stop exactly when the channel has no alias.
        if alias is None:
            if not stopped:
                found.append(f"{name} is missing but {newest[0].name if newest else '?'} exists")
            continue
        if stopped and newest is not None:
            found.append(f"{name} still exists but its newest event {newest[0].name} stopped it")
            continue
        if not newest:
            found.append(f"{name} has no assignment event")
        else:
            if newest[0].commit != alias.commit:
                found.append(
                    f"{name} points at {alias.commit[:12]} but its newest event "
                    f"{newest[0].name} points at {newest[0].commit[:12]}"
                )
            found += _alias_body_problems(model, channel, alias, newest[0])
            found += _chain_problems(state, channel, alias)
        if state.version_at(alias.commit) is None:
            found.append(f"{name} points at a commit with no version of {model}")
    return found


def _share(weight: float | None) -> str:
    return "no weight (no traffic)" if weight is None else f"{tags.weight_text(weight)}% of traffic"


def _alias_body_problems(
    model: str, channel: str, alias: TagRecord, newest: channels.Event
) -> list[str]:
    """An alias's body against the newest event of its channel. Hosts route by the body's
    weight and sync orders aliases by its counter, so a re-tag by hand that changes either
    changes what the fleet does with no event recording it. An alias with no body (a
    lightweight tag, or one annotated by hand with a message of its own) says no weight:
    it is consistent on a channel whose newest event gives none (hosts read its commit and
    nothing else), and a problem on a weighted one (hosts send that channel nothing)."""
    name = tags.alias_tag(model, channel)
    fields = tags.parse_message(alias.message)[1]
    body = tags.AliasBody.from_dict(fields)
    found = []
    if body.weight != newest.weight:
        why = ""
        if not fields:
            why = "is a lightweight tag, so it " if not alias.annotated else "has no body, so it "
        repair = ""
        if newest.weight is not None:
            shown = tags.weight_text(newest.weight)
            repair = f" (run 'mvctl canary weight {model} {shown}' to move it back with a record)"
        given = "no weight" if newest.weight is None else f"{tags.weight_text(newest.weight)}%"
        found.append(
            f"{name} {why}gives {channel} {_share(body.weight)} but its newest event "
            f"{newest.name} gives it {given}: hosts route what the alias says, and no event "
            f"records it{repair}"
        )
    if not fields or alias.commit != newest.commit:
        return found  # no body to compare, or moved: the commit's problem says it
    if (body.model, body.channel) != (model, channel):
        found.append(
            f"{name} names {body.model or '?'}@{body.channel or '?'} in its body, not the "
            f"channel of its newest event {newest.name}"
        )
    if (body.event, body.counter) != (newest.name, newest.counter):
        found.append(
            f"{name} names event {body.event or 'none'} (number {body.counter}), not its "
            f"newest event {newest.name} (number {newest.counter}): sync orders aliases by it"
        )
    if newest.version is not None and body.version != newest.version:
        found.append(
            f"{name} names version {body.version or 'none'}, not {newest.version} of its "
            f"newest event {newest.name}"
        )
    return found


def _chain_problems(state: channels.ModelState, channel: str, alias: TagRecord) -> list[str]:
    """The hints an alias body gives a fast rollback or promotion (its chain of the
    channel's newest events, the model's next counter, its channels) against every event:
    a move checks them against the tags they name, and this checks that nothing was left
    out of them or made up."""
    body = tags.AliasBody.from_dict(tags.parse_message(alias.message)[1])
    if not body.chain:
        return []  # an older mvctl's alias (or a hand-made one): moves read every event
    name = tags.alias_tag(state.model, channel)
    names = [e.name for e in state.channel_events(channel)]
    found = []
    if list(body.chain) != names[-len(body.chain) :]:
        found.append(
            f"{name} names {len(body.chain)} events as its channel's newest, but they are not "
            "the newest events of the channel (hand-edited or stale): a rollback will not "
            "trust it, re-tag it with a move ('mvctl promote' or 'mvctl rollback')"
        )
    if body.next > state.next_counter():  # behind is normal: other channels moved since
        found.append(
            f"{name} says the model's next event is number {body.next}, but its newest event "
            f"is number {max((e.counter for e in state.events), default=0)}"
        )
    missing = sorted(
        {e.channel for e in state.events if e.counter < body.counter} - set(body.channels)
    )
    if missing:
        found.append(f"{name} does not name the channels {', '.join(missing)} that have events")
    return found


def _labels_problems(state: channels.ModelState) -> list[str]:
    """Labels tags (``mvctl label``): each on the commit of a registered version, annotated,
    its body naming that version and tag number and holding ``KEY=VALUE`` labels only."""
    found = []
    for record in state.records:
        parsed = tags.parse(record.name)
        if parsed is None or parsed.kind != "labels":
            continue
        name, version = record.name, parsed.version
        tagged = state.tags.versions.get(version)
        if tagged is None:
            found.append(f"{name} labels {version}, which is not registered")
            continue
        if record.commit != tagged.commit:
            found.append(
                f"{name} points at {record.commit[:12]} but {state.model}@{version} is on "
                f"{tagged.commit[:12]}"
            )
        fields = tags.parse_message(record.message)[1]
        if not record.annotated or not fields:
            found.append(f"{name} has no body (a lightweight or hand-made tag): no labels")
            continue
        body = tags.LabelsBody.from_dict(fields)
        if (fields.get("kind"), body.model, body.version, body.counter) != (
            "labels",
            state.model,
            version,
            parsed.counter,
        ):
            found.append(f"{name} names another tag in its body ({body.model}@{body.version}"
                         f" #{body.counter})")  # fmt: skip
        found += [f"{name}: {p}" for p in label_problems(fields.get("labels"))]
        try:
            check_text(body.description.replace("\n", " "), "its description")
        except UsageError as exc:
            found.append(f"{name}: {exc.message}")
    return found


def _version_problems(git: GitRepo, state: channels.ModelState) -> list[str]:
    model = state.model
    specs: list[str] = []
    for record in state.tags.versions.values():
        specs += [f"{record.commit}:{manifest_path(model)}", f"{record.commit}:dvc.yaml"]
    blobs = git.read_blobs(specs)
    found: list[str] = []
    dvc_specs: dict[str, tuple[str, str]] = {}
    for version, record in sorted(state.tags.versions.items()):
        where = f"{model}@{version}"
        text = blobs.get(f"{record.commit}:{manifest_path(model)}")
        if text is None:
            found.append(f"{where}: no {manifest_path(model)} at its commit")
            continue
        try:
            data = yamlio.loads(text, f"{where} manifest")
        except MvctlError as exc:
            found.append(f"{where}: {exc.message}")
            continue
        found += [f"{where}: manifest {p}" for p in problems(data)]
        if not isinstance(data, dict):
            continue
        manifest = Manifest.from_dict(data)
        if (manifest.model, manifest.version) != (model, version):
            found.append(f"{where}: manifest says {manifest.model}@{manifest.version}")
        dvc_yaml = blobs.get(f"{record.commit}:dvc.yaml")
        artifacts = (yamlio.loads(dvc_yaml, "dvc.yaml") or {}) if dvc_yaml else {}
        if not isinstance(artifacts, dict) or model not in (artifacts.get("artifacts") or {}):
            found.append(f"{where}: dvc.yaml declares no artifact {model}")
        for entry in manifest.weights:
            if entry.path:
                spec = f"{record.commit}:{PurePosixPath(entry.path)}.dvc"
                dvc_specs[spec] = (where, entry.md5)
    for spec, text in git.read_blobs(list(dvc_specs)).items():
        where, md5 = dvc_specs[spec]
        path = spec.split(":", 1)[1]
        if text is None:
            found.append(f"{where}: {path} is missing")
            continue
        outs = (yamlio.loads(text, path) or {}).get("outs") or [{}]
        if str(outs[0].get("md5")) != md5:
            found.append(f"{where}: {path} records md5 {outs[0].get('md5')}, manifest {md5}")
    return found


def _config_problems(root: Path, registered: set[str]) -> list[str]:
    if not (root / config.CONFIG_FILE).is_file():
        return []
    try:
        return config.load(root).unregistered_problems(registered)
    except MvctlError as exc:
        return [exc.message]


def _history_problems(state: channels.ModelState) -> list[str]:
    """What a clone sees when moves were made somewhere and never all published: a version
    naming a parent nobody registered here, a gap in the event counter."""
    found = []
    model = state.model
    for version, record in sorted(state.tags.versions.items()):
        parent = tags.VersionBody.from_dict(tags.parse_message(record.message)[1]).parent
        if parent and parent not in state.tags.versions:
            found.append(
                f"{model}@{version} names parent {parent}, which is not registered here "
                "(was it never pushed?)"
            )
    gaps: list[str] = []
    seen: dict[int, str] = {}
    previous = 0
    for event in state.events:  # in counter order
        if event.counter in seen:
            found.append(
                f"{model}: event number {event.counter} is used twice ({seen[event.counter]},"
                f" {event.name}); numbers count per model across channels"
            )
        elif event.counter > previous + 1:
            first, last = previous + 1, event.counter - 1
            gaps.append(str(first) if first == last else f"{first}-{last}")
        seen.setdefault(event.counter, event.name)
        previous = max(previous, event.counter)
    if gaps:
        shown = ", ".join(gaps[:10]) + (" ..." if len(gaps) > 10 else "")
        found.append(
            f"{model}: assignment event(s) {shown} are missing (moves made elsewhere and "
            "never pushed?)"
        )
    return found


def _remote_problems(root: Path, remote: str) -> tuple[list[str], list[str]]:
    """Local tags the remote lacks (problems), or why the remote could not be compared."""
    try:
        found = publish.status(root, remote)
    except MvctlError as exc:
        return [], [f"not compared with {remote}: {exc.message}"]
    problems = [
        f"{name} is not on {remote}: hosts following it do not see it (run 'mvctl push')"
        for name in found.tags
    ]
    problems += [
        f"{name} on {remote} is behind the local one: hosts follow {remote}'s (run 'mvctl push')"
        if old
        else f"{name} is not on {remote}: hosts following it do not see it (run 'mvctl push')"
        for name, old in sorted(found.aliases.items())
    ]
    problems += [
        f"{name} is still on {remote} although a stop here deleted it: hosts following it "
        "still serve it (run 'mvctl push')"
        for name in sorted(found.deletions)
    ]
    problems += [f"{name} differs from {remote}'s" for name in found.conflicts]
    return problems, []


def _refuse_tagless(git: GitRepo, remote: str) -> None:
    """Manifests in the work tree, not one registry tag here, and the remote has their
    models' tags: a clone without its tags (a CI checkout is tagless by default), not a
    consistent registry of 0 models, nor a registration interrupted once per manifest (a
    first registration killed before its tag has no tag on the remote either)."""
    manifests = sorted(p.parent.name for p in (git.root / "registry").glob("*/manifest.yaml"))
    if not manifests:
        return
    try:
        remote_has = git.remote_tags(remote, [f"{tags.TAG_PREFIX}{m}@*" for m in manifests])
    except MvctlError:
        return  # an unreachable remote: the usual report
    if remote_has:
        raise OperationalError(
            f"this clone has no registry tags, but manifests of {', '.join(manifests)}: "
            "versions, events and channels are tags, and they were not fetched",
            hint="git fetch --force --tags origin (in CI: fetch-depth: 0 and fetch-tags: true)",
        )


def check(root: Path, *, remote: str = "origin", offline: bool = False) -> CheckReport:
    """Consistency of the local registry and, unless ``offline`` (or there is no such git
    remote), what ``remote`` lacks of it."""
    git = open_registry(root)
    models = sorted(
        {parsed.model for r in git.tags("refs/tags/") if (parsed := tags.parse(r.name))}
    )
    if not models and not offline and git.remote_url(remote) is not None:
        _refuse_tagless(git, remote)
    found: list[str] = []
    registered: set[str] = set()
    versions = events = 0
    for model in models:
        state = channels.load(git, model)
        versions += len(state.tags.versions)
        events += len(state.events)
        if not state.tags.versions:
            found.append(f"{model} has channel tags but no registered version")
            continue
        registered.add(model)
        found += _channel_problems(state)
        found += _history_problems(state)
        found += _labels_problems(state)
        found += _version_problems(git, state)
    found += _config_problems(git.root, registered)
    found += [
        f"{left.describe()} (run 'mvctl register {left.model} --resume' at it)"
        for left in recovery.unfinished(git)
    ]
    notes: list[str] = []
    if not offline and models and git.remote_url(remote) is not None:
        remote_found, notes = _remote_problems(git.root, remote)
        found += remote_found
    return CheckReport(len(models), versions, events, tuple(found), tuple(notes))
