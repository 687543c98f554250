"""The serving host: ``mvctl pull`` and the Python API a model server uses to follow it.

``from mvctl import serving`` is the documented entry point (``serving.status``,
``serving.on_change``, ``serving.follow``, ``serving.pull``, ``serving.PullRequest``), so this
package's face re-exports them; the work lives in its modules: layout (DIR and what it
serves), request, commit (reading an untrusted registry commit), download, pull (one poll
and the swap) and follow (the poller).
"""

from mvctl.serving.follow import check_interval, follow
from mvctl.serving.layout import ChannelServed, Served, on_change, served_channels, status
from mvctl.serving.pull import pull
from mvctl.serving.request import PullRequest, PullResult

__all__ = [
    "ChannelServed",
    "PullRequest",
    "PullResult",
    "Served",
    "check_interval",
    "follow",
    "on_change",
    "pull",
    "served_channels",
    "status",
]
