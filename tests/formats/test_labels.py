"""Labels, data windows and selectors (mvctl.formats.labels), the labels tag's name and
body (mvctl.formats.tags), and where they meet the manifest and mvctl.yaml schemas."""

from __future__ import annotations

import re
from datetime import date

import pytest

from mvctl.errors import MvctlError, UsageError
from mvctl.formats import config, tags
from mvctl.formats.labels import (
    DataWindow,
    LabelFilter,
    MetricFilter,
    check_labels,
    label_problems,
    pairs_of,
    parse_label,
    parse_metric_filter,
    parse_selector,
    parse_window,
)
from mvctl.formats.manifest import problems


@pytest.mark.parametrize(
    "text", ["season=holiday", "a=b", "team.risk=q4-2025", "k=v:1+2/3", "Region=EU_west"]
)
def test_labels_are_key_value(text: str) -> None:
    key, value = parse_label(text)
    assert f"{key}={value}" == text


@pytest.mark.parametrize(
    "text",
    [
        "baseline",  # a plain label: readable in old manifests, never written again
        "=holiday",
        "season=",
        "season holiday",
        "season=holi day",
        "-x=1",
        "season=holiday\n",  # a trailing newline: full-string match, not '$'
        "season=holiday;rm -rf",
        "saison=fête",  # ASCII only
        "k" * 64 + "=v",
        "k=" + "v" * 129,
        "--remote=x",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_label(text)


def test_check_labels_sorts_and_refuses_a_key_twice() -> None:
    assert check_labels(["team=risk", "season=holiday", "season=holiday"]) == (
        "season=holiday",
        "team=risk",
    )
    with pytest.raises(UsageError, match="season twice"):
        check_labels(["season=holiday", "season=regular"])


def test_plain_labels_are_read_but_match_nothing() -> None:
    assert pairs_of(["baseline", "season=holiday"]) == {"season": "holiday"}
    assert not LabelFilter("baseline", "").matches(["baseline"])
    assert label_problems(["baseline", "a=1", "a=2"]) == [
        "label 'baseline' is not KEY=VALUE",
        "label key 'a' is given twice",
    ]
    assert label_problems("a=1") == ["labels must be a list of KEY=VALUE strings"]


def test_data_window() -> None:
    window = parse_window("2025-11-20..2026-01-05")
    assert (window.start, window.end) == (date(2025, 11, 20), date(2026, 1, 5))
    assert window.to_dict() == {"start": "2025-11-20", "end": "2026-01-05"}
    assert DataWindow.from_dict(window.to_dict()) == window
    assert parse_window("2026-01-05..2026-01-05").start == date(2026, 1, 5)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-01-05..2025-11-20", "ends before it starts"),
        ("2025-02-30..2025-03-01", "day is out of range"),
        ("2025-11-20", "not START..END"),
        ("2025-11-20...2026-01-05", "not START..END"),
        ("20251120..20260105", "not START..END"),
        ("2025-11-20..2026-01-05\n", "not START..END"),
        ("2025-11-20T00:00..2026-01-05", "not START..END"),
    ],
)
def test_bad_windows_are_usage_errors(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=re.escape(why)):
        parse_window(text)


@pytest.mark.parametrize(
    "stored",
    [None, "2025..2026", {"start": "2026-01-05", "end": "2025-11-20"}, {"start": "x", "end": 1}],
)
def test_a_stored_window_that_is_none_reads_as_none(stored: object) -> None:
    assert DataWindow.from_dict(stored) is None


@pytest.mark.parametrize(
    ("text", "metrics", "passes"),
    [
        ("auc>=0.9", {"auc": 0.9}, True),
        ("auc>0.9", {"auc": 0.9}, False),
        ("auc <= 0.9", {"auc": 0.91}, False),
        ("loss.val<0.5", {"loss.val": 0.3}, True),
        ("n==3", {"n": 3}, True),
        ("auc>=0.9", {}, False),  # missing: never passes a threshold
        ("auc>=0.9", {"auc": True}, False),
        ("auc>=0.9", {"auc": "0.95"}, False),
        ("latency_p95_ms<1e2", {"latency_p95_ms": 12.5}, True),
    ],
)
def test_metric_filters(text: str, metrics: dict[str, object], passes: bool) -> None:
    assert parse_metric_filter(text).matches(metrics) is passes


@pytest.mark.parametrize(
    "text", ["auc", "auc=>0.9", "auc>=", "auc>=nan", "auc>=inf", "auc>=0.9x", "auc!=1", ">=0.9"]
)
def test_bad_metric_filters_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="METRIC OP NUMBER"):
        parse_metric_filter(text)


def test_selectors() -> None:
    assert parse_selector("label season=holiday") == LabelFilter("season", "holiday")
    assert parse_selector("  metric auc >= 0.9 ") == MetricFilter("auc", ">=", 0.9)
    for bad in ("season=holiday", "labels season=holiday", "label season", "metric auc"):
        with pytest.raises(UsageError):
            parse_selector(bad)


def test_labels_tag_names() -> None:
    name = tags.labels_tag("fraud", "v1.4.0", 3)
    assert name == "fraud@v1.4.0#labels#3"
    parsed = tags.parse(name)
    assert parsed == tags.TagName("labels", "fraud", version="v1.4.0", counter=3)
    assert str(parsed) == name
    assert not parsed.channel_event
    assert tags.parse("fraud@v1.4.0-rc.1#labels#12") is not None
    for suffix in ("#labels#0", "#labels#", "#labels#03", "#labels", "#label#1", "#labels#1\n"):
        assert tags.parse(f"fraud@v1.4.0{suffix}") is None, suffix


def test_gto_reads_no_labels_tag_as_anything() -> None:
    """GTO's own tag pattern (gto.constants): a labels tag is neither a version, an
    assignment nor a deregistration to it, so `gto show`/`history` skip it."""
    from gto.tag import parse_name

    assert parse_name("fraud@v1.4.0#labels#3", raise_on_fail=False) == {}
    assert parse_name("fraud@v1.4.0-rc.1#labels#12", raise_on_fail=False) == {}
    # The name a version counter would have: GTO would read it as a registration.
    assert parse_name("fraud@v1.4.0#3", raise_on_fail=False)["action"].value == "register"


def test_version_body_is_unchanged_without_labels() -> None:
    body = tags.VersionBody("fraud", "v1.0.0", "t", "a", None, {"auc": 1}, {})
    assert list(body.to_dict()) == [
        "kind", "model", "version", "created", "author", "parent", "metrics", "fingerprint",
    ]  # fmt: skip
    labelled = tags.VersionBody(
        "fraud", "v1.0.0", "t", "a", None, {}, {}, ("season=holiday",), "d",
        {"start": "2025-11-20", "end": "2026-01-05"},
    )  # fmt: skip
    assert tags.VersionBody.from_dict(labelled.to_dict()) == labelled


def test_labels_body_round_trips_and_reads_junk_as_empty() -> None:
    body = tags.LabelsBody("fraud", "v1.0.0", 2, ("a=1",), "text", "Ada", "now")
    assert tags.LabelsBody.from_dict(body.to_dict()) == body
    junk = tags.LabelsBody.from_dict({"labels": "a=1", "description": 5, "counter": "2"})
    assert (junk.labels, junk.description, junk.counter) == ((), "", 0)


def test_manifest_data_window_is_checked_when_present() -> None:
    base = {
        "schema": "mvctl/manifest/v1", "model": "fraud", "version": "v1.0.0", "created": "t",
        "author": "a", "weights": [], "dataset": [], "environment": {}, "metrics": {},
        "params": {}, "code": {"commit": "c"}, "labels": ["baseline"],
    }  # fmt: skip
    assert problems(base) == []  # an old manifest, plain label and no window: valid
    good = {**base, "data_window": {"start": "2025-11-20", "end": "2026-01-05"}}
    assert problems(good) == []
    bad = {**base, "data_window": {"start": "2026-01-05", "end": "2025-11-20"}}
    assert problems(bad) == ["data_window needs start and end, ISO dates with start <= end"]
    assert problems({**base, "labels": [1]}) == ["labels must be a list of strings"]


def test_config_takes_a_date_column_and_still_refuses_unknown_keys() -> None:
    cfg = config.loads("version: 1\nmodels:\n  fraud:\n    columns: {date: ts, label: y}\n")
    assert cfg.model("fraud").date_column == "ts"
    assert config.loads("version: 1\nmodels:\n  fraud: {}\n").model("fraud").date_column is None
    with pytest.raises(MvctlError, match=r"columns\.dates: unknown key \(did you mean 'date'\?\)"):
        config.loads("version: 1\nmodels:\n  fraud:\n    columns: {dates: ts}\n")
    with pytest.raises(MvctlError, match="must be a non-empty string"):
        config.loads("version: 1\nmodels:\n  fraud:\n    columns: {date: ''}\n")
