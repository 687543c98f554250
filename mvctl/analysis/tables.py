"""Loading the data rules run on: a live batch, and a predictions file joined to it by row."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mvctl.analysis.profile import read_table
from mvctl.errors import OperationalError

if TYPE_CHECKING:
    import pandas as pd


def load_live(live: Path | None, predictions: Path | None) -> pd.DataFrame | None:
    """The live batch, with a separate predictions file's columns joined by row."""
    if live is None and predictions is None:
        return None
    frames = [read_table(p) for p in (live, predictions) if p is not None]
    if len(frames) == 1:
        return frames[0]
    base, extra = frames
    if len(base) != len(extra):
        raise OperationalError(
            f"--live has {len(base)} rows but --predictions has {len(extra)}",
            hint="the predictions file must have one row per live row, in the same order",
        )
    import pandas as pd

    # Columns of the predictions file win over same-named ones in the live batch.
    base = base.drop(columns=[c for c in extra.columns if c in base.columns])
    return pd.concat([base.reset_index(drop=True), extra.reset_index(drop=True)], axis=1)
