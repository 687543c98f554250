"""Following a channel: poll until stopped, with backoff on failures and a refused commit
reported once."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

from mvctl.errors import MvctlError, OperationalError, UsageError
from mvctl.serving.commit import RefusedCommit
from mvctl.serving.pull import check_request, guarded
from mvctl.serving.request import PullRequest, PullResult


def follow(
    req: PullRequest,
    *,
    interval: float,
    stop: threading.Event,
    on_result: Callable[[PullResult], None],
    on_error: Callable[[MvctlError, float], None],
    jitter: float = 0.1,
) -> None:
    """Poll until ``stop`` is set. Failures (an unreachable remote, a corrupted object) are
    reported and retried with exponential backoff while the current version keeps serving.
    A malformed commit is reported once and skipped at the normal interval (a poll costs
    one ls-remote) until the alias moves on: a good rollback still arrives in one poll."""
    check_interval(interval)
    check_request(req)  # a usage error is not retried
    failures = 0
    refused: str | None = None
    while not stop.is_set():
        delay = interval
        try:
            result = guarded(req, None, refused)
            failures = 0
            if result is not None:
                refused = None
                on_result(result)
        except RefusedCommit as exc:
            failures, refused = 0, exc.commit
            on_error(exc, delay)
        except MvctlError as exc:
            failures += 1
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
            on_error(exc, delay)
        except Exception as exc:  # a poller of a fleet never dies of one poll
            failures += 1
            delay = min(interval * 2 ** min(failures, 10), max(interval * 8, 60.0))
            on_error(OperationalError(f"unexpected {type(exc).__name__}: {exc}"), delay)
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
