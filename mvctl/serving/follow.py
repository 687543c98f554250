"""Following channels: poll until stopped, with backoff on failures and a refused commit
(or alias tag) reported once."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

from mvctl.common.progress import ProgressSink
from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.serving.commit import RefusedCommit
from mvctl.serving.pull import check_request, primary_result, pull_channels
from mvctl.serving.request import ChannelsResult, PullRequest, PullResult


def follow(
    req: PullRequest,
    *,
    interval: float,
    stop: threading.Event,
    on_result: Callable[[PullResult], None],
    on_error: Callable[[MvctlError, float], None],
    jitter: float = 0.1,
) -> None:
    """Poll until ``stop`` is set; ``on_result`` gets the primary channel's outcome of
    each poll (see :func:`follow_channels`, of which this is the one-channel face)."""

    def primary(result: ChannelsResult) -> None:
        pulled = primary_result(result)
        if pulled is not None:
            on_result(pulled)

    follow_channels(
        req, interval=interval, stop=stop, on_result=primary, on_error=on_error, jitter=jitter
    )


def follow_channels(
    req: PullRequest,
    *,
    interval: float,
    stop: threading.Event,
    on_result: Callable[[ChannelsResult], None],
    on_error: Callable[[MvctlError, float], None],
    jitter: float = 0.1,
    progress: ProgressSink | None = None,
) -> None:
    """Poll every channel ``req`` follows until ``stop`` is set. Failures (an unreachable
    remote, a corrupted object) are reported and retried with exponential backoff while
    each channel keeps serving what it had. A malformed commit or alias tag is reported
    once and skipped at the normal interval (a poll costs one ls-remote) until that
    channel's alias moves on: a good rollback still arrives in one poll. ``progress`` gets
    each download's byte task."""
    check_interval(interval)
    check_request(req)  # a usage error is not retried
    failures = 0
    refused: dict[str, str] = {}
    while not stop.is_set():
        failed = False
        try:
            result = pull_channels(req, progress, refused)
            for outcome in result.outcomes:
                if outcome.error is None and not outcome.skipped:
                    refused.pop(outcome.channel, None)
            on_result(result)
            errors = result.errors
        except MvctlError as exc:
            errors = (("", exc),)
        except Exception as exc:  # a poller of a fleet never dies of one poll
            errors = (("", OperationalError(f"unexpected {type(exc).__name__}: {exc}")),)
        for channel, error in errors:
            if isinstance(error, RefusedCommit) and channel:
                refused[channel] = error.alias
            else:
                failed = True
        failures = failures + 1 if failed else 0
        delay = interval
        if failed:
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
        for _, error in errors:
            on_error(error, delay)
        delay *= 1 + random.uniform(-jitter, jitter)  # noqa: S311 - spreading a fleet's polls
        stop.wait(max(delay, 0.05))


MAX_INTERVAL = 7 * 24 * 3600.0


def check_interval(interval: float) -> float:
    """A poll interval: finite, positive, at most a week (NaN or 0 would busy-loop git)."""
    if not (math.isfinite(interval) and 0 < interval <= MAX_INTERVAL):
        raise UsageError(
            f"invalid interval {interval!r}", hint="give seconds between polls, e.g. 30"
        )
    return interval
