"""mvctl: a model registry and rollback safety net that lives in git and DVC."""

__version__ = "0.1.0"
