"""The serving host: ``mvctl pull`` and the Python API a model server uses to follow it.

``from mvctl import serving`` is the documented entry point (``serving.status``,
``serving.on_change``, ``serving.follow``, ``serving.pull``, ``serving.PullRequest``), so this
package's face re-exports them; the work lives in its modules.
"""

from mvctl.serving.host import (
    PullRequest,
    PullResult,
    Served,
    check_interval,
    follow,
    on_change,
    pull,
    status,
)

__all__ = [
    "PullRequest",
    "PullResult",
    "Served",
    "check_interval",
    "follow",
    "on_change",
    "pull",
    "status",
]
