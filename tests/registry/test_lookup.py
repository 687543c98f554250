"""``list`` and ``show`` by tag name (mvctl.registry.lookup) answer exactly what reading
every tag answers, and fall back to that read when an alias's body does not prove which
version it holds (a forged body never shows another version than the alias's commit's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mvctl._adapters.git import GitRepo
from mvctl.channels.marks import retire
from mvctl.channels.promotion import promote
from mvctl.registry import lookup, read
from tests.conftest import Registry, RegistryFactory, Release, copy_registry

VERSIONS = ("v0.1.0", "v0.2.0", "v0.3.0")
REFS = ("fraud", "fraud@v0.2.0", "fraud@production", "fraud@staging")


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    return registry_factory(*(Release(weights=v.encode(), version=v) for v in VERSIONS))


@pytest.fixture
def reg(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    registry = copy_registry(template, tmp_path, storage=False)
    monkeypatch.chdir(registry.root)
    promote(registry.root, "fraud", "v0.1.0", "production", push=False)
    promote(registry.root, "fraud", "v0.2.0", "production", push=False)
    promote(registry.root, "fraud", "v0.3.0", "staging", push=False)
    return registry


def answers(reg: Registry) -> tuple[object, ...]:
    git = GitRepo.open(reg.root)
    shown = tuple(read.resolve_version(git, ref) for ref in REFS)
    return (tuple(read.list_models(reg.root)), shown)


def full_answers(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> tuple[object, ...]:
    with monkeypatch.context() as mp:
        mp.setattr(lookup, "held", lambda *args: None)  # every tag, as before
        return answers(reg)


def test_by_name_is_what_every_tag_says(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    assert answers(reg) == full_answers(reg, monkeypatch)
    [summary] = read.list_models(reg.root)
    assert summary.channels == {"production": "v0.2.0", "staging": "v0.3.0"}
    retire(reg.root, "fraud", "v0.1.0", push=False)
    assert answers(reg) == full_answers(reg, monkeypatch)
    assert read.list_versions(reg.root, "fraud")[0].deregistered


def test_by_name_reads_no_tag_contents_in_bulk(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object) -> None:
        raise AssertionError("read every tag's contents")

    monkeypatch.setattr(GitRepo, "tags", refused)
    assert [m.latest for m in read.list_models(reg.root)] == ["v0.3.0"]
    assert read.show(reg.root, "fraud@production").info.version == "v0.2.0"


def test_an_alias_whose_body_names_another_version_is_read_by_its_commit(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-made alias on v0.1.0's commit whose body says v0.3.0: the commit decides."""
    message = reg.root.parent / "forged"
    fields = {"kind": "alias", "model": "fraud", "channel": "production", "version": "v0.3.0"}
    message.write_text(f"forged\n\n{json.dumps(fields)}\n")
    commit = reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    reg.git("tag", "-f", "-a", "-F", str(message), "fraud@production", commit)
    assert read.list_models(reg.root)[0].channels["production"] == "v0.1.0"
    assert read.show(reg.root, "fraud@production").info.version == "v0.1.0"
    assert answers(reg) == full_answers(reg, monkeypatch)
    reg.git("tag", "-f", "fraud@production", commit)  # lightweight: no body at all
    assert read.show(reg.root, "fraud@production").info.version == "v0.1.0"
    assert answers(reg) == full_answers(reg, monkeypatch)
