"""Hostile token holders of a real `mvctl serve` (the registry, pull and server of
test_serve.py): requests that were answered 500 with a traceback, half-applied, or let
through unchecked are 400s that change nothing (the in-process cases are in
test_inference_refusals.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.web import test_serve as base
from tests.web.test_serve import AUTH, MODEL, infer_body, served

template, reg, host = base.template, base.reg, base.host

pytestmark = pytest.mark.slow

INFER = f"/v2/models/{MODEL}/infer"
ROW = (
    b'"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]'
)
HOSTILE = [
    (INFER, b'{"id": "\\ud800", ' + ROW + b"}"),  # a lone surrogate: the answer echoes the id
    ("/outcomes", b'{"key": "customer-1", "outcome": "\\ud800"}'),
    # The second key is printable but not ASCII: the first outcome used to be logged already.
    ("/outcomes", b'[{"key": "first-ok", "outcome": 1}, {"key": "\\u00e9", "outcome": 1}]'),
    (
        INFER,
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1'
        + b"0" * 400
        + b", 1, 1, 1]}]}",
    ),
    (INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": [], "data": [1, 1, 1, 1]}]}'),
    (INFER, b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": {}, "data": [1, 1, 1, 1]}]}'),
    (
        INFER,
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "UINT8",'
        b' "data": [300, 1, 1, 1]}]}',
    ),
    (
        INFER,
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP16",'
        b' "data": [1e300, 1, 1, 1]}]}',
    ),
    (INFER, b'{"inputs": [{"name": "x", "shape": [250001, 4], "datatype": "FP64", "data": 1}]}'),
]


def test_hostile_requests_are_400s_that_change_nothing(host: Path, tmp_path: Path) -> None:
    log = tmp_path / "decisions.jsonl"
    with served(host, "--decision-log", str(log)) as server:
        for path, body in HOSTILE:
            # A fresh connection each time: a 500 from the ASGI error middleware closes it.
            with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
                answer = client.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
            assert answer.status_code == 400, (body[:80], answer.status_code, answer.text)
            assert answer.json()["error"], body[:80]
        assert not log.exists() or log.read_text() == ""  # no decision, no outcome
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
            assert client.post(INFER, json=infer_body()).status_code == 200
    assert "Traceback" not in server.log(), server.log()
    assert log.read_text().count('"key"') == 1
