"""Promoting a version to a channel, through the channel's gates (and ``validate``, which
runs them without moving anything).

How a move is written and published is mvctl.channels.moves; this module decides which move
a promotion means: promoting the version a channel already holds does nothing, unless that
move was never published (then it is published now) or a new ``weight`` is asked for (then it
is a weight change). A promotion to canary records a weight, the default unless given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mvctl._adapters.git import GitRepo
from mvctl.analysis import rules
from mvctl.analysis.tables import load_live
from mvctl.channels import catalog, moves, weights
from mvctl.channels import state as channels
from mvctl.channels.gates import DataCheck, GateReport, GateResult, evaluate
from mvctl.channels.moves import ChannelMove, MoveKind, now
from mvctl.errors import (
    ConflictError,
    PolicyError,
    UsageError,
    unknown_model,
)
from mvctl.formats import config, tags
from mvctl.formats.labels import Selector
from mvctl.formats.names import check_channel, check_model, check_text
from mvctl.formats.rules import DataRule
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry.read import read_manifest, read_profile


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
) -> DataCheck:
    """Drift and bias gates: the monitors' rules, on validation data, against the candidate's
    own reference profile; a rule that cannot be evaluated fails closed."""
    frame = load_live(eval_data, None)
    reference = read_profile(git, model, commit)
    roles = rules.Roles.from_config(cfg.model(model).raw)

    def check(rule: DataRule) -> GateResult:
        [result] = rules.evaluate([rule], reference, frame, None, roles).results
        return GateResult(result.rule, result.level in ("ok", "warn"), result.detail)

    return check


def validate(
    root: Path, model: str, version: str, channel: str, eval_data: Path | None = None
) -> GateReport:
    """Run ``channel``'s gates for ``version`` without moving anything."""
    ctx = moves.open_channel(root, model, channel, push=False, remote="origin")
    channels.require_version(ctx.state, version)
    return gate_report(ctx.git, ctx.config(), ctx.state, version, channel, eval_data)


def promote(
    root: Path,
    model: str,
    version: str,
    channel: str,
    *,
    reason: str = "",
    force: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    request: str | None = None,
    eval_data: Path | None = None,
    weight: float | None = None,
    evidence: dict[str, Any] | None = None,
    expect: Callable[[channels.ModelState], None] | None = None,
) -> ChannelMove:
    """Move ``channel`` to ``version`` if the gates pass (or ``force`` with a reason).
    ``push``: True publishes (an error without the remote), False keeps the move local, None
    follows the registry's rule (publish when the remote exists, unless ``push: never``).
    ``weight``: the channel's percent of traffic (canary channels; refused for production
    and shadow); a promotion to canary without one records the default. ``evidence``: the
    canary analysis that decided the promotion (mvctl.canary), recorded in the event;
    ``expect`` re-checks the state just fetched (raising to refuse) before anything else."""
    check_text(reason, "--reason")
    if weight is not None:
        tags.refuse_weight(channel)
        weight = tags.check_weight(weight)
    # A promotion reads the channel's alias chain and the version's tags, not every event
    # (mvctl.channels.quick); a canary's ``expect`` judges the whole state.
    quick = (version,) if expect is None else None
    ctx = moves.open_channel(root, model, channel, push, remote, dry_run=dry_run, quick=quick)
    if expect is not None:
        expect(ctx.state)
    cfg = ctx.config()
    if channel in cfg.model(model).review and request is None:
        raise PolicyError(
            f"promotions to {channel} need a reviewed request",
            hint=f"run 'mvctl propose {model} {version} --to {channel}' and merge its PR",
        )
    channels.require_version(ctx.state, version)
    holder = ctx.state.holder(channel)
    if holder == version and ctx.alias_pending(channel):
        return moves.complete(ctx, channel, f"published the pending move to {version}")
    if holder == version and weight is not None and weight != ctx.state.weight(channel):
        return weights.weight_on(ctx, channel, weight, reason=reason, dry_run=dry_run)
    recorded, note = weights.promotion_weight(ctx, channel, weight)
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
        time=now(ctx.git),
        gates=report,
        request=request,
        dry_run=dry_run,
        changed=holder != version,
        remote=ctx.remote,
        weight=recorded if holder != version else ctx.state.weight(channel),
        note=note if holder != version else "",
        evidence=evidence,
    )
    if dry_run or holder == version:
        return move
    return moves.write(ctx, move)


def promote_selected(
    root: Path,
    model: str,
    channel: str,
    selectors: Sequence[Selector],
    *,
    reason: str = "",
    force: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    dry_run: bool = False,
    eval_data: Path | None = None,
    weight: float | None = None,
) -> ChannelMove:
    """``promote`` of the newest gold version on ``channel`` that passes every selector
    (mvctl.channels.catalog.select), through the same gates, review and publishing. The
    choice is made on the remote's tags fetched first, and made again on the state the
    promotion reads: should they differ (a label or a move landed in between), nothing is
    done (exit 4: retry)."""
    check_model(model)
    check_channel(channel)
    if not selectors:
        raise UsageError("--select needs a selector", hint="e.g. --select 'label season=holiday'")
    git = GitRepo.open(root)
    moves.known_channel(git, channel)
    where = publish.target(git, push, remote)
    if where is not None and not dry_run:
        sync_git(git, where, model)
    state = channels.load(git, model)
    if not state.tags.versions:
        raise unknown_model(model)
    version = catalog.select(state, channel, selectors)
    wanted = " and ".join(str(s) for s in selectors)

    def same_choice(fresh: channels.ModelState) -> None:
        again = catalog.select(fresh, channel, selectors)
        if again != version:
            raise ConflictError(
                f"{wanted} chose {version}, but {again} once the tags were read again: "
                "they changed meanwhile; nothing done",
                hint="run the command again",
            )

    if not reason.strip() and not force:
        reason = f"selected: {wanted}"  # recorded in the event: what chose the version
    move = promote(
        root, model, version, channel, reason=reason, force=force, push=push, remote=remote,
        dry_run=dry_run, eval_data=eval_data, weight=weight, expect=same_choice,
    )  # fmt: skip
    return replace(move, selected=tuple(str(s) for s in selectors))
