"""Open Inference Protocol v2 tensors: an inference request's inputs as the rows or records
a model predicts on, and its answers as output tensors. Pure Python: everything here runs
on what a peer sent, so every shape, type and count is checked before a model sees it."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any

# The protocol's tensor data types, by the JSON values their elements must be: integers in
# the type's range, finite numbers no larger than the type's largest finite value.
_INTS = {
    **{f"INT{bits}": (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": (0, (1 << bits) - 1) for bits in (8, 16, 32, 64)},
}
_FLOATS = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": sys.float_info.max}
DATATYPES = frozenset((*_INTS, *_FLOATS, "BOOL", "BYTES"))
OUTPUT = "predict"  # the output tensor's name, as MLServer's scikit-learn runtime names it
MAX_NAME = 256
MAX_DEPTH = 8  # nesting of a tensor's data lists
# Elements of one request, all inputs together: what bounds the memory a request's decoded
# inputs (and their shadow copy) hold, and the model's time on it. 8 MiB of JSON can carry
# four million one-digit numbers; a million is tens of thousands of rows of any real width.
MAX_ELEMENTS = 1_000_000


class BadTensor(ValueError):
    """An inference request that does not describe tensors a model can take (answered 400)."""


@dataclass(frozen=True)
class InferRequest:
    """An OIP inference request, decoded: ``inputs`` are rows (one input of shape [N, F]) or
    records (one input per feature, each of shape [N] or [N, 1], keyed by the input's name)."""

    id: str | None
    inputs: list[list[Any]] | list[dict[str, Any]]


def parse_infer(payload: Any, *, max_elements: int = MAX_ELEMENTS) -> InferRequest:
    """Decode an inference request, refusing anything malformed with a one-line reason
    (among them more than ``max_elements`` elements in all its inputs)."""
    if not isinstance(payload, dict):
        raise BadTensor("an inference request is a JSON object with 'inputs'")
    request_id = payload.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > MAX_NAME):
        raise BadTensor(f"'id' must be a string of at most {MAX_NAME} characters")
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadTensor("'inputs' must be a non-empty list of tensors")
    tensors: list[tuple[str, list[int], list[Any]]] = []
    room = max_elements
    for i, item in enumerate(inputs):
        tensors.append(_tensor(item, i, room, max_elements))
        room -= len(tensors[-1][2])
    names = [name for name, _, _ in tensors]
    if len(set(names)) != len(names):
        raise BadTensor("input names must be unique")
    if len(tensors) == 1 and len(tensors[0][1]) == 2 and tensors[0][1][1] != 1:
        _, (rows, width), flat = tensors[0]
        return InferRequest(request_id, [flat[r * width : (r + 1) * width] for r in range(rows)])
    return InferRequest(request_id, _records(tensors))


def _records(tensors: list[tuple[str, list[int], list[Any]]]) -> list[dict[str, Any]]:
    """One input per feature: every one a column of the same number of rows."""
    for name, shape, _ in tensors:
        if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
            raise BadTensor(
                f"input {name!r} has shape {shape}: with several inputs each is one feature, "
                "of shape [N] or [N, 1]; send one input of shape [N, F] for rows"
            )
    rows = {shape[0] for _, shape, _ in tensors}
    if len(rows) != 1:
        raise BadTensor("every input must have the same number of rows")
    [count] = rows
    return [{name: flat[r] for name, _, flat in tensors} for r in range(count)]


def _tensor(item: Any, index: int, room: int, cap: int) -> tuple[str, list[int], list[Any]]:
    if not isinstance(item, dict):
        raise BadTensor(f"input {index} is not an object")
    name, shape, datatype = item.get("name"), item.get("shape"), item.get("datatype")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise BadTensor(f"input {index} needs a 'name' of 1 to {MAX_NAME} printable characters")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape)
    ):
        raise BadTensor(f"input {name!r}: 'shape' must be a list of one or two sizes (>= 1)")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadTensor(f"input {name!r}: unknown datatype {json.dumps(datatype)[:40]}")
    if math.prod(shape) > room:
        raise BadTensor(f"a request holds at most {cap} elements in all its inputs")
    if "data" not in item:
        raise BadTensor(f"input {name!r} has no 'data'")
    flat = _flatten(item["data"], name, room, cap)
    if math.prod(shape) != len(flat):
        raise BadTensor(
            f"input {name!r}: shape {shape} holds {math.prod(shape)} elements, its data {len(flat)}"
        )
    for value in flat:
        if not _fits(value, datatype):
            raise BadTensor(f"input {name!r}: {json.dumps(value)[:40]} is not {datatype}")
    return name, shape, flat


def _flatten(data: Any, name: str, room: int, cap: int) -> list[Any]:
    """Row-major elements of ``data``, flat or nested (the protocol allows both); more than
    ``room`` of them is refused as soon as it is seen."""
    flat: list[Any] = []
    stack = [iter(data if isinstance(data, list) else [data])]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) > MAX_DEPTH:
                    raise BadTensor(f"input {name!r}: data nested deeper than {MAX_DEPTH}")
                stack.append(iter(value))
                break
            flat.append(value)
            if len(flat) > room:
                raise BadTensor(f"a request holds at most {cap} elements in all its inputs")
        else:
            stack.pop()
    return flat


def _fits(value: Any, datatype: str) -> bool:
    """Whether a JSON value is an element of ``datatype``. Python compares an int of any
    size with a float exactly, never overflowing, so a 400-digit integer is just too big."""
    if datatype == "BOOL":
        return isinstance(value, bool)
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if datatype in _FLOATS:
        largest = _FLOATS[datatype]
        return (isinstance(value, int) or math.isfinite(value)) and -largest <= value <= largest
    if datatype not in _INTS or (isinstance(value, float) and not value.is_integer()):
        return False  # is_integer() is False for NaN and the infinities too
    low, high = _INTS[datatype]
    return low <= value <= high


def output_tensor(outputs: list[Any]) -> dict[str, Any]:
    """The model's answers, one per row, as one output tensor: shape [N] for scalars, [N, K]
    for rows of K scalars; a datatype the values fit (anything else as JSON text, BYTES)."""
    widths = {len(v) if isinstance(v, list) else None for v in outputs}
    if len(widths) == 1 and None not in widths and outputs:
        flat = [x for v in outputs for x in v]
        shape = [len(outputs), len(outputs[0])]
    else:
        flat, shape = list(outputs), [len(outputs)]
    datatype = _datatype(flat)
    if datatype == "BYTES" and not all(isinstance(x, str) for x in flat):
        flat, shape = [x if isinstance(x, str) else json.dumps(x) for x in outputs], [len(outputs)]
    return {"name": OUTPUT, "shape": shape, "datatype": datatype, "data": flat}


def _datatype(flat: list[Any]) -> str:
    if flat and all(isinstance(x, bool) for x in flat):
        return "BOOL"
    if flat and all(isinstance(x, int) and not isinstance(x, bool) for x in flat):
        return "INT64"
    if flat and all(isinstance(x, int | float) and not isinstance(x, bool) for x in flat):
        return "FP64"
    return "BYTES"
