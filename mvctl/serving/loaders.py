"""Model loaders: weights on disk to an object that answers ``predict(inputs)``.

A loader is chosen by the file's suffix from a table (``.skops``, ``.onnx``, the pickle
family), or named by the operator as ``package.module:function``. Whatever loads, it is
wrapped once so every model takes the same inputs and gives the same outputs: records
(``[{feature: value}]``) become a pandas DataFrame in the model's own feature order, rows
(``[[v, ...]]``) a 2-D numpy array, and the answer is a list of plain JSON values, one per
row.

A pickle runs code when it is read, and whoever can push to the registry chooses the file a
host loads: pickles are refused unless the operator passes ``trust_pickle``. A skops file
is read without running code, and one naming a type skops does not trust by default is
refused with the list of those types.

Whoever can push also chooses how big a model gets in memory, and a skops file is a zip: a
0.6 MB file can unpack to gigabytes (in every server that follows the channel, even the
shadow). Before anything is read, a model file's size and, for a zip, the sizes its
directory declares are checked against a cap (zipfile never unpacks a member past its
declared size): ``max_bytes``, by default MAX_MODEL_BYTES and at most RATIO times the
file's own size (plus RATIO_FLOOR), which no legitimately saved model comes near.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from mvctl.errors import MvctlError, UsageError
from mvctl.serving.errors import InvalidRequest, ModelLoadError, ModelRefused

Inputs = Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]]

_LOADER_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
MAX_MODEL_BYTES = 2 << 30  # what a model file may unpack to, by default
RATIO = 100  # ... and by default at most this many times the file's size,
RATIO_FLOOR = 64 << 20  # plus this (a small file unpacking to a few MB is no threat)


class LoadedModel(Protocol):
    """What a loader returns (wrapped): one JSON-able value per input row."""

    def predict(self, inputs: Inputs) -> list[Any]: ...


class _Predicts(Protocol):
    def predict(self, x: Any) -> Any: ...


def load_model(
    path: Path,
    *,
    trust_pickle: bool = False,
    loader: str | None = None,
    max_bytes: int | None = None,
) -> LoadedModel:
    """The model at ``path`` (a file, or a weights directory holding exactly one file of a
    known suffix), ready to answer. Raises ModelRefused (exit 1) for a file mvctl will not
    read as it stands (including one over ``max_bytes``, file or unpacked; None: the
    default cap, see the module), ModelLoadError (exit 3) with a one-line cause for any
    other failure. A ``loader`` of the operator's own is not capped."""
    check_max_bytes(max_bytes)
    if loader is not None:
        function = _loader_function(loader)
        return _guarded(path, lambda: _Wrapped(_checked(function(path), loader)))
    target = _weights_file(path)
    kind = _KINDS.get(target.suffix.lower())
    if kind is None:
        raise ModelLoadError(
            f"cannot load {target}: no loader for {target.suffix or 'a file without a suffix'}",
            hint=f"register a .skops or .onnx file, or pass --loader module:function"
            f" (known suffixes: {', '.join(sorted(_KINDS))})",
        )
    if target.suffix.lower() in _PICKLE_SUFFIXES and not trust_pickle:
        raise ModelRefused(
            f"refusing to unpickle {target}: a pickle runs code; register a .skops file,"
            " or pass --trust-pickle if you trust everyone who can push to the registry"
        )
    return _guarded(target, lambda: kind(target, max_bytes))


def check_max_bytes(max_bytes: int | None) -> int | None:
    if max_bytes is not None and (isinstance(max_bytes, bool) or max_bytes < 1):
        raise UsageError(f"the model size cap must be at least 1 byte, not {max_bytes!r}")
    return max_bytes


def _capped(path: Path, handle: BinaryIO, max_bytes: int | None) -> None:
    """Refuse ``path`` (open as ``handle``) if it, or for a zip what its members unpack
    to, is over the cap; leaves ``handle`` at its start."""
    import zipfile

    size = os.fstat(handle.fileno()).st_size
    cap = max_bytes if max_bytes is not None else min(MAX_MODEL_BYTES, RATIO * size + RATIO_FLOOR)
    what, measured = "is", size
    if zipfile.is_zipfile(handle):
        try:
            with zipfile.ZipFile(handle) as archive:
                measured = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
            raise ModelLoadError(f"cannot load {path}: not a valid zip: {_one_line(exc)}") from exc
        what = f"is {size:,} bytes that unpack to"
    handle.seek(0)
    if measured > cap:
        default = (
            f" ({RATIO}x its size + {RATIO_FLOOR >> 20} MiB, at most {MAX_MODEL_BYTES >> 30} GiB)"
        )
        raise ModelRefused(
            f"refusing to load {path}: it {what} {measured:,} bytes, over the cap of {cap:,}"
            + (default if max_bytes is None else ""),
            hint="a model that big is refused before it is read (a zip bomb would take the"
            " server down); pass --max-model-bytes to serve a bigger model on purpose",
        )


def _guarded(path: Path, load: Callable[[], LoadedModel]) -> LoadedModel:
    try:
        return load()
    except MvctlError:
        raise
    except Exception as exc:  # a loader's failure is a line, never a traceback
        raise ModelLoadError(f"cannot load {path}: {_one_line(exc)}") from exc


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}"


def _weights_file(path: Path) -> Path:
    """``path`` itself, or the one file of a known suffix in a weights directory."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ModelLoadError(f"cannot load {path}: no such file") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot load {path}: {exc.strerror or exc}") from exc
    if stat.S_ISREG(mode):
        return path
    if not stat.S_ISDIR(mode):
        raise ModelLoadError(f"cannot load {path}: not a regular file or a directory")
    found = sorted(
        p for p in path.rglob("*") if p.suffix.lower() in _KINDS and stat.S_ISREG(p.lstat().st_mode)
    )
    if len(found) != 1:
        names = ", ".join(str(p.relative_to(path)) for p in found[:5]) or "none"
        raise ModelLoadError(
            f"cannot load {path}: a weights directory must hold exactly one model file"
            f" ({', '.join(sorted(_KINDS))}); found {len(found)}: {names}",
            hint="pass --loader module:function to load a directory of your own layout",
        )
    return found[0]


def _loader_function(spec: str) -> Callable[[Path], Any]:
    if not _LOADER_RE.fullmatch(spec):
        raise UsageError(
            f"invalid loader {spec!r}", hint="name a function as package.module:function"
        )
    module_name, _, name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(f"cannot import loader {spec}: {_one_line(exc)}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise ModelLoadError(f"loader {spec}: {module_name} has no function {name}")
    return function  # type: ignore[no-any-return]


def _checked(model: Any, loader: str) -> _Predicts:
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(
            f"loader {loader} returned {type(model).__name__}, which has no predict()"
        )
    return model  # type: ignore[no-any-return]


# -- the loaders by suffix ---------------------------------------------------------------


def _load_skops(path: Path, max_bytes: int | None) -> LoadedModel:
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        with path.open("rb") as handle:  # one open: what is checked is what is read
            _capped(path, handle, max_bytes)
            model = skops.io.load(handle)
    except UntrustedTypesFoundException as exc:
        try:
            untrusted = skops.io.get_untrusted_types(file=path)
        except Exception:  # the load already said why; the list is a courtesy
            untrusted = []
        raise ModelRefused(
            f"refusing to load {path}: it names types skops does not trust by default:"
            f" {', '.join(untrusted) or _one_line(exc)}",
            hint="register the model with types skops trusts, or load it with"
            " --loader module:function that checks the types you trust",
        ) from exc
    return _Wrapped(_checked(model, "skops"))


def _load_pickle(path: Path, max_bytes: int | None) -> LoadedModel:
    import pickle

    with path.open("rb") as handle:
        _capped(path, handle, max_bytes)
        model = pickle.load(handle)  # noqa: S301 - only with trust_pickle (load_model)
    return _Wrapped(_checked(model, "pickle"))


def _load_joblib(path: Path, max_bytes: int | None) -> LoadedModel:
    # joblib comes with scikit-learn, which a .joblib model needs anyway to be unpickled.
    joblib = importlib.import_module("joblib")
    with path.open("rb") as handle:
        _capped(path, handle, max_bytes)
    return _Wrapped(_checked(joblib.load(path), "joblib"))


def _load_onnx(path: Path, max_bytes: int | None) -> LoadedModel:
    import onnxruntime

    with path.open("rb") as handle:  # a path: external data resolves next to it
        _capped(path, handle, max_bytes)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _Onnx(session, session.get_inputs()[0].name)


_KINDS: dict[str, Callable[[Path, int | None], LoadedModel]] = {
    ".skops": _load_skops,
    ".onnx": _load_onnx,
    ".pkl": _load_pickle,
    ".pickle": _load_pickle,
    ".joblib": _load_joblib,
}


# -- one shape of inputs and outputs for every model -------------------------------------


@dataclass(frozen=True)
class _Wrapped:
    """A model with ``predict(X)`` (scikit-learn's protocol) behind mvctl's inputs."""

    model: _Predicts

    def predict(self, inputs: Inputs) -> list[Any]:
        records = _is_records(inputs)
        if not inputs:
            return []
        if records:
            names = getattr(self.model, "feature_names_in_", None)
            x: Any = _frame(inputs, None if names is None else [str(n) for n in names])
        else:
            x = _matrix(inputs)
        return _outputs(self.model.predict(x), len(inputs))


@dataclass(frozen=True)
class _Onnx:
    """An onnxruntime session: its first input fed a float32 matrix, its first output back."""

    session: Any
    input_name: str

    def predict(self, inputs: Inputs) -> list[Any]:
        import numpy as np

        records = _is_records(inputs)
        if not inputs:
            return []
        if records:
            rows: Any = _frame(inputs, None).to_numpy()
        else:
            rows = _matrix(inputs)
        try:
            x = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"inputs are not numbers: {_one_line(exc)}") from exc
        return _outputs(self.session.run(None, {self.input_name: x})[0], len(inputs))


def _is_records(inputs: Inputs) -> bool:
    if isinstance(inputs, str | bytes) or not isinstance(inputs, Sequence):
        raise InvalidRequest("inputs must be a list of records or a list of rows")
    kinds = {isinstance(row, Mapping) for row in inputs}
    if len(kinds) > 1:
        raise InvalidRequest("inputs mix records and rows")
    return kinds == {True}


def _frame(records: Inputs, names: list[str] | None) -> Any:
    """A DataFrame of ``records`` with the columns ``names`` (by default the first record's
    keys, in its order); every record must have exactly those keys."""
    import numpy as np
    import pandas as pd

    rows: list[Mapping[str, Any]] = list(records)  # type: ignore[arg-type]
    columns = names if names is not None else [str(k) for k in rows[0]]
    wanted = set(columns)
    for i, record in enumerate(rows):
        if record.keys() != wanted:
            missing = sorted(wanted - set(record))[:5]
            extra = sorted(str(k) for k in set(record) - wanted)[:5]
            raise InvalidRequest(
                f"record {i} does not match the model's features"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(extra)}" if extra else "")
            )
    values = [[record[c] for c in columns] for record in rows]
    table = np.asarray(values) if values and columns else None
    if table is not None and table.ndim == 2 and table.dtype.kind in "if":
        # All numbers: one array, ten times faster than pandas inferring column by column.
        return pd.DataFrame(table, columns=columns, copy=False)
    return pd.DataFrame(values, columns=columns)


def _matrix(rows: Inputs) -> Any:
    import numpy as np

    for i, row in enumerate(rows):
        if isinstance(row, str | bytes) or not isinstance(row, Sequence):
            raise InvalidRequest(f"row {i} is not a list of values")
    try:
        x = np.asarray(rows)
    except ValueError as exc:  # ragged rows
        raise InvalidRequest(f"rows must all have the same length: {_one_line(exc)}") from exc
    if x.ndim != 2:
        raise InvalidRequest("rows must be a list of lists of values (a 2-D table)")
    return x


def _outputs(raw: Any, count: int) -> list[Any]:
    """Plain Python values, one per input row (numpy arrays and scalars converted)."""
    values = raw.tolist() if hasattr(raw, "tolist") else [_plain(v) for v in raw]
    if not isinstance(values, list) or len(values) != count:
        raise ValueError(f"the model answered {_count(values)} values for {count} rows")
    return [_plain(v) for v in values]


def _count(values: Any) -> str:
    return str(len(values)) if isinstance(values, list) else "a non-list of"


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
