"""Reference profiles: a compact per-column summary of the training data, stored with each
version (``registry/MODEL/profile.json``) so drift checks never need the dataset.

Numeric columns keep count, missing share, mean, std, min, max, a quantile sketch (201
points, every half percent) with the reference CDF at each point, and the decile edges with
the reference share of each decile bin (for PSI). Categorical columns keep counts of the
top-K categories plus ``__other__``. Bins are right-closed: a value equal to an edge falls in
the bin that edge closes, for the reference and live data alike.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl.errors import OperationalError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCHEMA = "mvctl/profile/v1"
SKETCH_POINTS = 201  # probabilities 0, 0.005, ..., 1: KS resolution of half a percent
DECILE_INDEX = tuple(range(20, 200, 20))  # the sketch points at 0.1, 0.2, ..., 0.9
TOP_K = 50
OTHER = "__other__"
TABULAR = (".csv", ".parquet", ".pq")


MAX_PROFILE_ROWS = 2_000_000  # a profile is a summary: the first 2M rows bound its memory


def read_table(path: Path, max_rows: int | None = None) -> pd.DataFrame:
    """CSV or Parquet into a DataFrame with pyarrow (never a hand-written parser); with
    ``max_rows``, only the first rows are read, in streamed batches."""
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        raise OperationalError(f"{path} is neither CSV nor Parquet", hint="use .csv or .parquet")
    try:
        return _read(path, suffix, max_rows)
    except OperationalError:
        raise
    except Exception as exc:  # OSError, and pyarrow's own ArrowInvalid for malformed files
        raise OperationalError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc


def _read(path: Path, suffix: str, max_rows: int | None) -> pd.DataFrame:
    import pandas as pd

    if max_rows is None:
        if suffix == ".csv":
            return pd.read_csv(path, engine="pyarrow")
        return pd.read_parquet(path)
    import pyarrow as pa

    if suffix == ".csv":
        from pyarrow import csv

        batches: Iterable[Any] = csv.open_csv(path)
    else:
        from pyarrow import parquet

        batches = parquet.ParquetFile(path).iter_batches(batch_size=65_536)
    taken, rows = [], 0
    for batch in batches:
        taken.append(batch)
        rows += batch.num_rows
        if rows >= max_rows:
            break
    if not taken:
        return pd.DataFrame()
    return pa.Table.from_batches(taken).slice(0, max_rows).to_pandas()


def is_numeric(series: pd.Series) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series)
    )


def numeric_values(series: pd.Series) -> np.ndarray:
    import numpy as np

    values: np.ndarray = np.asarray(
        series.to_numpy(dtype="float64", na_value=np.nan), dtype="float64"
    )
    kept: np.ndarray = values[~np.isnan(values)]
    return kept


def _round(value: float) -> float | None:
    return float(f"{value:.9g}") if math.isfinite(value) else None


def cumulative_at(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each sketch point p, how many values are <= p (one searchsorted, no sort)."""
    import numpy as np

    index = np.searchsorted(points, values, side="left")
    counts = np.bincount(index, minlength=len(points) + 1)
    return np.cumsum(counts)[: len(points)]


def decile_shares(cumulative: np.ndarray, total: int) -> list[float]:
    """Share of values in each right-closed decile bin, from cumulative counts."""
    at_edges = [0, *(int(cumulative[i]) for i in DECILE_INDEX), total]
    return [(b - a) / total for a, b in itertools.pairwise(at_edges)]


def _numeric(series: pd.Series) -> dict[str, Any]:
    import numpy as np

    values = numeric_values(series)
    n, total = len(values), len(series)
    entry: dict[str, Any] = {
        "kind": "numeric",
        "count": n,
        "missing": (total - n) / total if total else 0.0,
    }
    if n == 0:
        return entry
    probs = np.linspace(0.0, 1.0, SKETCH_POINTS)
    points = np.quantile(values, probs)
    cumulative = cumulative_at(points, values)
    entry.update(
        mean=_round(float(values.mean())),
        std=_round(float(values.std(ddof=1))) if n > 1 else 0.0,
        min=_round(float(values.min())),
        max=_round(float(values.max())),
        quantiles=[_round(float(p)) for p in points],
        cdf=[round(float(c) / n, 6) for c in cumulative],
        psi_ref=[round(s, 8) for s in decile_shares(cumulative, n)],
    )
    return entry


def category_counts(series: pd.Series, keep: list[str] | None = None) -> dict[str, int]:
    """Counts per category (as strings); with ``keep``, everything else is ``__other__``."""
    counts = series.dropna().astype(str).value_counts()
    if keep is None:
        top = counts.iloc[:TOP_K]
        result = {str(k): int(v) for k, v in top.items()}
        rest = int(counts.iloc[TOP_K:].sum())
    else:
        wanted = set(keep)
        result = {k: int(counts.get(k, 0)) for k in keep if k != OTHER}
        rest = int(counts[[k not in wanted for k in counts.index]].sum())
    if rest or keep is not None:
        result[OTHER] = rest
    return result


def _categorical(series: pd.Series) -> dict[str, Any]:
    total = len(series)
    present = int(series.notna().sum())
    return {
        "kind": "categorical",
        "count": present,
        "missing": (total - present) / total if total else 0.0,
        "counts": category_counts(series),
    }


def build(frame: pd.DataFrame, source: str, roles: dict[str, Any] | None = None) -> dict[str, Any]:
    columns = {
        str(name): _numeric(frame[name]) if is_numeric(frame[name]) else _categorical(frame[name])
        for name in frame.columns
    }
    return {
        "schema": SCHEMA,
        "source": {"path": source, "rows": len(frame)},
        "roles": roles or {},
        "columns": columns,
    }


def dumps(profile: dict[str, Any]) -> str:
    return json.dumps(profile, separators=(",", ":"), sort_keys=False) + "\n"


def loads(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise OperationalError(f"{source} is not a valid profile: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise OperationalError(f"{source} is not an mvctl profile")
    return data
