"""The time window of a dataset: the first and last day of its date column (register's
``columns: {date: COLUMN}``). Only that column is read, with pyarrow (CSV or Parquet)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mvctl.errors import OperationalError
from mvctl.formats.labels import DataWindow


def _column(path: Path, column: str) -> object:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            from pyarrow import csv

            names = csv.open_csv(path).schema.names
            if column not in names:
                raise KeyError(column)
            options = csv.ConvertOptions(include_columns=[column])
            return csv.read_csv(path, convert_options=options).column(column)
        if suffix in (".parquet", ".pq"):
            from pyarrow import parquet

            if column not in parquet.ParquetFile(path).schema_arrow.names:
                raise KeyError(column)
            return parquet.read_table(path, columns=[column]).column(column)
    except KeyError:
        raise OperationalError(
            f"{path.name} has no column {column!r} (columns.date in mvctl.yaml)",
            hint="fix columns.date, or pass --data-window START..END",
        ) from None
    except Exception as exc:  # OSError, pyarrow's ArrowInvalid for malformed files
        raise OperationalError(f"cannot read {path}: {' '.join(str(exc).split())}") from exc
    raise OperationalError(f"{path} is neither CSV nor Parquet", hint="use .csv or .parquet")


def data_window(paths: Sequence[Path], column: str) -> DataWindow:
    """The first and last day ``column`` holds across ``paths`` (UTC days for times with a
    zone); a value that is no date or time is an error, empty cells are skipped."""
    import pandas as pd

    first = last = None
    for path in paths:
        values = _column(path, column).to_pandas()  # type: ignore[attr-defined]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            raise OperationalError(
                f"{path.name}: column {column!r} holds numbers, not dates",
                hint="give it ISO dates or times, or pass --data-window START..END",
            )
        try:
            stamps = pd.to_datetime(values, utc=True, errors="raise", format="mixed")
        except (ValueError, TypeError, OverflowError) as exc:
            raise OperationalError(
                f"{path.name}: column {column!r} holds values that are not dates ({exc})",
                hint="give it ISO dates or times, or pass --data-window START..END",
            ) from None
        stamps = stamps.dropna()
        if stamps.empty:
            continue
        low, high = stamps.min().date(), stamps.max().date()
        first = low if first is None or low < first else first
        last = high if last is None or high > last else last
    if first is None or last is None:
        raise OperationalError(
            f"column {column!r} holds no dates in {', '.join(p.name for p in paths)}",
            hint="pass --data-window START..END",
        )
    return DataWindow(first, last, column)
