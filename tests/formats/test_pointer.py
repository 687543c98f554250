"""The pointer document: written as the parser reads it, and refused whole when forged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mvctl.errors import OperationalError
from mvctl.formats import pointer
from mvctl.formats.pointer import BadPointer, Pointer

COMMIT = "a" * 40
GOOD = Pointer(
    model="fraud",
    channel="production",
    event="fraud#production#3",
    commit=COMMIT,
    version="v1.2.0",
    weights=(("models/model.bin", "d" * 32),),
    published="2026-12-02T15:00:00Z",
)


def doc(**changes: Any) -> bytes:
    data = GOOD.to_dict() | changes
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_round_trip_and_key() -> None:
    body = pointer.dumps(GOOD)
    assert len(body) < 1024
    assert pointer.parse(body, "fraud", "production") == GOOD
    assert json.loads(body)["alias"] == "fraud@production"
    assert pointer.key("fraud", "production") == "mvctl/channels/fraud/production.json"


@pytest.mark.parametrize("model", ["../x", "Fraud", "fraud\n", ""])
def test_key_refuses_bad_names(model: str) -> None:
    with pytest.raises(OperationalError):
        pointer.key(model, "production")


@pytest.mark.parametrize(
    "body",
    [
        b"garbage",
        b"[]",
        b"\xff\xfe",
        b"[" * 100_000,
        b" " * 5000 + doc(),
        doc(schema="mvctl.pointer/2"),
        doc(schema=...),
        doc(extra=1),
        doc(commit=...),
        doc(commit="A" * 40),
        doc(commit=COMMIT + "\n"),
        doc(commit="../" + COMMIT[3:]),
        doc(model="Fraud"),
        doc(alias="fraud@canary"),
        doc(event="fraud#canary#3"),
        doc(event="refs/tags/fraud#production#3"),
        doc(event="fraud@v1.0.0"),
        doc(version="1.2.0"),
        doc(weights={}),
        doc(weights={"m": "nothex"}),
        doc(weights={"a\nb": "d" * 32}),
        doc(weights=["d" * 32]),
        doc(published="yesterday"),
    ],
)
def test_forged_documents_are_refused(body: bytes) -> None:
    with pytest.raises(BadPointer):
        pointer.parse(body)


def test_another_channels_pointer_is_refused() -> None:
    body = pointer.dumps(GOOD)
    with pytest.raises(BadPointer, match="not fraud@canary"):
        pointer.parse(body, "fraud", "canary")
    with pytest.raises(BadPointer):
        pointer.parse(body, "other", "production")
