"""``mvctl list MODEL`` with what a version's tags say beyond its version tag: labels,
description and data window (mvctl.registry.read.annotations_of), its status (gold, bad,
retired, deregistered) and the channels it served; the filters ``--label``, ``--metric``
and ``--channel``; and ``promote --select``'s choice of the newest gold version that
matches.

Every version's row (mvctl.registry.read.ListedVersion) comes from one read of the model's
tags, kept in the derived index (mvctl.registry.index) as the ``catalog`` view; filters
apply to the rows, so no filter costs a git call per version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import TagRecord
from mvctl.channels import moves
from mvctl.channels import state as channels
from mvctl.errors import PolicyError, UsageError, unknown_model
from mvctl.formats import tags
from mvctl.formats.labels import LabelFilter, MetricFilter, Selector, matches
from mvctl.formats.names import check_channel, check_model
from mvctl.registry import index
from mvctl.registry.read import (
    LISTED_ROWS,
    ListedVersion,
    annotations_of,
    model_info,
    open_registry,
    sorted_versions,
)

Status = Literal["gold", "bad", "retired", "deregistered"]
STATUSES: tuple[Status, ...] = ("gold", "bad", "retired", "deregistered")


@dataclass(frozen=True)
class Filters:
    """``list MODEL``'s filters, all of which a listed version passes (AND)."""

    labels: tuple[LabelFilter, ...] = ()
    metrics: tuple[MetricFilter, ...] = ()
    channel: str | None = None  # held it, now or before

    @property
    def empty(self) -> bool:
        return not self.labels and not self.metrics and self.channel is None

    @property
    def selectors(self) -> tuple[Selector, ...]:
        return (*self.labels, *self.metrics)

    def passes(self, item: ListedVersion) -> bool:
        if self.channel is not None and self.channel not in item.served:
            return False
        return matches(self.selectors, item.labels, item.info.metrics)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [f"{f.key}={f.value}" for f in self.labels],
            "metrics": [str(f).removeprefix("metric ") for f in self.metrics],
            "channel": self.channel,
        }


def status_of(
    state: channels.ModelState,
    version: str,
    standing: dict[str, str],
    records: dict[str, TagRecord] | None = None,
) -> str | None:
    """retired (``mvctl retire``) or deregistered (pruned by ``mvctl gc``, or by another
    tool); else bad when a channel was rolled back away from it, else gold when one
    replaced it (or a person marked it); else None. ``records``: the state's tags by name."""
    if version in state.tags.deregistered:
        by_name = records if records is not None else {r.name: r for r in state.records}
        record = by_name.get(tags.deregister_tag(state.model, version))
        if record is None:
            return "deregistered"
        body = tags.parse_message(record.message)[1]
        retired = body.get("kind") == "deregister" and not tags.MarkBody.from_dict(body).pruned
        return "retired" if retired else "deregistered"
    values = set(standing.values())
    if "bad" in values:
        return "bad"
    if "gold" in values or version in state.tags.gold:
        return "gold"
    return None


def _listed(model: str, records: list[TagRecord]) -> list[ListedVersion]:
    """Every version, in SemVer order, from one read of the model's tags: one pass over
    them and one over each channel's events."""
    state = channels.from_records(model, records)
    if not state.tags.versions:
        raise unknown_model(model)
    per_channel = {c: state.standing(c) for c in sorted(state.known_channels())}
    by_name = {r.name: r for r in state.records}
    served: dict[str, set[str]] = {}
    for event in state.events:
        if event.version is not None and event.kind != "stop":
            served.setdefault(event.version, set()).add(event.channel)
    listed = []
    for version in sorted_versions(list(state.tags.versions)):
        standing: dict[str, str] = {c: s[version] for c, s in per_channel.items() if version in s}
        found = annotations_of(state.tags, version)
        listed.append(
            ListedVersion(
                model_info(model, version, state.tags),
                found.labels,
                found.description,
                found.data_window,
                found.tag,
                status_of(state, version, standing, by_name),
                standing,
                tuple(sorted(served.get(version, ()))),
            )
        )
    return listed


def catalog(root: Path, model: str, filters: Filters | None = None) -> list[ListedVersion]:
    """``model``'s versions (in SemVer order) that pass ``filters``, with their status."""
    check_model(model)
    if filters is not None and filters.channel is not None:
        check_channel(filters.channel)
    git = open_registry(root)
    listed = index.cached(git, "catalog", model, _patterns(model), _builder(model), LISTED_ROWS)
    if filters is None or filters.empty:
        return listed
    return [v for v in listed if filters.passes(v)]


def catalog_dicts(root: Path, model: str) -> list[dict[str, Any]]:
    """``[v.to_dict() for v in catalog(root, model)]``, made from the index's rows at once."""
    check_model(model)
    git = open_registry(root)
    build = _builder(model)
    return index.cached_as(
        git, "catalog", model, _patterns(model), build, LISTED_ROWS, ListedVersion.dict_of_row
    )


def _patterns(model: str) -> list[str]:
    return [f"{tags.TAG_PREFIX}{model}@*", tags.event_glob(model)]


def _builder(model: str) -> Callable[[list[TagRecord]], list[ListedVersion]]:
    return lambda records: _listed(model, records)


# --- promote --select ---------------------------------------------------------------------


def select(state: channels.ModelState, channel: str, selectors: Sequence[Selector]) -> str:
    """The newest version (SemVer) that passes every selector and is gold on ``channel`` (it
    served there and was replaced, not rolled back from, or a person marked it), or the one
    ``channel`` holds when that passes and is newer. A policy refusal (exit 1) when none."""
    standing = state.standing(channel)
    holder = state.holder(channel)
    matching: list[str] = []
    for version in state.tags.versions:
        if not state.is_live(version):
            continue
        body = tags.VersionBody.from_dict(
            tags.parse_message(state.tags.versions[version].message)[1]
        )
        found = annotations_of(state.tags, version)
        if matches(selectors, found.labels, body.metrics):
            matching.append(version)
    chosen = [v for v in matching if standing.get(v) == "gold" or v == holder]
    if chosen:
        return sorted_versions(chosen)[-1]
    wanted = " and ".join(str(s) for s in selectors)
    others = ", ".join(
        f"{v} ({'bad' if standing.get(v) == 'bad' else 'not gold'})"
        for v in sorted_versions(matching)
    )
    raise PolicyError(
        f"no gold version of {state.model} on {channel} matches {wanted}"
        + (f"; matching but not gold there: {others}" if others else ""),
        hint=f"see 'mvctl list {state.model} --label KEY=VALUE'; promote a version by name,"
        " or vouch for one with 'mvctl mark-gold'",
    )


def choose(root: Path, model: str, channel: str, selectors: Sequence[Selector]) -> ListedVersion:
    """The version ``promote --select`` would choose on ``channel`` now (:func:`select`),
    as ``list MODEL`` lists it, read from this clone's tags (nothing is fetched)."""
    check_model(model)
    check_channel(channel)
    if not selectors:
        raise UsageError("--select needs a selector", hint="e.g. --select 'label season=holiday'")
    git = open_registry(root)
    moves.known_channel(git, channel)
    state = channels.load(git, model)
    if not state.tags.versions:
        raise unknown_model(model)
    version = select(state, channel, selectors)
    return next(v for v in catalog(root, model) if v.version == version)
