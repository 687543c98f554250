"""The decision log: one JSON line per request (which channel and version answered whom,
how fast, with what), and outcome lines joined to them later by request key. Appended,
flushed per line, so a crash loses at most the line being written and a tail -f (or a log
shipper) sees each decision as it is made. Each decision names its model, so a log of
another model's server is never taken for this one's evidence (mvctl.canary.evidence).

    {"time": "2026-05-01T12:00:00.123Z", "key": "...", "model": "fraud",
     "channel": "production", "version": "v1.4.0", "latency_ms": 1.234, "output": [...],
     "role": "primary"}
    {"time": "...", "key": "...", "outcome": 1, "kind": "outcome"}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mvctl.errors import OperationalError
from mvctl.serving.errors import InvalidRequest

_log = logging.getLogger(__name__)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
OUTPUT_CAP = 4096  # bytes of JSON above which a line carries the output's sha256 instead


def utc_ms() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _open_log(path: Path) -> int:
    """An append descriptor on ``path``. The log usually lives in the puller's DIR, where a
    symlink planted at its name would make the server append request keys to any file it
    can write, and a FIFO would hand them to whoever reads it: a symlink is never followed
    (O_NOFOLLOW), a FIFO or socket is refused (opened non-blocking, so a FIFO cannot hang
    the server). A regular file or a device (/dev/null, which only root can make) is fine."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags | _NOFOLLOW, 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise _refused(path, "a symlink") from exc
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
            raise _refused(path, "not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refused(path: Path, what: str) -> OperationalError:
    return OperationalError(
        f"decision log {path} is {what}: refusing to follow or append to it",
        hint="remove it (mvctl creates the log itself), or pass --decision-log to a regular file",
    )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


class DecisionLog:
    """Appends decision and outcome lines to ``path``, the decisions of ``model``'s server
    (written in every line; None leaves it out); safe to share between threads."""

    def __init__(self, path: Path, *, model: str | None = None, log_outputs: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # One write(2) per line on an O_APPEND descriptor, no buffer of our own: a line is
        # on its way to disk when the request returns, and a full disk cannot pile lines up
        # in memory.
        self._fd: int | None = _open_log(path)
        self._log_outputs = log_outputs
        self._model = model
        self._lock = threading.Lock()
        self.write_errors = 0

    def decision(
        self,
        *,
        key: str,
        channel: str,
        version: str,
        latency_s: float,
        role: str,
        outputs: list[Any] | None,
        error: str | None = None,
    ) -> None:
        line: dict[str, Any] = {
            "time": utc_ms(),
            "key": key,
            **({"model": self._model} if self._model is not None else {}),
            "channel": channel,
            "version": version,
            "latency_ms": round(latency_s * 1000, 3),
        }
        if error is None:
            text = _json(outputs)
            if self._log_outputs and len(text.encode()) <= OUTPUT_CAP:
                line["output"] = outputs
            else:
                line["output_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        line["role"] = role
        if error is not None:
            line["error"] = error
        self._write(_json(line))

    def outcome(self, key: str, outcome: Any) -> None:
        try:
            value = json.dumps(outcome)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"an outcome must be a JSON value: {exc}") from exc
        if len(value.encode()) > OUTPUT_CAP:
            raise InvalidRequest(f"an outcome is at most {OUTPUT_CAP} bytes of JSON")
        self._write(_json({"time": utc_ms(), "key": key, "outcome": outcome, "kind": "outcome"}))

    def _write(self, text: str) -> None:
        with self._lock:
            if self._fd is None:  # closed: a late shadow answer is not an error
                return
            data = (text + "\n").encode()
            try:
                while data:
                    data = data[os.write(self._fd, data) :]
            except OSError as exc:  # a full disk loses decisions, never requests
                self.write_errors += 1
                if self.write_errors == 1:
                    _log.error("decision log: cannot write: %s", exc.strerror or exc)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
