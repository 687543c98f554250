"""``list`` and ``show`` by tag name: which versions, deregistrations and aliases a model has
is in the names of its tags, so these read the names (no tag opened) and then the few tags
they show by exact name (the aliases, the version shown), instead of every tag's contents.

An alias's commit is what it points at; its body's ``version`` is only a hint, used when the
version tag of that name is on that very commit. On any doubt (a lightweight alias, a body
naming another version or none) these answer None and the caller reads every tag
(mvctl.registry.read), so both ways give the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.formats import tags
from mvctl.formats.names import Version


@dataclass
class Names:
    """One model's tag names, by kind."""

    versions: set[str] = field(default_factory=set)
    deregistered: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)  # channel -> alias tag name

    def latest(self) -> str | None:
        live = [v for v in self.versions if v not in self.deregistered]
        return max(live, key=lambda v: Version.parse(v).sort_key()) if live else None


def names(git: GitRepo, model: str | None = None) -> dict[str, Names]:
    """model -> its tag names (events skipped), for one model or all of them."""
    pattern = f"{tags.TAG_PREFIX}{model}@*" if model else f"{tags.TAG_PREFIX}*@*"
    return names_of(git.ref_names(pattern))


def names_of(ref_names: Iterable[str]) -> dict[str, Names]:
    """:func:`names` of tag names listed already."""
    found: dict[str, Names] = {}
    for name in ref_names:
        parsed = tags.parse(name)
        if parsed is None or parsed.channel_event or parsed.kind in ("gold", "labels"):
            continue
        entry = found.setdefault(parsed.model, Names())
        if parsed.kind == "version":
            entry.versions.add(parsed.version)
        elif parsed.kind == "deregister":
            entry.deregistered.add(parsed.version)
        else:
            entry.aliases[parsed.channel] = name
    return {m: n for m, n in found.items() if n.versions}


@dataclass(frozen=True)
class Held:
    """What the aliases read by name say: channel -> (alias, version) per model, and the
    version tags read on the way."""

    aliases: dict[str, dict[str, TagRecord]]
    holders: dict[str, dict[str, str]]
    versions: dict[tuple[str, str], TagRecord]


def held(
    git: GitRepo, listed: dict[str, Names], extra: dict[str, str] | None = None
) -> Held | None:
    """Every alias of the ``listed`` models read by name, with the version tag its body
    names (and ``extra``: model -> one more version to read); None when any alias is not
    provably on the version its body names."""
    alias_names = [n for entry in listed.values() for n in entry.aliases.values()]
    records = git.named_tags(alias_names)
    claims: dict[str, tuple[str, str, str]] = {}  # alias name -> (model, channel, version)
    for model, entry in listed.items():
        for channel, name in entry.aliases.items():
            record = records.get(name)
            if record is None:
                return None
            claimed = tags.AliasBody.from_dict(tags.parse_message(record.message)[1]).version
            if claimed not in entry.versions:
                return None
            claims[name] = (model, channel, claimed)
    wanted = {(m, v) for m, _, v in claims.values()} | set((extra or {}).items())
    versions = git.named_tags([tags.version_tag(m, v) for m, v in sorted(wanted)])
    read: dict[tuple[str, str], TagRecord] = {}
    for model, version in wanted:
        record = versions.get(tags.version_tag(model, version))
        if record is None:
            return None
        read[(model, version)] = record
    aliases: dict[str, dict[str, TagRecord]] = {m: {} for m in listed}
    holders: dict[str, dict[str, str]] = {m: {} for m in listed}
    for name, (model, channel, version) in claims.items():
        alias = records[name]
        assert alias is not None  # noqa: S101 - checked above
        if read[(model, version)].commit != alias.commit:
            return None  # the body names a version the alias is not on
        aliases[model][channel] = alias
        holders[model][channel] = version
    return Held(aliases, holders, read)
