"""A loader for the chain test (`mvctl serve --loader tests.observability.chain_model:load`):
weights that start with b"fail" make a model whose every prediction raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Model:
    def __init__(self, fails: bool) -> None:
        self.fails = fails

    def predict(self, x: Any) -> list[int]:
        if self.fails:
            raise RuntimeError("this release is broken")
        return [0] * len(x)


def load(path: Path) -> Model:
    with path.open("rb") as handle:
        return Model(handle.read(4) == b"fail")
