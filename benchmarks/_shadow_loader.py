"""`--loader _shadow_loader:load` for bench_serve's shadow runs: .skops files load as usual;
a ``.sleep`` file is a model that sleeps that many seconds per call, a ``.raise`` file one
that raises on every call (the shadow channel's misbehaving candidates)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


class Sleeps:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, x: Any) -> list[int]:
        time.sleep(self.seconds)
        return [0] * len(x)


class Raises:
    def predict(self, x: Any) -> list[int]:
        raise RuntimeError("the shadow candidate fails on every call")


def load(path: Path) -> Any:
    if path.suffix == ".sleep":
        return Sleeps(float(path.read_text()))
    if path.suffix == ".raise":
        return Raises()
    import skops.io

    return skops.io.load(path)
