"""Metrics (numbers only), params, and lockfile parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvctl.errors import OperationalError, UsageError
from mvctl.formats.values import flatten, merge, parse_metric_options, read_metrics, read_params
from mvctl.registry.environment import capture, parse_lockfile


def test_metrics_files_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"auc": 0.9, "n": 3, "val": {"f1": 0.7}}))
    assert read_metrics(tmp_path / "m.json") == {"auc": 0.9, "n": 3, "val": {"f1": 0.7}}
    (tmp_path / "m.yaml").write_text("auc: 0.9\nval:\n  f1: 0.7\n")
    assert read_metrics(tmp_path / "m.yaml") == {"auc": 0.9, "val": {"f1": 0.7}}


@pytest.mark.parametrize(
    "content", ['{"auc": "0.9"}', '{"ok": true}', '{"x": null}', '{"x": [1]}', '{"a": {"b": "c"}}']
)
def test_non_numeric_metrics_are_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / "m.json").write_text(content)
    with pytest.raises(OperationalError, match="not a number"):
        read_metrics(tmp_path / "m.json")


def test_nan_and_bad_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("auc: .nan\n")
    with pytest.raises(OperationalError, match="not a number"):
        read_metrics(tmp_path / "m.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(OperationalError, match="mapping"):
        read_metrics(tmp_path / "list.yaml")
    with pytest.raises(OperationalError, match="does not exist"):
        read_params(tmp_path / "none.yaml")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(OperationalError, match="not valid JSON"):
        read_metrics(tmp_path / "bad.json")


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("x: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(OperationalError, match="not valid YAML"):
        read_params(tmp_path / "p.yaml")


def test_metric_options() -> None:
    assert parse_metric_options(["auc=0.93", "lat.p95=12", "n=-3"]) == {
        "auc": 0.93,
        "lat": {"p95": 12},
        "n": -3,
    }
    for bad in ("auc", "=1", "auc=high", "auc=nan", "a..b=1"):
        with pytest.raises(UsageError):
            parse_metric_options([bad])


def test_merge_and_flatten() -> None:
    merged = merge({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 5}, "e": 6})
    assert merged == {"a": 1, "b": {"c": 5, "d": 3}, "e": 6}
    assert flatten(merged) == {"a": 1, "b.c": 5, "b.d": 3, "e": 6}


LOCKS = {
    "requirements.txt": ("numpy==2.1.0\nScikit_Learn[all]==1.5.2 ; python_version>'3'\n-e .\n"),
    "uv.lock": '[[package]]\nname = "NumPy"\nversion = "2.1.0"\n\n'
    '[[package]]\nname = "scikit-learn"\nversion = "1.5.2"\n',
    "poetry.lock": '[[package]]\nname = "numpy"\nversion = "2.1.0"\n'
    '[[package]]\nname = "scikit-learn"\nversion = "1.5.2"\n',
    "Pipfile.lock": json.dumps(
        {
            "default": {"numpy": {"version": "==2.1.0"}},
            "develop": {"scikit-learn": {"version": "==1.5.2"}},
        }
    ),
    "environment.yml": "dependencies:\n  - conda-forge::numpy=2.1.0=py311h\n"
    "  - python\n  - pip:\n    - scikit-learn==1.5.2\n",
    "conda-lock.yml": "package:\n  - {name: numpy, version: 2.1.0, manager: conda}\n"
    "  - {name: scikit-learn, version: 1.5.2, manager: pip}\n",
}


@pytest.mark.parametrize("filename", list(LOCKS))
def test_lockfiles(filename: str) -> None:
    assert parse_lockfile(filename, LOCKS[filename]) == {"numpy": "2.1.0", "scikit-learn": "1.5.2"}


def test_capture_running_interpreter() -> None:
    env = capture()
    assert env.lockfile is None
    assert "pytest" in env.packages
    assert list(env.packages) == sorted(env.packages)
