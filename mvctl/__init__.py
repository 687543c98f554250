"""mvctl: a model registry and rollback safety net that lives in git and DVC.

This module holds only ``__version__`` (the package version, read by the build too), because
every ``mvctl`` command imports it first. The Python API is ``mvctl.api``; it is not imported
from here, so ``mvctl --help`` does not pay for it.
"""

__version__ = "0.2.0"
