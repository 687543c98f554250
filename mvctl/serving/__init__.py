"""The serving host: ``mvctl pull`` and the Python API a model server uses to follow it.

``from mvctl import serving`` is the documented entry point (``serving.status``,
``serving.on_change``, ``serving.follow``, ``serving.pull``, ``serving.PullRequest``; for
several channels ``serving.pull_channels``, ``serving.follow_channels``,
``serving.served_channels``), so this package's face re-exports them; the work lives in its
modules: layout (DIR and what it serves), request, commit (reading an untrusted registry
commit), download, pull (one poll), swap (links, state.json, pruning) and follow (the
poller; pointerwatch, the poller of a large fleet, woken by pointer files; aliases: how a
poll reads them from git). A model server answers requests in-process with a ``Router``
(router; routing: the sticky canary bucket; shadow: the worker off the caller's path;
reload: hot swaps from DIR), loaders (``load_model``), decisions (the decision log),
metrics and errors.
"""

from mvctl.serving.follow import check_interval, follow, follow_channels
from mvctl.serving.layout import ChannelServed, Served, on_change, served_channels, status
from mvctl.serving.loaders import load_model
from mvctl.serving.pointerwatch import watch_pointer
from mvctl.serving.pull import pull, pull_channels
from mvctl.serving.request import ChannelOutcome, ChannelsResult, PullRequest, PullResult
from mvctl.serving.router import Answer, Loaded, Router

__all__ = [
    "Answer",
    "ChannelOutcome",
    "ChannelServed",
    "ChannelsResult",
    "Loaded",
    "PullRequest",
    "PullResult",
    "Router",
    "Served",
    "check_interval",
    "follow",
    "follow_channels",
    "load_model",
    "on_change",
    "pull",
    "pull_channels",
    "served_channels",
    "status",
    "watch_pointer",
]
