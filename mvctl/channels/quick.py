"""A channel's state from its alias and a handful of tags, for the moves that must stay fast
whatever the length of history (rollback, promote).

The alias body names the channel's newest events (its ``chain``), the model's next counter
and the channels it has events on (mvctl.formats.tags.AliasBody); mvctl.yaml's channels are
probed too. Those are hints, never
the record: this module reads every event the chain names, the version, deregistration
and gold tags of the versions they hold, and probes by exact name that no event of the
channel is missing from the chain or newer than it, and which counters other channels
took since. Anything that does not agree (no chain, an older mvctl's alias, a name that
is not an annotated tag, an event on a commit its body's version is not on, two versions
read on one commit, a gap, too many counters to probe or channels named, a gold mark
whose place among the channel's events older ones decide) answers None, and the caller
reads every tag instead
(``state.load``). What this returns is a ``ModelState`` whose ``events`` are the chain's,
marked ``partial``: a decision on it that needs older history must fall back too
(``rollback.trusted_target``).

The model's next event counter is never taken from the body: one names-only listing of
the model's refs gives it (every channel's, those no config names included, such as
a ``gto assign`` to a new stage), shows an event of the channel newer than its chain or
left out of it, and is what a tag read by name must be in to count (git would otherwise
take ``refs/tags/refs/tags/NAME`` for a ``NAME`` that does not exist).

Not seen: a version tag no body names, pushed onto a chain event's commit. A full read
names the commit by the later tag name; naming it here would mean peeling every version
tag (``for-each-ref --points-at``), the whole budget of a rollback at 10,000 tags.
``mvctl check`` reports it (the manifest at that commit names another version).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mvctl._adapters.git import GitRepo, TagRecord
from mvctl.channels.state import ModelState, event_of, time_of
from mvctl.errors import MvctlError
from mvctl.formats import config, tags
from mvctl.formats.names import Version
from mvctl.registry.read import ModelTags

PROBE_WINDOW = 16  # counters past the alias's ``next`` probed for other channels' events
MAX_SPAN = 1024  # counters between the chain's oldest event and ``next``: beyond, read all
MAX_CHANNELS = 64  # channels an alias body may name: each costs probes by name; beyond, read all


def _names(model: str, channel: str, counters: range) -> list[str]:
    found = []
    for n in counters:
        found += [tags.event_tag(model, channel, n), tags.unassign_tag(model, channel, n)]
    return found


def _chain(body: tags.AliasBody, model: str, channel: str) -> list[int] | None:
    """The chain's counters, when it is one this channel's alias could carry."""
    chain = body.chain
    if len(chain) > MAX_SPAN or len(body.channels) > MAX_CHANNELS:
        return None  # no body a move writes; parsed or probed, it would cost more than it saves
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
    git: GitRepo, model: str, channel: str, versions: Sequence[str] = ()
) -> ModelState | None:
    """``model``'s state as ``channel``'s alias chain gives it (plus ``versions``' tags),
    every hint checked against the tags; None when in any doubt."""
    # The names every tag listing gives, and the tags among them read by name: a name that
    # is not listed is no tag of the model's, whatever git would resolve it to.
    listed_tags = git.listed_tags(f"{model}@", f"{model}#")
    text = listed_tags.text  # the names, one per line: patterns pick the model's events
    if text is None:
        return None  # a file name holding a newline: no tag, and no listing to trust
    named = listed_tags.read

    alias_name = tags.alias_tag(model, channel)
    alias = named([alias_name]).get(alias_name)
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
    # The counter is shared by every channel, including ones no config or alias names (a
    # `gto assign` to a new stage): the next one comes from the refs' names, never from the
    # body's hint, which a hand edit could inflate or another channel's move outdate.
    newest = tags.newest_event(model, text)
    # The newest of those names is read too: the listing names a ref file it never opened
    # (one git leaves out, broken), and a name alone must not number the next event.
    top = [newest[0]] if newest else []
    read = named([*body.chain, *gaps, *probes, *top])
    if any(n not in read for n in top):
        return None
    if any(n in read for n in gaps) or any(read.get(n) is None for n in body.chain):
        return None  # an event the chain leaves out, or one that is no annotated tag
    hits = [p for n in probes if n in read and (p := tags.parse(n)) is not None]
    if any(p.channel == channel for p in hits):
        return None  # the channel moved without its alias: `mvctl check`'s to explain
    taken = [p.counter for p in hits]
    if taken and max(taken) >= window[-1]:
        return None  # more moves since than we probe: read them all
    # The channel's events from the chain's oldest on are exactly the chain. Where every name
    # is ASCII, a counter has one spelling, so the gaps and the probes named each of them
    # up to the newest counter, when it is inside the window; otherwise (another script's
    # digits, which parse reads too, or more moves of other channels since than the window
    # holds) the listing's names of the channel say.
    if not text.isascii() or (newest is not None and newest[1] >= window[-1]):
        found = tags.event_counters(model, listed_tags.candidates)
        own = {n for n, c, counter in found if c == channel and counter >= counters[0]}
        if own != chain:
            return None
    events = [r for n in body.chain if (r := read.get(n)) is not None]
    nxt = max([newest[1] if newest else 0, *taken]) + 1

    def older() -> bool:
        return any(c < counters[0] for c in tags.channel_counters(model, channel, text))

    return _state(named, model, channel, alias, events, versions, known, nxt, older)


def _state(
    named: Callable[[Sequence[str]], dict[str, TagRecord | None]],
    model: str,
    channel: str,
    alias: TagRecord,
    chain: list[TagRecord],
    versions: Sequence[str],
    known: set[str],
    taken: int,
    older: Callable[[], bool],
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
    read = named(names)
    found: dict[str, TagRecord] = {}
    for v in claimed:
        name, gold_name = tags.version_tag(model, v), tags.gold_tag(model, v)
        if (name in read and read[name] is None) or (gold_name in read and not read[gold_name]):
            return None  # a lightweight version or gold tag: read everything
        record = read.get(name)
        if record is not None:
            found[v] = record
    versions_at = {r.commit: v for v, r in found.items()}
    if len(versions_at) < len(found):
        return None  # two versions on one commit: which names it is every tag's to say
    events = [e for r in chain if (e := event_of(r, versions_at)) is not None]
    if any(e.version is None for e in events) or alias.commit != chain[-1].commit:
        return None  # an event on a commit with no version it names: not ours to judge
    gold = {v: r for v in found if (r := read.get(tags.gold_tag(model, v))) is not None}
    # A gold mark slots in after the channel's events stamped before it (ModelState.standing),
    # counted over all of them: with events older than the chain, whose stamps a skewed clock
    # may put after the mark, its place among the chain's events is not known from them.
    late = any(time_of(e.time) <= time_of(r.date) for r in gold.values() for e in events)
    if late and older():
        return None
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
