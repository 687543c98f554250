"""Names, versions, tag formats, tag messages and mvctl.yaml parsing."""

from __future__ import annotations

import pytest
import yaml

from mvctl.errors import OperationalError, UsageError
from mvctl.formats import config, tags
from mvctl.formats.names import Version, check_channel, check_model, next_version


@pytest.mark.parametrize("name", ["fraud", "a", "m2", "fraud-detector_v2", "x" * 64])
def test_valid_model_names(name: str) -> None:
    assert check_model(name) == name


@pytest.mark.parametrize(
    "name", ["", "Fraud", "-fraud", "fraud-", "fr aud", "fr@ud", "fr#ud", "x" * 65, "../x", "a/b"]
)
def test_invalid_model_names(name: str) -> None:
    with pytest.raises(UsageError):
        check_model(name)
    with pytest.raises(UsageError):
        check_channel(name)


def test_semver_parse_and_precedence() -> None:
    order = ["v0.9.0", "v0.10.0", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-beta", "v1.0.0"]
    parsed = [Version.parse(v) for v in reversed(order)]
    assert [str(v) for v in sorted(parsed, key=Version.sort_key)] == order
    assert str(Version.parse("v1.2.3-rc.1+build.5")) == "v1.2.3-rc.1+build.5"
    for bad in ("1.2.3", "v1.2", "v01.2.3", "v1.2.3-", "v1.2.3+"):
        with pytest.raises(UsageError):
            Version.parse(bad)


def test_next_version() -> None:
    assert str(next_version([], "minor")) == "v0.1.0"
    existing = [Version.parse(v) for v in ("v0.1.0", "v0.2.0", "v0.2.1")]
    assert str(next_version(existing, "minor")) == "v0.3.0"
    assert str(next_version(existing, "patch")) == "v0.2.2"
    assert str(next_version(existing, "major")) == "v1.0.0"
    pre = [Version.parse("v1.0.0-rc.1")]
    assert str(next_version(pre, "patch")) == "v1.0.0"
    assert str(next_version([*pre, Version.parse("v1.0.0")], "patch")) == "v1.0.1"


@pytest.mark.parametrize(
    ("name", "kind", "fields"),
    [
        ("fraud@v1.2.0", "version", {"version": "v1.2.0"}),
        ("fraud@v1.2.0!", "deregister", {"version": "v1.2.0"}),
        ("fraud@v1.2.0#gold", "gold", {"version": "v1.2.0"}),
        ("fraud#production#12", "event", {"channel": "production", "counter": 12}),
        ("fraud@production", "alias", {"channel": "production"}),
        ("refs/tags/fraud@canary", "alias", {"channel": "canary"}),
    ],
)
def test_tag_names_round_trip(name: str, kind: str, fields: dict[str, object]) -> None:
    parsed = tags.parse(name)
    assert parsed is not None
    assert parsed.kind == kind
    assert parsed.model == "fraud"
    for key, value in fields.items():
        assert getattr(parsed, key) == value
    assert str(parsed) == name.removeprefix("refs/tags/")


@pytest.mark.parametrize(
    "name",
    [
        "v1.0.0",
        "fraud@v1.2",
        "fraud#prod#0",
        "fraud#prod",
        "Fraud@v1.0.0",
        "fraud@@x",
        "fraud@v1.0.0#silver",
        "fraud@v1.0.0!#gold",
    ],
)
def test_other_tags_are_not_ours(name: str) -> None:
    assert tags.parse(name) is None


def test_tag_message_round_trip() -> None:
    body = {"kind": "version", "version": "v1.0.0", "metrics": {"auc": 0.9}}
    text = tags.format_message("Register fraud v1.0.0", body)
    assert text.splitlines()[0] == "Register fraud v1.0.0"
    assert tags.parse_message(text) == ("Register fraud v1.0.0", body)
    # The body is YAML that JSON parsers read too.
    assert yaml.safe_load(text.partition("\n\n")[2]) == body
    # Bodies written by hand in block style still read; broken ones read as empty.
    assert tags.parse_message("by hand\n\nkind: version\nversion: v1.0.0\n") == (
        "by hand",
        {"kind": "version", "version": "v1.0.0"},
    )
    assert tags.parse_message("hand written\n\nnot: [yaml") == ("hand written", {})
    assert tags.parse_message("") == ("", {})


def test_config_defaults_and_models() -> None:
    cfg = config.loads(config.TEMPLATE)
    assert cfg.channels == ("production", "staging", "canary", "shadow")
    assert cfg.models == {}
    cfg = config.loads(
        "version: 1\nchannels: [production, qa]\nmodels:\n"
        "  fraud:\n    weights: models/f.pkl\n    data: data/x.csv\n    gates: {}\n"
    )
    assert cfg.channels == ("production", "qa")
    assert cfg.model("fraud").weights == "models/f.pkl"
    assert cfg.model("fraud").data == ("data/x.csv",)
    assert cfg.model("other").weights is None


@pytest.mark.parametrize(
    "text",
    [
        "version: 2\n",
        "- a list\n",
        "channels: [Prod]\n",
        "models: {Bad: {}}\n",
        "models: {m: {weights: 3}}\n",
        "models: {m: {data: [1]}}\n",
        "models: [: \n",
    ],
)
def test_bad_configs_are_operational_errors(text: str) -> None:
    with pytest.raises(OperationalError, match=r"mvctl\.yaml"):
        config.loads(text)


def test_a_mark_body_names_pruned_only_when_set() -> None:
    from mvctl.formats.tags import MarkBody

    plain = MarkBody("deregister", "fraud", "v1.0.0", "old", "Ada <a@x>", "2030-01-01T00:00:00Z")
    assert "pruned" not in plain.to_dict()  # tags written before gc stay byte-identical
    pruned = MarkBody(**{**plain.__dict__, "pruned": True})
    assert pruned.to_dict()["pruned"] is True
    assert MarkBody.from_dict(pruned.to_dict()) == pruned
    assert MarkBody.from_dict(plain.to_dict()) == plain
    assert not MarkBody.from_dict({**plain.to_dict(), "pruned": "yes"}).pruned  # only true


EVENT_NAMES = [
    "fraud#production#3",  # first line of the text
    "fraud#production!#4",
    "fraud#staging#12",
    "fraud#production#03",  # not a counter as parse reads one
    "fraud#production#3.lock",
    "fraudx#production#5",  # another model whose name starts with this one
    "xfraud#production#6",
    "fraud#Production#7",
    "fraud@production",
    "fraud@v0.1.0",
    "fraud#production#999999999999999999",
    "fraud#production#1",  # last line of the text
]


@pytest.mark.parametrize("names", [EVENT_NAMES, [*EVENT_NAMES, "fraud#production#8\nx"]])
def test_event_counters_read_what_parse_reads(names: list[str]) -> None:
    """One pattern over all the names finds exactly the model's channel events that parse
    finds, one name at a time (also when a name holds a newline: then parse is used)."""
    expected = [
        (n, p.channel, p.counter)
        for n in names
        if (p := tags.parse(n)) is not None and p.channel_event and p.model == "fraud"
    ]
    assert len(expected) == 5
    assert tags.event_counters("fraud", names) == expected
    assert tags.event_counters("fraud", names[::-1]) == expected[::-1]
    assert tags.event_counters("fraud", []) == []


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["fraud#staging#1000000000000000000"],  # past the 18 digits parse reads: no event
        ["other#production#9999999999999999999", "fraudx#production#99999"],
        ["fraud#canary#\u0663\u0663"],  # Arabic-Indic 33: parse reads it, by its value
        ["fraud#canary#\u0663", "fraud#shadow!#1000000000000000000"],
    ],
)
def test_newest_event_and_channel_counters_read_what_parse_reads(extra: list[str]) -> None:
    names = [*EVENT_NAMES, *extra]
    events = [
        (n, p.channel, p.counter)
        for n in names
        if (p := tags.parse(n)) is not None and p.channel_event and p.model == "fraud"
    ]
    top = max(c for _, _, c in events)
    text = "\n" + "\n".join(names) + "\n"
    name, counter = tags.newest_event("fraud", text) or ("", 0)
    assert counter == top and name in {n for n, _, c in events if c == top}
    for channel in ("production", "staging", "canary"):
        expected = sorted(c for _, ch, c in events if ch == channel)
        assert sorted(tags.channel_counters("fraud", channel, text)) == expected
    assert tags.newest_event("fraud", "\n\n") is None
    assert tags.newest_event("fraud", "\nfraud#production#03\nfraudx#a#4\n") is None
