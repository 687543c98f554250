"""Hostile token holders of the model server, in-process (a real Router over a real skops
model, Starlette's test client): a request is refused whole, with a 400, before the model
runs or a line is logged; and decoding a big body never holds the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from mvctl.serving import Router
from mvctl.web import inference
from mvctl.web.tensors import MAX_ELEMENTS, BadTensor, parse_infer
from tests.web import test_inference as base
from tests.web.test_inference import AUTH, FEATURES, TOKEN, infer_body, serving

weights, router = base.weights, base.router

INFER = "/v2/models/iris/infer"
JSON = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
def client(router: Router, weights: Path) -> Iterator[TestClient]:
    serving(router, weights)
    app = inference.create_app(router, model="iris", token=TOKEN, max_elements=40)
    # A 500 is an answer here, as a client sees it, not an exception in the test.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _log(tmp_path: Path) -> str:
    path = tmp_path / "decisions.jsonl"
    return path.read_text() if path.exists() else ""


def _tensor(datatype: Any, data: list[Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, len(data)], "datatype": datatype, "data": data}]}


# --- strings UTF-8 cannot carry ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        # A request id that is a lone surrogate: valid JSON, not text; the answer echoes it.
        b'{"id": "\\ud800", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [5.1, 3.5, 1.4, 0.2]}]}',
        b'{"id": "\\udfff", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [5.1, 3.5, 1.4, 0.2]}], "parameters": {"\\ud83d": 1}}',
        # The same surrogate encoded as UTF-8 bytes (which json.loads of bytes lets through).
        b'{"id": "\xed\xa0\x80", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [5.1, 3.5, 1.4, 0.2]}]}',
    ],
    ids=["escaped-high", "escaped-low-and-a-key", "utf8-encoded"],
)
def test_a_lone_surrogate_is_a_400_before_the_model_runs(
    client: TestClient, tmp_path: Path, body: bytes
) -> None:
    answer = client.post(INFER, content=body, headers=JSON)
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert "surrogate" in answer.json()["error"] or "UTF-8" in answer.json()["error"]
    assert _log(tmp_path) == ""  # the model never ran: no decision to log twice on a retry
    metrics = client.get("/metrics", headers=AUTH).text
    assert 'mvctl_requests_total{channel="production",version="v1.0.0"} 0.0' in metrics


def test_a_body_with_a_utf8_byte_order_mark_is_served(client: TestClient) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(infer_body()).encode()
    assert client.post(INFER, content=body, headers=JSON).status_code == 200
    latin1 = client.post(INFER, content=b'{"id": "\xe9", "inputs": []}', headers=JSON)
    assert latin1.status_code == 400 and "UTF-8" in latin1.json()["error"]


def test_a_surrogate_pair_is_text_and_is_served(client: TestClient) -> None:
    body = b'{"id": "\\ud83d\\ude00", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
    answer = client.post(INFER, content=body + b' "data": [5.1, 3.5, 1.4, 0.2]}]}', headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == "\U0001f600"


@pytest.mark.parametrize(
    "body",
    [
        b'{"key": "customer-1", "outcome": "\\ud800"}',
        b'[{"key": "customer-1", "outcome": 1}, {"key": "customer-2", "outcome": {"\\udc00": 1}}]',
    ],
)
def test_an_outcome_with_a_lone_surrogate_is_a_400(
    client: TestClient, tmp_path: Path, body: bytes
) -> None:
    answer = client.post("/outcomes", content=body, headers=JSON)
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert _log(tmp_path) == ""


# --- an /outcomes batch is all or nothing -----------------------------------------------------


@pytest.mark.parametrize(
    "second",
    [
        {"key": "\u00e9", "outcome": 1},  # printable, not ASCII: the router's check_key refuses it
        {"key": "x" * 257, "outcome": 1},
        {"key": "k", "outcome": "x" * 5000},  # over the decision log's 4 KiB cap
        {"key": "k", "outcome": 1, "extra": 2},
    ],
    ids=["non-ascii-key", "long-key", "outcome-too-large", "extra-field"],
)
def test_a_refused_outcome_batch_records_none_of_its_outcomes(
    client: TestClient, tmp_path: Path, second: dict[str, Any]
) -> None:
    batch = [{"key": "first-ok", "outcome": 1}, second, {"key": "third-ok", "outcome": 0}]
    answer = client.post("/outcomes", json=batch, headers=AUTH)
    assert answer.status_code == 400, answer.text
    assert _log(tmp_path) == ""  # a retry of the fixed batch duplicates nothing


def test_an_accepted_outcome_batch_records_every_outcome_in_order(
    client: TestClient, tmp_path: Path
) -> None:
    batch = [{"key": f"k{i}", "outcome": i % 2} for i in range(50)]
    assert client.post("/outcomes", json=batch, headers=AUTH).status_code == 204
    lines = [json.loads(line) for line in _log(tmp_path).splitlines()]
    assert [(line["key"], line["outcome"]) for line in lines] == [
        (f"k{i}", i % 2) for i in range(50)
    ]


# --- values outside their datatype, and malformed datatypes -----------------------------------


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("UINT8", 300),
        ("UINT8", -1),
        ("INT8", -1000),
        ("INT8", 128),
        ("INT16", 32768),
        ("UINT16", 65536),
        ("INT32", -(2**31) - 1),
        ("UINT32", 2**32),
        ("INT64", 10**30),
        ("INT64", 1e30),
        ("INT64", 2**63),
        ("UINT64", 2**64),
        ("UINT64", 1.5),
        ("FP16", 1e300),
        ("FP16", 65505),
        ("FP16", -70000.0),
        ("FP32", 1e300),
        ("FP32", -3.5e38),
        ("FP64", 10**400),
        ("FP64", -(10**400)),
        ("BOOL", 1),
        ("BOOL", "true"),
        ("BYTES", 1),
    ],
    ids=lambda value: str(value)[:12],
)
def test_a_value_outside_its_datatype_is_refused(datatype: str, value: Any) -> None:
    with pytest.raises(BadTensor, match=f"is not {datatype}"):
        parse_infer(_tensor(datatype, [value, 1, 1, 1]))


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("UINT8", 255),
        ("UINT8", 0),
        ("INT8", -128),
        ("INT8", 127.0),
        ("INT16", -32768),
        ("UINT16", 65535),
        ("INT32", 2**31 - 1),
        ("UINT32", 2**32 - 1),
        ("INT64", -(2**63)),
        ("INT64", 2**63 - 1),
        ("UINT64", 2**64 - 1),
        ("FP16", 65504),
        ("FP16", -65504.0),
        ("FP32", 3.4028234663852886e38),
        ("FP64", 1e308),
        ("FP64", 10**300),
        ("FP64", 1),
    ],
    ids=lambda value: str(value)[:12],
)
def test_the_edges_of_each_datatype_are_accepted(datatype: str, value: Any) -> None:
    parsed = parse_infer(_tensor(datatype, [value, 1, 1, 1]))
    assert parsed.inputs == [[value, 1, 1, 1]]


@pytest.mark.parametrize(
    "body",
    [
        # A JSON integer of 401 digits as FP64 (math.isfinite(int) raised OverflowError).
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
        b' "data": [1' + b"0" * 400 + b", 1, 1, 1]}]}",
        # Unhashable datatypes (a set lookup raised TypeError).
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": [], "data": [1, 1, 1, 1]}]}',
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": {}, "data": [1, 1, 1, 1]}]}',
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": 5, "data": [1, 1, 1, 1]}]}',
        # A value out of range reaches no model either.
        b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "UINT8",'
        b' "data": [300, 1, 1, 1]}]}',
    ],
    ids=["int-401-digits-as-FP64", "datatype-list", "datatype-object", "datatype-int", "uint8-300"],
)
def test_a_malformed_tensor_is_a_400_not_a_500(
    client: TestClient, tmp_path: Path, body: bytes
) -> None:
    answer = client.post(INFER, content=body, headers=JSON)
    assert answer.status_code == 400, (answer.status_code, answer.text)
    assert answer.json()["error"]
    assert _log(tmp_path) == ""


# --- elements per request ---------------------------------------------------------------------


def test_a_request_over_the_element_cap_is_refused() -> None:
    at_cap = {"inputs": [{"name": "x", "shape": [MAX_ELEMENTS], "datatype": "UINT8", "data": 0}]}
    with pytest.raises(BadTensor, match="elements"):  # by its shape, before its data is read
        parse_infer(at_cap, max_elements=MAX_ELEMENTS - 1)
    two = {
        "inputs": [
            {"name": "a", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
            {"name": "b", "shape": [3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]},
        ]
    }
    assert len(parse_infer(two, max_elements=6).inputs) == 3
    with pytest.raises(BadTensor, match="at most 5 elements"):  # all inputs together
        parse_infer(two, max_elements=5)
    lying = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1.0] * 1000}]}
    with pytest.raises(BadTensor, match="at most 10 elements"):  # data beyond its shape
        parse_infer(lying, max_elements=10)


def test_the_server_refuses_requests_over_its_element_cap(
    client: TestClient, tmp_path: Path
) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2]] * 11  # 44 elements; this app takes 40
    answer = client.post(INFER, json=infer_body(rows), headers=AUTH)
    assert answer.status_code == 400 and "at most 40" in answer.json()["error"], answer.text
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    answer = client.post("/predict", json=records, headers=AUTH)
    assert answer.status_code == 400 and "at most 40" in answer.json()["error"], answer.text
    assert _log(tmp_path) == ""
    assert client.post(INFER, json=infer_body(rows[:10]), headers=AUTH).status_code == 200


# --- decoding off the event loop --------------------------------------------------------------


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("path", [INFER, "/predict", "/outcomes"])
def test_a_body_is_decoded_off_the_event_loop(
    router: Router, weights: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """While one request's body is being decoded, the event loop answers a health probe: the
    decoding holds it (json.loads, tensor checks) for no request."""
    serving(router, weights)
    decoding, probed = threading.Event(), threading.Event()
    seen: list[tuple[str, bool, bool]] = []

    def watched(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            on_loop = _on_event_loop()
            decoding.set()
            # On the loop, the probe could never be answered while this waits: don't.
            seen.append((name, on_loop, not on_loop and probed.wait(30)))
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(
        inference, "json", SimpleNamespace(loads=watched("json", json.loads), dumps=json.dumps)
    )
    monkeypatch.setattr(inference, "parse_infer", watched("tensors", inference.parse_infer))
    body = {
        INFER: infer_body(),
        "/predict": [dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))],
        "/outcomes": {"key": "k", "outcome": 1},
    }[path]
    app = inference.create_app(router, model="iris", token=TOKEN)
    with TestClient(app) as client:  # one event loop for every request of this client
        answers: list[int] = []
        sender = threading.Thread(
            target=lambda: answers.append(client.post(path, json=body, headers=AUTH).status_code)
        )
        sender.start()
        assert decoding.wait(30)
        assert client.get("/v2/health/live").status_code == 200
        probed.set()
        sender.join(60)
    assert answers and answers[0] in (200, 204), answers
    expected = ["json", "tensors"] if path == INFER else ["json"]
    assert [name for name, _, _ in seen] == expected
    assert [on_loop for _, on_loop, _ in seen] == [False] * len(expected), seen
    assert all(answered for _, _, answered in seen), seen
