"""A channel's state from its alias and a handful of tags, for the moves that must stay fast
whatever the length of history (rollback, promote).

The alias body names the channel's newest events (its ``chain``), the model's next counter
and the channels it has events on (mvctl.formats.tags.AliasBody); mvctl.yaml's channels are
probed too. Those are hints, never
the record: this module reads every event the chain names, the version, deregistration
and gold tags of the versions they hold, and probes by exact name that no event of the
channel is missing from the chain or newer than it, and which counters other channels
took since. Anything that does not agree (no chain, an older mvctl's alias, a name that
is not an annotated tag, an event on a commit its body's version is not on, a gap, too
many counters to probe) answers None, and the caller reads every tag instead
(``state.load``). What this returns is a ``ModelState`` whose ``events`` are the chain's,
marked ``partial``: a decision on it that needs older history must fall back too
(``rollback.trusted_target``).

The model's next event counter is never taken from the body: one names-only listing of
the model's event refs gives it (every channel's, those no config names included, such as
a ``gto assign`` to a new stage), and shows an event of the channel newer than its chain.
A published move (mvctl.channels.moves) reads all this after the sync applied the remote's
tags, with the sync's own listing as the names: the state is the remote's as fetched just
now, as it would be read from every tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels.state import ModelState, event_of
from mvctl.errors import MvctlError
from mvctl.formats import config, tags
from mvctl.formats.names import Version
from mvctl.registry.read import ModelTags

PROBE_WINDOW = 16  # counters past the alias's ``next`` probed for other channels' events
MAX_SPAN = 1024  # counters between the chain's oldest event and ``next``: beyond, read all


def _names(model: str, channel: str, counters: range) -> list[str]:
    found = []
    for n in counters:
        found += [tags.event_tag(model, channel, n), tags.unassign_tag(model, channel, n)]
    return found


def _chain(body: tags.AliasBody, model: str, channel: str) -> list[int] | None:
    """The chain's counters, when it is one this channel's alias could carry."""
    chain = body.chain
    if not chain or (body.model, body.channel) != (model, channel) or chain[-1] != body.event:
        return None
    counters = []
    for name in chain:
        parsed = tags.parse(name)
        if parsed is None or not parsed.channel_event:
            return None
        if (parsed.model, parsed.channel) != (model, channel):
            return None
        counters.append(parsed.counter)
    if counters != sorted(set(counters)) or counters[-1] != body.counter:
        return None
    if body.next <= body.counter or body.next - counters[0] > MAX_SPAN:
        return None
    return counters


def quick_state(
    git: GitRepo,
    model: str,
    channel: str,
    versions: Sequence[str] = (),
    *,
    names: Iterable[str] | None = None,
) -> ModelState | None:
    """``model``'s state as ``channel``'s alias chain gives it (plus ``versions``' tags),
    every hint checked against the tags; None when in any doubt. ``names``: the model's
    tag names as listed just now (a sync's), instead of listing its events again."""
    alias_name = tags.alias_tag(model, channel)
    alias = git.named_tags([alias_name]).get(alias_name)
    if alias is None:
        return None
    body = tags.AliasBody.from_dict(tags.parse_message(alias.message)[1])
    counters = _chain(body, model, channel)
    if counters is None:
        return None
    if channel not in body.channels:
        return None
    try:  # channels mvctl.yaml added since the alias was written are probed too
        known = {channel, *body.channels, *config.load(git.root).channels}
    except MvctlError:
        return None  # the panic button needs no config: it reads every event instead
    if not all(tags.parse(tags.alias_tag(model, c)) for c in known):
        return None
    chain = set(body.chain)
    gaps = [n for n in _names(model, channel, range(counters[0], body.next)) if n not in chain]
    window = range(body.next, body.next + PROBE_WINDOW)
    probes = [n for c in sorted(known) for n in _names(model, c, window)]
    read = git.named_tags([*body.chain, *gaps, *probes])
    if any(n in read for n in gaps) or any(read.get(n) is None for n in body.chain):
        return None  # an event the chain leaves out, or one that is no annotated tag
    hits = [p for n in probes if n in read and (p := tags.parse(n)) is not None]
    if any(p.channel == channel for p in hits):
        return None  # the channel moved without its alias: `mvctl check`'s to explain
    taken = [p.counter for p in hits]
    if taken and max(taken) >= window[-1]:
        return None  # more moves since than we probe: read them all
    # The counter is shared by every channel, including ones no config or alias names (a
    # `gto assign` to a new stage): the next one comes from the refs' names, never from the
    # body's hint, which a hand edit could inflate or another channel's move outdate.
    if names is None:
        names = git.ref_names(f"{tags.TAG_PREFIX}{model}#*")
    events_prefix = f"{model}#"
    listed = [k for n in names if n.startswith(events_prefix) and (k := tags.event_key(n))]
    counters_taken = [n for _, _, n in listed]
    if any(c == channel and n > counters[-1] for _, c, n in listed):
        return None  # an event of this channel newer than its alias's chain
    events = [r for n in body.chain if (r := read.get(n)) is not None]
    nxt = max([*counters_taken, *taken, 0]) + 1
    return _state(git, model, channel, alias, events, versions, known, nxt)


def _state(
    git: GitRepo,
    model: str,
    channel: str,
    alias: TagRecord,
    chain: list[TagRecord],
    versions: Sequence[str],
    known: set[str],
    taken: int,
) -> ModelState | None:
    claimed = {tags.EventBody.from_dict(tags.parse_message(r.message)[1]).version for r in chain}
    claimed |= {tags.AliasBody.from_dict(tags.parse_message(alias.message)[1]).version}
    claimed |= set(versions)
    if not all(Version.is_valid(v) for v in claimed):
        return None
    names = []
    for v in sorted(claimed):
        names += [
            tags.version_tag(model, v),
            tags.deregister_tag(model, v),
            tags.gold_tag(model, v),
        ]
    read = git.named_tags(names)
    found: dict[str, TagRecord] = {}
    for v in claimed:
        name, gold_name = tags.version_tag(model, v), tags.gold_tag(model, v)
        if (name in read and read[name] is None) or (gold_name in read and not read[gold_name]):
            return None  # a lightweight version or gold tag: read everything
        record = read.get(name)
        if record is not None:
            found[v] = record
    versions_at = {r.commit: v for v, r in found.items()}
    events = [e for r in chain if (e := event_of(r, versions_at)) is not None]
    if any(e.version is None for e in events) or alias.commit != chain[-1].commit:
        return None  # an event on a commit with no version it names: not ours to judge
    gold = {v: r for v in found if (r := read.get(tags.gold_tag(model, v))) is not None}
    deregistered = frozenset(v for v in found if tags.deregister_tag(model, v) in read)
    model_tags = ModelTags(found, deregistered, {channel: alias}, gold)
    marks = [r for v in found if (r := read.get(tags.deregister_tag(model, v))) is not None]
    records = (alias, *chain, *found.values(), *gold.values(), *marks)
    return ModelState(
        model,
        model_tags,
        tuple(events),
        versions_at,
        records,
        partial=True,
        next_free=taken,
        known=frozenset(known),
    )
