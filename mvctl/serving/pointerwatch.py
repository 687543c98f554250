"""Following channels through pointer files: a large fleet polls a cheap store (the DVC
remote's ``mvctl/channels/MODEL/CHANNEL.json``, with a conditional read) every
``interval``, and asks git only when a pointer changed, every ``git_interval`` seconds
anyway, and on start.

The trust rule: a pointer never decides what is served. It only says "look at git now";
the git poll resolves the aliases as plain polling does (every commit and alias check
runs), and what git says is what is served. A stale or forged pointer can delay a host by
at most ``git_interval``, or cost it a git poll, never swap it to what git does not say.
A git poll is one ``git fetch`` of the followed aliases and the deregistrations
(:class:`mvctl.serving.aliases.FetchedAliases`): one request to the git server per change,
plus one per ``git_interval`` (and a download's own fetch of a version the host lacks)."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mvctl._adapters import pointerstore
from mvctl._adapters.pointerstore import PointerStore, StoreUnreachable
from mvctl.common.progress import ProgressSink
from mvctl.errors import MvctlError, OperationalError
from mvctl.formats import pointer as pointer_format
from mvctl.formats.pointer import BadPointer, Pointer
from mvctl.serving.aliases import FetchedAliases
from mvctl.serving.commit import RefusedCommit
from mvctl.serving.follow import check_interval
from mvctl.serving.pull import check_request, pull_channels
from mvctl.serving.request import ChannelsResult, PullRequest

_JITTER = 0.1
_FREE_WAKES = 8  # pointer-woken git polls finding git unchanged before they are backed off


class PointerMismatch(OperationalError):
    """After a git poll, a pointer names another commit than git's alias: a warning (the
    host serves what git says; the pointer is stale, or forged)."""


def watch_pointer(
    req: PullRequest,
    pointer_url: str,
    *,
    interval: float,
    git_interval: float,
    stop: threading.Event,
    on_result: Callable[[ChannelsResult], None],
    on_error: Callable[[MvctlError, float], None],
    progress: ProgressSink | None = None,
) -> None:
    """Follow every channel ``req`` follows until ``stop`` is set, woken by the pointers
    under ``pointer_url`` (a DVC remote's root: a folder, http(s)://, s3://bucket/prefix).
    ``on_result`` gets each git poll's result; ``on_error`` each failure (with the delay
    before the next try), a forged pointer and a pointer that disagrees with git (once per
    version of the pointer), and an unreachable pointer store (once, until it answers).
    ``progress`` gets each download's byte task."""
    check_interval(interval)
    check_interval(git_interval)
    check_request(req)  # a usage error is not retried
    store = _open(pointer_url)
    watch = _Watch(req, store, interval, git_interval, on_result, on_error, progress)
    while not stop.is_set():
        stop.wait(watch.step(time.monotonic()))


def _open(url: str) -> PointerStore:
    options = {}
    if "://" in url and not url.startswith("file://"):
        # The host's own DVC remote for that URL gives its endpoint and credentials.
        options = pointerstore.host_options(url)
    return pointerstore.open_store(url, options)


def _backoff(base: float, failures: int, cap: float) -> float:
    return float(min(base * 2 ** min(failures, 10), cap))


@dataclass
class _Watch:
    req: PullRequest
    store: PointerStore
    interval: float
    git_interval: float
    on_result: Callable[[ChannelsResult], None]
    on_error: Callable[[MvctlError, float], None]
    progress: ProgressSink | None = None
    seen: dict[str, str] = field(default_factory=dict)  # channel -> the pointer's validator
    hints: dict[str, Pointer | None] = field(default_factory=dict)
    warned: set[tuple[str, str]] = field(default_factory=set)  # (channel, validator)
    refused: dict[str, str] = field(default_factory=dict)
    pending: bool = True  # a git poll is due (on start, after a pointer changed)
    next_git: float = -math.inf  # the scheduled git poll
    git_retry: float = -math.inf  # after a failed git poll, not before this
    git_failures: int = 0
    store_retry: float = -math.inf
    store_failures: int = 0
    last_commits: dict[str, str | None] | None = None  # what git's aliases named last poll
    idle_wakes: int = 0  # pointer-woken git polls in a row that found git unchanged
    wake_retry: float = -math.inf  # a pointer-woken git poll not before this

    def step(self, now: float) -> float:
        """One pointer read (when due) and one git poll (when due); the seconds to wait."""
        if now >= self.store_retry:
            self._read_pointers(now)
        woken = self.pending and now >= max(self.git_retry, self.wake_retry)
        if woken or now >= self.next_git:
            self._git_poll(now, woken=woken and now < self.next_git)
        pointer_due = self.store_retry if self.store_failures else now + self.interval
        retry = max(self.git_retry, self.wake_retry) if self.pending else math.inf
        wake = min(pointer_due, self.next_git, retry)
        delay = (wake - now) * (1 + random.uniform(-_JITTER, _JITTER))  # noqa: S311 - spreading a fleet
        return max(delay, 0.05)

    def _read_pointers(self, now: float) -> None:
        try:
            for channel in self.req.followed:
                key = pointer_format.key(self.req.model, channel)
                read = _read(self.store, key, self.seen.get(channel))
                if read.changed(self.seen.get(channel)):
                    self.seen[channel] = read.validator
                    self.hints[channel] = self._hint(channel, read)
                    self.pending = True
        except StoreUnreachable as exc:
            self.store_failures += 1
            delay = _backoff(self.interval, self.store_failures, self.git_interval)
            self.store_retry = now + delay
            if self.store_failures == 1:  # once, until the store answers again
                self.on_error(_fallback(exc, self.git_interval), delay)
            return
        if self.store_failures:  # back: a change may have been missed meanwhile
            self.store_failures = 0
            self.pending = True

    def _hint(self, channel: str, read: pointerstore.Read) -> Pointer | None:
        if read.body is None:
            return None  # no pointer (yet): the channel is followed by git polls alone
        try:
            return pointer_format.parse(read.body, self.req.model, channel)
        except BadPointer as exc:
            self.on_error(
                BadPointer(
                    f"{self.req.model}@{channel}'s pointer file is refused ({exc.message}): "
                    "polling git to see what changed",
                    hint="only git decides what is served; check who writes the pointer files",
                ),
                self.interval,
            )
            return None

    def _git_poll(self, now: float, *, woken: bool = False) -> None:
        failed = False
        try:
            result = pull_channels(self.req, self.progress, self.refused, FetchedAliases())
            for outcome in result.outcomes:
                if outcome.error is None and not outcome.skipped:
                    self.refused.pop(outcome.channel, None)
            self.on_result(result)
            errors = result.errors
        except MvctlError as exc:
            errors, result = (("", exc),), None
        except Exception as exc:  # a poller of a fleet never dies of one poll
            errors, result = (
                (("", OperationalError(f"unexpected {type(exc).__name__}: {exc}")),),
                None,
            )
        for channel, error in errors:
            if isinstance(error, RefusedCommit) and channel:
                self.refused[channel] = error.alias
            else:
                failed = True
        self.git_failures = self.git_failures + 1 if failed else 0
        delay = self.git_interval
        if failed:
            delay = _backoff(self.interval, self.git_failures, max(self.interval * 8, 60.0))
            self.git_retry = now + delay
        else:
            self.pending = False
        self.next_git = now + (delay if failed else self.git_interval)
        for _, error in errors:
            self.on_error(error, delay)
        if result is not None:
            self._compare(result)
            self._idle(now, woken, result)

    def _idle(self, now: float, woken: bool, result: ChannelsResult) -> None:
        """A pointer that keeps changing while git does not (rewritten by anyone who can
        write the store) must not turn pointer polling back into git polling at
        ``interval``: past a few such wakes they are backed off to ``git_interval``."""
        commits = {o.channel: o.alias_commit for o in result.outcomes}
        idle = woken and commits == self.last_commits and not result.errors
        self.last_commits = commits
        if not idle:
            self.idle_wakes, self.wake_retry = 0, -math.inf
            return
        self.idle_wakes += 1
        if self.idle_wakes < _FREE_WAKES:
            return
        delay = _backoff(self.interval, self.idle_wakes - _FREE_WAKES + 1, self.git_interval)
        self.wake_retry = now + delay
        if self.idle_wakes == _FREE_WAKES:  # once, until git moves again
            self.on_error(
                OperationalError(
                    f"{self.req.model}'s pointer files changed {_FREE_WAKES} times in a row "
                    f"without git changing: git polls they wake are backed off (up to "
                    f"{self.git_interval:g} s)",
                    hint="check who writes the pointer files; git stays the source of truth",
                ),
                delay,
            )

    def _compare(self, result: ChannelsResult) -> None:
        """A pointer that names another commit than git's alias: reported, never acted on."""
        for outcome in result.outcomes:
            hint = self.hints.get(outcome.channel)
            validator = self.seen.get(outcome.channel, "")
            if (
                hint is None
                or outcome.error is not None
                or outcome.alias_commit is None
                or hint.commit == outcome.alias_commit
                or (outcome.channel, validator) in self.warned
            ):
                continue
            self.warned.add((outcome.channel, validator))
            self.on_error(
                PointerMismatch(
                    f"{self.req.model}@{outcome.channel}'s pointer names {hint.version} "
                    f"({hint.commit[:12]}) but git's alias is {outcome.alias_commit[:12]}: "
                    "serving what git says",
                    hint="a pointer is written after each push; a stale one is fixed by the "
                    "next move, a forged one is only ever a hint",
                ),
                self.interval,
            )


def _read(store: PointerStore, key: str, validator: str | None) -> pointerstore.Read:
    """A store's read; whatever else a hostile store makes it raise is an unreachable store:
    a watching host never dies of a pointer, it falls back to git polls."""
    try:
        return store.read(key, validator)
    except (StoreUnreachable, MvctlError):
        raise
    except Exception as exc:
        raise StoreUnreachable(f"{store.where} failed: {type(exc).__name__}") from None


def _fallback(exc: StoreUnreachable, git_interval: float) -> OperationalError:
    return OperationalError(
        f"pointer store unreachable ({exc.message}): polling git every {git_interval:g} s "
        "until it answers",
        hint="the host keeps following its channels through git meanwhile",
    )
