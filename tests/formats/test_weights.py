"""Weighted channels in the tag formats: GTO's unassignment tag, weights in event and alias
bodies (absent unless set, so older tags stay byte-identical), and weights as users type
them (hostile ones refused as usage errors)."""

from __future__ import annotations

import json
import math

import pytest

from mvctl.errors import UsageError
from mvctl.formats import tags


@pytest.mark.parametrize(
    ("name", "kind", "channel", "counter"),
    [
        ("fraud#canary!#7", "unassign", "canary", 7),
        ("refs/tags/fraud#shadow!#12", "unassign", "shadow", 12),
        ("fraud#canary#7", "event", "canary", 7),
    ],
)
def test_unassign_tags_round_trip(name: str, kind: str, channel: str, counter: int) -> None:
    parsed = tags.parse(name)
    assert parsed is not None
    assert (parsed.kind, parsed.model, parsed.channel, parsed.counter) == (
        kind,
        "fraud",
        channel,
        counter,
    )
    assert parsed.channel_event
    assert str(parsed) == name.removeprefix("refs/tags/")
    assert tags.TagName(kind, "fraud", channel=channel, counter=counter) == parsed


def test_unassign_tag_is_gtos_format() -> None:
    from gto.constants import Action
    from gto.tag import parse_name

    name = tags.unassign_tag("fraud", "canary", 5)
    assert name == "fraud#canary!#5"
    parsed = parse_name(name)
    assert parsed["action"] == Action.UNASSIGN
    assert (parsed["name"], parsed["stage"], parsed["counter"]) == ("fraud", "canary", 5)


@pytest.mark.parametrize(
    "name",
    ["fraud#canary!", "fraud#canary!#0", "fraud#canary!!#3", "fraud#canary#!3", "fraud!#c#3",
     "fraud#canary!#3\n", "fraud#Canary!#3"],
)  # fmt: skip
def test_malformed_unassign_tags_are_not_ours(name: str) -> None:
    assert tags.parse(name) is None


def test_newest_stops_per_channel() -> None:
    names = ["fraud#canary!#3", "fraud#canary!#9", "fraud#canary#10", "fraud#shadow!#4", "x@v1.0.0"]
    assert tags.newest_stops(names) == {("fraud", "canary"): 9, ("fraud", "shadow"): 4}


def _event(**extra: object) -> tags.EventBody:
    fields: dict[str, object] = {
        "kind": "promote",
        "model": "fraud",
        "channel": "production",
        "version": "v1.0.0",
        "previous": None,
        "counter": 1,
        "reason": "",
        "actor": "Ada <ada@example.com>",
        "time": "2026-01-01T00:00:00Z",
    }
    fields.update(extra)
    return tags.EventBody(**fields)  # type: ignore[arg-type]


def test_bodies_without_a_weight_are_unchanged() -> None:
    # The exact text tags were written with before weights existed.
    assert tags.format_message("t", _event().to_dict()) == (
        't\n\n{\n "kind": "promote",\n "model": "fraud",\n "channel": "production",\n'
        ' "version": "v1.0.0",\n "previous": null,\n "counter": 1,\n "reason": "",\n'
        ' "actor": "Ada <ada@example.com>",\n "time": "2026-01-01T00:00:00Z",\n'
        ' "gates": [],\n "request": null,\n "incident": null\n}\n'
    )
    alias = tags.AliasBody("fraud", "production", "v1.0.0", "fraud#production#1", 1)
    assert tags.format_message("a", alias.to_dict()) == (
        'a\n\n{\n "kind": "alias",\n "model": "fraud",\n "channel": "production",\n'
        ' "version": "v1.0.0",\n "event": "fraud#production#1",\n "counter": 1\n}\n'
    )


def test_weights_are_written_as_numbers_integers_as_ints() -> None:
    body = _event(kind="weight", weight=25.0, previous_weight=10).to_dict()
    text = tags.format_message("t", body)
    assert '"weight": 25,' in text and '"previous_weight": 10\n' in text
    assert tags.EventBody.from_dict(json.loads(text.partition("\n\n")[2])).weight == 25
    alias = tags.AliasBody("fraud", "canary", "v1.0.0", "fraud#canary#2", 2, weight=12.5)
    message = tags.format_message("a", alias.to_dict())
    # The contract with the serving host: the JSON after the title line carries the weight.
    assert json.loads(message.partition("\n")[2])["weight"] == 12.5
    assert tags.AliasBody.from_dict(json.loads(message.partition("\n")[2])).weight == 12.5


@pytest.mark.parametrize(
    "value", [0, -1, 101, 100.0001, "10", None, True, [10], math.nan, math.inf, 1e400]
)
def test_a_weight_in_a_body_reads_as_none_unless_a_percentage(value: object) -> None:
    assert tags.AliasBody.from_dict({"weight": value}).weight is None
    assert tags.EventBody.from_dict({"weight": value, "previous_weight": value}).weight is None


@pytest.mark.parametrize(
    ("text", "value"), [("10", 10), ("10.0", 10), ("12.5", 12.5), ("0.5", 0.5), ("100", 100)]
)
def test_weights_as_typed(text: str, value: float) -> None:
    parsed = tags.parse_weight(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    "text",
    ["10; rm -rf /", "NaN", "nan", "inf", "-inf", "0", "0.0", "101", "100.5", "-1", "", " 10",
     "10 ", "1e1", "0x10", "10%", "--weight", "1_0", "\u0661\u0660", "10.1234567"],
)  # fmt: skip
def test_hostile_weights_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        tags.parse_weight(text)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0, -1, 101, True])
def test_check_weight_refuses_what_is_no_percentage(value: float) -> None:
    with pytest.raises(UsageError):
        tags.check_weight(value)


@pytest.mark.parametrize("channel", ["production", "shadow"])
def test_production_and_shadow_take_no_weight(channel: str) -> None:
    with pytest.raises(UsageError, match="no weight"):
        tags.refuse_weight(channel)
    tags.refuse_weight("canary")
    tags.refuse_weight("staging")
