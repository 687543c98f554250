"""``mvctl list MODEL`` with what a version's tags say beyond its version tag: labels,
description and data window (mvctl.registry.read.annotations_of), its status (gold, bad,
retired, deregistered) and the channels it served; the filters ``--label``, ``--metric``
and ``--channel``; and ``promote --select``'s choice of the newest gold version that
matches.

The status of every version comes from one read of the model's tags, kept in the derived
index (mvctl.registry.index) as the ``catalog`` view beside ``list``'s ``versions`` view;
filters apply to the rows, so no filter costs a git call per version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels import state as channels
from mvctl.errors import PolicyError
from mvctl.formats import tags
from mvctl.formats.labels import LabelFilter, MetricFilter, Selector, matches
from mvctl.formats.names import check_channel, check_model
from mvctl.registry import index
from mvctl.registry.read import (
    Annotations,
    VersionInfo,
    annotations_of,
    list_versions,
    sorted_versions,
)

Status = Literal["gold", "bad", "retired", "deregistered"]
STATUSES: tuple[Status, ...] = ("gold", "bad", "retired", "deregistered")


@dataclass(frozen=True)
class CatalogRow:
    """One version's row of the ``catalog`` view."""

    version: str
    labels: list[str]
    description: str
    data_window: dict[str, Any] | None
    labels_tag: str | None
    status: str | None
    standing: dict[str, str]  # channel -> gold or bad
    served: list[str]  # channels that held it, now or before

    def to_row(self) -> list[Any]:
        return [
            self.version,
            self.labels,
            self.description,
            self.data_window,
            self.labels_tag,
            self.status,
            self.standing,
            self.served,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> CatalogRow:
        version, labels, description, window, labels_tag, status, standing, served = row
        return cls(version, labels, description, window, labels_tag, status, standing, served)


_ROWS = index.rows_of(CatalogRow, CatalogRow.to_row, CatalogRow.from_row)


@dataclass(frozen=True)
class ListedVersion:
    info: VersionInfo
    annotations: Annotations
    status: str | None
    standing: dict[str, str] = field(default_factory=dict)
    served: tuple[str, ...] = ()

    @property
    def version(self) -> str:
        return self.info.version

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info.to_dict(),
            **self.annotations.to_dict(),
            "status": self.status,
            "standing": self.standing,
            "served": list(self.served),
        }


@dataclass(frozen=True)
class Filters:
    """``list MODEL``'s filters, all of which a listed version passes (AND)."""

    labels: tuple[LabelFilter, ...] = ()
    metrics: tuple[MetricFilter, ...] = ()
    channel: str | None = None  # held it, now or before

    @property
    def selectors(self) -> tuple[Selector, ...]:
        return (*self.labels, *self.metrics)

    def passes(self, item: ListedVersion) -> bool:
        if self.channel is not None and self.channel not in item.served:
            return False
        return matches(self.selectors, item.annotations.labels, item.info.metrics)

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


def _standings(state: channels.ModelState) -> list[CatalogRow]:
    """Every version's row, in one pass over the tags and one per channel's events."""
    per_channel = {c: state.standing(c) for c in sorted(state.known_channels())}
    records = {r.name: r for r in state.records}
    served: dict[str, set[str]] = {}
    for event in state.events:
        if event.version is not None and event.kind != "stop":
            served.setdefault(event.version, set()).add(event.channel)
    rows = []
    for version in state.tags.versions:
        standing: dict[str, str] = {c: s[version] for c, s in per_channel.items() if version in s}
        found = annotations_of(state.tags, version)
        rows.append(
            CatalogRow(
                version,
                list(found.labels),
                found.description,
                found.data_window,
                found.tag,
                status_of(state, version, standing, records),
                standing,
                sorted(served.get(version, ())),
            )
        )
    return rows


def catalog(root: Path, model: str, filters: Filters | None = None) -> list[ListedVersion]:
    """``model``'s versions (in SemVer order) that pass ``filters``, with their status."""
    check_model(model)
    if filters is not None and filters.channel is not None:
        check_channel(filters.channel)
    versions = list_versions(root, model)  # the 'versions' view; refuses an unknown model
    git = GitRepo.open(root)

    def build(records: list[TagRecord]) -> list[CatalogRow]:
        return _standings(channels.from_records(model, records))

    patterns = [f"{tags.TAG_PREFIX}{model}@*", tags.event_glob(model)]
    rows = {r.version: r for r in index.cached(git, "catalog", model, patterns, build, _ROWS)}
    listed = []
    for info in versions:
        row = rows.get(info.version)
        if row is None:  # a tag changed between the two reads: the next list agrees
            listed.append(ListedVersion(info, Annotations(), None))
            continue
        found = Annotations(tuple(row.labels), row.description, row.data_window, row.labels_tag)
        listed.append(ListedVersion(info, found, row.status, dict(row.standing), tuple(row.served)))
    return [v for v in listed if filters is None or filters.passes(v)]


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
