"""Moving channels: promote (through gates), roll back, mark gold, retire.

Every move writes an assignment event ``MODEL#CHANNEL#N`` and moves the alias
``MODEL@CHANNEL`` in one ``git update-ref --stdin`` transaction: the event is created only if
its name is free and the alias moves only if it still points where we read it (compare-and-
swap). With ``push`` the same two refs go to the remote in one atomic push with
``--force-with-lease`` on the alias; a loser of any race gets ConflictError (exit 4) and
nothing it wrote remains.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mvctl import channels, config, tags
from mvctl._adapters.git import GitRepo
from mvctl.errors import OperationalError, PolicyError, UsageError
from mvctl.gates import GateReport, evaluate
from mvctl.names import Version, check_channel, check_model
from mvctl.registry import read_manifest, unknown_model
from mvctl.sync import check_remote_name, sync_git

MoveKind = Literal["promote", "rollback", "override"]


@dataclass(frozen=True)
class ChannelMove:
    model: str
    channel: str
    version: str
    previous: str | None
    kind: MoveKind
    event: str  # the event tag written (or that would be written)
    reason: str
    actor: str
    time: str
    gates: GateReport | None = None
    request: str | None = None
    pushed: bool = False
    dry_run: bool = False
    changed: bool = True  # False when the channel already held the version
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "channel": self.channel,
            "version": self.version,
            "previous": self.previous,
            "kind": self.kind,
            "event": self.event,
            "reason": self.reason,
            "actor": self.actor,
            "time": self.time,
            "gates": self.gates.to_dict() if self.gates else None,
            "request": self.request,
            "incident": self.incident,
            "pushed": self.pushed,
            "dry_run": self.dry_run,
            "changed": self.changed,
        }


@dataclass(frozen=True)
class _Context:
    git: GitRepo
    state: channels.ModelState
    remote_alias: str | None  # the alias object on the remote, when pushing ("" = none)

    def config(self) -> config.RegistryConfig:
        return config.load(self.git.root)


def _known_channel(git: GitRepo, channel: str) -> config.RegistryConfig:
    cfg = config.load(git.root)
    if channel not in cfg.channels:
        raise UsageError(
            f"unknown channel {channel!r}",
            hint=f"channels in mvctl.yaml: {', '.join(cfg.channels)}",
        )
    return cfg


def _open(
    root: Path, model: str, channel: str, push: bool, remote: str, *, need_config: bool = True
) -> _Context:
    check_model(model)
    check_channel(channel)
    git = GitRepo.open(root)
    if need_config:
        _known_channel(git, channel)
    remote_alias = None
    if push:
        # Decide on the remote's state: fetch it first; the lease below covers the rest.
        synced = sync_git(git, check_remote_name(remote), model)
        remote_alias = synced.remote_objects.get(tags.alias_tag(model, channel), "")
    state = channels.load(git, model)
    if not state.tags.versions:
        raise unknown_model(model)
    return _Context(git, state, remote_alias)


def _require_version(state: channels.ModelState, version: str) -> None:
    Version.parse(version)
    if version not in state.tags.versions:
        raise OperationalError(
            f"{state.model} has no version {version}", hint=f"see 'mvctl list {state.model}'"
        )
    if version in state.tags.deregistered:
        raise PolicyError(
            f"{state.model} {version} is deregistered; a channel never points at it",
            hint="pick a registered version",
        )


def gate_report(
    git: GitRepo,
    cfg: config.RegistryConfig,
    state: channels.ModelState,
    version: str,
    channel: str,
    eval_data: Path | None = None,
) -> GateReport:
    model = state.model
    holder = state.holder(channel)
    commit = state.tags.versions[version].commit
    candidate = read_manifest(git, model, version, commit)
    current = None
    if holder is not None:
        current = read_manifest(git, model, holder, state.tags.versions[holder].commit)
    check = _data_check(git, cfg, model, commit, eval_data) if eval_data else None
    rules = cfg.rules_for(model, "gates", channel, lambda m: bool(git.tags(tags.version_glob(m))))
    results = evaluate(rules, candidate, current, check)
    return GateReport(model, version, channel, holder, results)


def _data_check(
    git: GitRepo, cfg: config.RegistryConfig, model: str, commit: str, eval_data: Path
) -> Any:
    """Drift and bias gates: the monitors' rules, on validation data, against the candidate's
    own reference profile; a rule that cannot be evaluated fails closed."""
    from mvctl import monitor
    from mvctl.gates import GateResult

    frame = monitor.load_live(eval_data, None)
    reference = monitor.read_profile(git, model, commit)
    roles = monitor.Roles.from_config(cfg.model(model).raw)

    def check(rule: Any) -> GateResult:
        [result] = monitor.evaluate([rule], reference, frame, None, roles).results
        return GateResult(result.rule, result.level in ("ok", "warn"), result.detail)

    return check


def validate(
    root: Path, model: str, version: str, channel: str, eval_data: Path | None = None
) -> GateReport:
    """Run ``channel``'s gates for ``version`` without moving anything."""
    ctx = _open(root, model, channel, push=False, remote="origin")
    _require_version(ctx.state, version)
    return gate_report(ctx.git, ctx.config(), ctx.state, version, channel, eval_data)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(ctx: _Context, move: ChannelMove, remote: str) -> ChannelMove:
    """The event and the alias, locally by CAS and, with a remote, by an atomic leased push."""
    git, state = ctx.git, ctx.state
    commit = state.tags.versions[move.version].commit
    counter = tags.parse(move.event)
    assert counter is not None  # noqa: S101 - built by tags.event_tag just before
    body: dict[str, Any] = {
        "kind": move.kind,
        "model": move.model,
        "channel": move.channel,
        "version": move.version,
        "previous": move.previous,
        "counter": counter.counter,
        "reason": move.reason,
        "actor": move.actor,
        "time": move.time,
        "gates": [r.to_dict() for r in move.gates.results] if move.gates else [],
        "request": move.request,
        "incident": move.incident,
    }
    titles = {
        "promote": f"Promote {move.model} {move.version} to {move.channel}",
        "override": f"Promote {move.model} {move.version} to {move.channel} (gates overridden)",
        "rollback": f"Roll back {move.model} {move.channel} from {move.previous} to {move.version}",
    }
    alias = tags.alias_tag(move.model, move.channel)
    alias_body = {
        "kind": "alias",
        "model": move.model,
        "channel": move.channel,
        "version": move.version,
        "event": move.event,
        "counter": counter.counter,
    }
    event_obj, alias_obj = git.make_tags(
        [
            (move.event, commit, tags.format_message(titles[move.kind], body)),
            (alias, commit, tags.format_message(f"{alias} -> {move.version}", alias_body)),
        ]
    )
    old = state.alias(move.channel)
    alias_cmd = (
        f"update refs/tags/{alias} {alias_obj} {old.object}"
        if old
        else f"create refs/tags/{alias} {alias_obj}"
    )
    git.update_refs([f"create refs/tags/{move.event} {event_obj}", alias_cmd], what=alias)
    if ctx.remote_alias is None:
        return move
    try:
        git.push(
            remote,
            [f"refs/tags/{move.event}", f"refs/tags/{alias}"],
            leases={f"refs/tags/{alias}": ctx.remote_alias},
        )
    except BaseException:
        undo_alias = (
            f"update refs/tags/{alias} {old.object} {alias_obj}"
            if old
            else f"delete refs/tags/{alias} {alias_obj}"
        )
        git.update_refs([f"delete refs/tags/{move.event} {event_obj}", undo_alias], what=alias)
        raise
    return replace(move, pushed=True)


def promote(
    root: Path,
    model: str,
    version: str,
    channel: str,
    *,
    reason: str = "",
    force: bool = False,
    push: bool = False,
    remote: str = "origin",
    dry_run: bool = False,
    request: str | None = None,
    eval_data: Path | None = None,
) -> ChannelMove:
    """Move ``channel`` to ``version`` if the gates pass (or ``force`` with a reason)."""
    ctx = _open(root, model, channel, push and not dry_run, remote)
    cfg = ctx.config()
    if channel in cfg.model(model).review and request is None:
        raise PolicyError(
            f"promotions to {channel} need a reviewed request",
            hint=f"run 'mvctl propose {model} {version} --to {channel}' and merge its PR",
        )
    _require_version(ctx.state, version)
    holder = ctx.state.holder(channel)
    report = gate_report(ctx.git, cfg, ctx.state, version, channel, eval_data)
    kind: MoveKind = "promote"
    if not report.passed:
        if not force:
            failed = "; ".join(f"{r.gate} ({r.detail})" for r in report.failures())
            raise PolicyError(
                f"{model} {version} failed the {channel} gates: {failed}",
                hint="fix the model, or override with --force --reason TEXT",
            )
        if not reason.strip():
            raise UsageError("--force needs --reason: an override is recorded with its reason")
        kind = "override"
    move = ChannelMove(
        model=model,
        channel=channel,
        version=version,
        previous=holder,
        kind=kind,
        event=tags.event_tag(model, channel, ctx.state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=_now(),
        gates=report,
        request=request,
        dry_run=dry_run,
        changed=holder != version,
    )
    if dry_run or holder == version:
        return move
    return _write(ctx, move, remote)


def rollback(
    root: Path,
    model: str,
    channel: str = "production",
    *,
    reason: str,
    to: str | None = None,
    push: bool = False,
    remote: str = "origin",
    dry_run: bool = False,
    incident: str | None = None,
) -> ChannelMove:
    """Move ``channel`` back: to ``to``, or to the last gold version it held before. Never
    runs gates and never waits for review: the panic button must work. ``incident`` names the
    alert that caused it (recorded, so the same incident never rolls back twice)."""
    if not reason.strip():
        raise UsageError("a rollback needs --reason: it is recorded in the channel history")
    # The panic button reads no config on its way: a channel with an alias is a channel.
    ctx = _open(root, model, channel, push and not dry_run, remote, need_config=False)
    state = ctx.state
    current = state.holder(channel)
    if current is None:
        _known_channel(ctx.git, channel)
        raise PolicyError(f"{model}@{channel} holds no version: nothing to roll back")
    if to is not None:
        _require_version(state, to)
        target = to
    else:
        found, why = state.rollback_target(channel)
        if found is None:
            raise PolicyError(
                f"no version to roll {model}@{channel} back to: {why}",
                hint="choose one with --to VERSION",
            )
        target = found
    move = ChannelMove(
        model=model,
        channel=channel,
        version=target,
        previous=current,
        kind="rollback",
        event=tags.event_tag(model, channel, state.next_counter()),
        reason=reason,
        actor=ctx.git.ident(),
        time=_now(),
        dry_run=dry_run,
        changed=target != current,
        incident=incident,
    )
    if dry_run or target == current:
        return move  # already there: idempotent, so a repeated alert or retry is harmless
    return _write(ctx, move, remote)


@dataclass(frozen=True)
class VersionMark:
    model: str
    version: str
    tag: str
    reason: str
    pushed: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "tag": self.tag,
            "reason": self.reason,
            "pushed": self.pushed,
            "dry_run": self.dry_run,
        }


def _mark(
    root: Path,
    model: str,
    version: str,
    kind: Literal["gold", "deregister"],
    reason: str,
    push: bool,
    remote: str,
    dry_run: bool,
) -> VersionMark:
    check_model(model)
    git = GitRepo.open(root)
    if push and not dry_run:
        sync_git(git, check_remote_name(remote), model)
    state = channels.load(git, model)
    _require_version(state, version)
    name = tags.gold_tag(model, version) if kind == "gold" else tags.deregister_tag(model, version)
    if kind == "deregister":
        holders = [c for c in state.tags.aliases if state.holder(c) == version]
        if holders:
            raise PolicyError(
                f"{model} {version} is held by {', '.join(sorted(holders))}",
                hint="promote or roll back those channels to another version first",
            )
    elif version in state.tags.gold:
        return VersionMark(model, version, name, reason, dry_run=dry_run)
    mark = VersionMark(model, version, name, reason, dry_run=dry_run)
    if dry_run:
        return mark
    title = f"{'Mark' if kind == 'gold' else 'Deregister'} {model} {version}"
    body = {
        "kind": kind,
        "model": model,
        "version": version,
        "reason": reason,
        "actor": git.ident(),
        "time": _now(),
    }
    obj = git.create_annotated_tag(
        name, state.tags.versions[version].commit, tags.format_message(title, body)
    )
    if push:
        try:
            git.push(remote, [f"refs/tags/{name}"])
        except BaseException:
            git.update_refs([f"delete refs/tags/{name} {obj}"], what=name)
            raise
    return replace(mark, pushed=push)


def mark_gold(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool = False,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Vouch for a version: rollbacks may choose it (unless later rolled back from)."""
    return _mark(root, model, version, "gold", reason, push, remote, dry_run)


def retire(
    root: Path,
    model: str,
    version: str,
    *,
    reason: str = "",
    push: bool = False,
    remote: str = "origin",
    dry_run: bool = False,
) -> VersionMark:
    """Deregister a version (GTO's ``MODEL@vX.Y.Z!``); refused while any channel holds it."""
    return _mark(root, model, version, "deregister", reason, push, remote, dry_run)


def history(root: Path, model: str, channel: str | None = None) -> list[channels.Event]:
    check_model(model)
    if channel is not None:
        check_channel(channel)
    state = channels.load(GitRepo.open(root), model)
    if not state.tags.versions:
        raise unknown_model(model)
    return [e for e in state.events if channel is None or e.channel == channel]
