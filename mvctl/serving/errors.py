"""What loading and serving a model can fail with, in the ``mvctl.errors`` family: each
error owns its message and exit code, so a server maps them to answers without knowing
which loader or which model raised them."""

from __future__ import annotations

from mvctl.errors import MvctlError, OperationalError, PolicyError, UsageError


class ModelRefused(PolicyError):
    """mvctl will not load this file without the operator's say-so: a pickle without
    ``--trust-pickle``, a skops file naming types skops does not trust by default."""


class ModelLoadError(OperationalError):
    """The weights could not be loaded (a missing or corrupt file, an unknown suffix, a
    loader that failed); whatever was serving keeps serving."""


class NotReady(OperationalError):
    """No model is loaded yet: nothing can answer."""


class PredictError(MvctlError):
    """The model itself raised while answering a request (counted, logged, then raised)."""

    exit_code = 3


class InvalidRequest(UsageError):
    """What a caller sent cannot be served: inputs of the wrong shape, records missing a
    feature, a malformed request key. The model was not called."""
