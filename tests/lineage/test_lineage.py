"""lineage and diff on a registry with a branch: v1 -> v2 (params) -> v3 (new data file),
and v2 -> v2.1 on a branch (dependency upgrade)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvctl.errors import OperationalError, UsageError
from mvctl.lineage.diff import diff
from mvctl.lineage.tree import report
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, git, isolate, make_registry, mvctl, run

LOCK = "numpy=={numpy}\nscikit-learn==1.5.0\n"


def _register(reg: Registry, weights: bytes, data: tuple[str, ...], **kw: object) -> str:
    reg.write("models/model.bin", weights)
    result = register(
        RegisterRequest(
            model="fraud",
            cwd=reg.root,
            weights="models/model.bin",
            data=data,
            metrics_file="metrics.json",
            params_file="params.yaml",
            env_lock="requirements.lock",
            **kw,  # type: ignore[arg-type]
        )
    )
    return result.manifest.version


@pytest.fixture(scope="module")
def branched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """Built once for the module (registering is the slow part); tests only read it."""
    base = tmp_path_factory.mktemp("branched")
    home = base / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, home)
        reg = make_registry(base)
        reg.write("train.py", "print('training')\n")
        reg.write("params.yaml", "train:\n  C: 1.0\n  depth: 3\n")
        reg.write("requirements.lock", LOCK.format(numpy="2.0.0"))
        reg.write(".gitignore", "metrics.json\n")
        reg.git("add", ".")
        reg.git("commit", "-q", "-m", "Training code")
        reg.write("data/train.csv", "x,y\n1,0\n2,1\n")
        reg.write("metrics.json", json.dumps({"auc": 0.90}))
        assert _register(reg, b"v1", ("data/train.csv",)) == "v0.1.0"

        reg.write("params.yaml", "train:\n  C: 0.5\n  depth: 3\n")
        reg.git("commit", "-q", "-am", "Tune C")
        reg.write("metrics.json", json.dumps({"auc": 0.92}))
        assert _register(reg, b"v2", ("data/train.csv",)) == "v0.2.0"

        reg.write("data/extra.csv", "x,y\n3,1\n")
        assert _register(reg, b"v3", ("data/train.csv", "data/extra.csv")) == "v0.3.0"

        reg.git("checkout", "-q", "-b", "upgrade", "fraud@v0.2.0")
        reg.write("requirements.lock", LOCK.format(numpy="2.1.0"))
        reg.git("commit", "-q", "-am", "Upgrade numpy")
        assert _register(reg, b"v21", ("data/train.csv",), version="v0.2.1") == "v0.2.1"
        reg.git("push", "-q", "origin", "main", "upgrade", "--tags")
        yield reg


def test_lineage_tree(branched: Registry) -> None:
    tree = report(branched.root, "fraud")
    assert tree.roots == ("v0.1.0",)
    assert {v: n.parent for v, n in tree.nodes.items()} == {
        "v0.1.0": None,
        "v0.2.0": "v0.1.0",
        "v0.2.1": "v0.2.0",
        "v0.3.0": "v0.2.0",
    }
    assert tree.nodes["v0.2.0"].children == ("v0.2.1", "v0.3.0")
    assert tree.nodes["v0.1.0"].summary == "first version"
    assert tree.nodes["v0.2.0"].summary == "changed: weights, params, code; auc +0.02"
    assert tree.nodes["v0.3.0"].summary == "changed: weights, +data data/extra.csv"
    assert tree.nodes["v0.2.1"].summary == "changed: weights, environment, code"


def test_ancestry_of_one_version(branched: Registry) -> None:
    chain = report(branched.root, "fraud", "v0.2.1")
    assert list(chain.nodes) == ["v0.1.0", "v0.2.0", "v0.2.1"]
    assert chain.nodes["v0.2.0"].children == ("v0.2.1",)
    assert chain.focus == "v0.2.1"


def test_diff_params_change_names_only_that(branched: Registry) -> None:
    d = diff(branched.root, "fraud", "v0.1.0", "v0.2.0")
    assert [(p.path, p.status) for p in d.weights] == [("models/model.bin", "changed")]
    assert [(p.path, p.status) for p in d.dataset] == [("data/train.csv", "same")]
    assert [(c.key, c.old, c.new) for c in d.params] == [("train.C", 1.0, 0.5)]
    assert d.environment == () and d.packages == ()
    assert [(m.key, m.old, m.new) for m in d.metrics] == [("auc", 0.90, 0.92)]
    assert d.metrics[0].delta == pytest.approx(0.02)
    assert d.metrics[0].relative == pytest.approx(0.02 / 0.90)
    assert [(c.path, c.status) for c in d.code] == [("params.yaml", "M")]
    assert not d.identical


def test_diff_new_data_file(branched: Registry) -> None:
    d = diff(branched.root, "fraud", "v0.2.0", "v0.3.0")
    assert [(p.path, p.status) for p in d.dataset] == [
        ("data/extra.csv", "added"),
        ("data/train.csv", "same"),
    ]
    assert d.params == () and d.packages == () and d.metrics == ()
    assert d.code == ()  # only files mvctl and DVC wrote changed


def test_diff_dependency_upgrade_across_branches(branched: Registry) -> None:
    d = diff(branched.root, "fraud", "v0.2.0", "v0.2.1")
    assert [(p.name, p.change, p.old, p.new) for p in d.packages] == [
        ("numpy", "upgraded", "2.0.0", "2.1.0")
    ]
    assert d.params == () and d.metrics == ()
    assert [(p.path, p.status) for p in d.dataset] == [("data/train.csv", "same")]
    assert [(c.path, c.status, c.added, c.deleted) for c in d.code] == [
        ("requirements.lock", "M", 1, 1)
    ]
    back = diff(branched.root, "fraud", "v0.2.1", "v0.2.0")
    assert [(p.name, p.change) for p in back.packages] == [("numpy", "downgraded")]


def test_diff_with_itself_is_identical(branched: Registry) -> None:
    d = diff(branched.root, "fraud", "v0.3.0", "v0.3.0")
    assert d.identical
    proc = mvctl(branched.root, "diff", "fraud", "v0.3.0", "v0.3.0")
    assert proc.returncode == 0
    assert "identical" in proc.stdout


def test_same_answers_from_any_branch_and_a_fresh_clone(branched: Registry, tmp_path: Path) -> None:
    expected = report(branched.root, "fraud").to_dict()
    expected_diff = diff(branched.root, "fraud", "v0.2.0", "v0.2.1")
    for branch in ("main", "upgrade"):
        git(branched.root, "checkout", "-q", branch)
        assert report(branched.root, "fraud").to_dict() == expected
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(branched.origin), clone, cwd=tmp_path)
    assert report(clone, "fraud").to_dict() == {
        **expected,
        "versions": [dict(v, channels=[]) for v in expected["versions"]],
    }
    cloned = diff(clone, "fraud", "v0.2.0", "v0.2.1")
    assert (cloned.packages, cloned.code, cloned.weights) == (
        expected_diff.packages,
        expected_diff.code,
        expected_diff.weights,
    )


def test_lineage_ignores_what_manifests_claim(branched: Registry) -> None:
    """The parent recorded in a manifest is informational; history decides."""
    manifest = branched.git("show", "fraud@v0.3.0:registry/fraud/manifest.yaml")
    assert "parent: v0.2.0" in manifest
    tree_before = report(branched.root, "fraud").to_dict()
    git(branched.root, "checkout", "-q", "main")
    path = branched.root / "registry/fraud/manifest.yaml"
    path.write_text(path.read_text().replace("parent: v0.2.0", "parent: v0.1.0"))
    git(branched.root, "commit", "-q", "-am", "A hand edit")
    assert report(branched.root, "fraud").to_dict() == tree_before
    git(branched.root, "reset", "-q", "--hard", "HEAD~1")


def test_lineage_formats(branched: Registry) -> None:
    out = mvctl(branched.root, "lineage", "fraud", "--format", "mermaid", check=True).stdout
    assert out.startswith("```mermaid\ngraph TD\n")
    assert "  v_0_2_0 --> v_0_2_1" in out and "  v_0_2_0 --> v_0_3_0" in out
    assert "  v_0_1_0 --> v_0_2_0" in out
    dot = mvctl(branched.root, "lineage", "fraud", "--format", "dot", check=True).stdout
    assert dot.startswith('digraph "fraud lineage" {')
    assert '  "v0.2.0" -> "v0.3.0";' in dot
    data = json.loads(mvctl(branched.root, "lineage", "fraud", "--json", check=True).stdout)
    assert [v["version"] for v in data["versions"]] == ["v0.1.0", "v0.2.0", "v0.2.1", "v0.3.0"]
    rich = mvctl(branched.root, "lineage", "fraud", check=True).stdout
    assert rich.index("v0.1.0") < rich.index("v0.2.0") < rich.index("v0.2.1")
    assert "+data data/extra.csv" in rich


def test_diff_formats(branched: Registry) -> None:
    md = mvctl(branched.root, "diff", "fraud", "v0.1.0", "v0.2.0", "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("### fraud: `v0.1.0` → `v0.2.0`")
    assert "| `train.C` | 1 | 0.5 |" in md.stdout
    assert "| `params.yaml` | M | 1 | 1 |" in md.stdout
    data = json.loads(mvctl(branched.root, "diff", "fraud", "v0.2.0", "v0.2.1", "--json").stdout)
    assert data["packages"] == [
        {"name": "numpy", "change": "upgraded", "old": "2.0.0", "new": "2.1.0"}
    ]
    assert data["identical"] is False
    rich = mvctl(branched.root, "diff", "fraud", "v0.2.0", "v0.3.0", check=True).stdout
    assert "data/extra.csv" in rich and "added" in rich


def test_diff_resolves_channels(branched: Registry) -> None:
    branched.git("tag", "-a", "-m", "promote", "fraud@production", "fraud@v0.1.0^{commit}")
    try:
        d = diff(branched.root, "fraud", "production", "v0.2.0")
        assert d.old.version == "v0.1.0"
        assert d.old.channels == ("production",)
    finally:
        branched.git("tag", "-d", "fraud@production")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("nope", "v0.1.0", "v0.2.0"), OperationalError),
        (("fraud", "v9.0.0", "v0.1.0"), OperationalError),
        (("fraud", "v0.1.0", "1.0"), UsageError),
    ],
)
def test_diff_errors(
    branched: Registry, args: tuple[str, str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        diff(branched.root, *args)


def test_lineage_errors(branched: Registry) -> None:
    with pytest.raises(OperationalError, match=r"no version v9\.0\.0"):
        report(branched.root, "fraud", "v9.0.0")
    with pytest.raises(UsageError):
        report(branched.root, "fraud", "9.0")
    proc = mvctl(branched.root, "lineage", "nope")
    assert proc.returncode == 3
    assert "no registered versions" in proc.stderr


def test_diff_lists_files_inside_changed_data_directories(registry: Registry) -> None:
    """From DVC's .dir listings: the local cache, else the DVC remote; never the data."""
    import shutil

    def register_dir(files: dict[str, str]) -> None:
        shutil.rmtree(registry.root / "data/images", ignore_errors=True)
        for name, text in files.items():
            registry.write(f"data/images/{name}", text)
        registry.write("models/model.bin", repr(files).encode())
        register(
            RegisterRequest(
                model="vision",
                cwd=registry.root,
                weights="models/model.bin",
                data=("data/images",),
            )
        )

    register_dir({"a.txt": "a", "b.txt": "b", "sub/d.txt": "d"})
    register_dir({"a.txt": "A", "c.txt": "c", "sub/d.txt": "d"})
    d = diff(registry.root, "vision", "v0.1.0", "v0.2.0")
    [images] = d.dataset
    assert (images.path, images.status) == ("data/images", "changed")
    assert (images.files_added, images.files_removed, images.files_modified) == (
        ("c.txt",),
        ("b.txt",),
        ("a.txt",),
    )
    # A fresh clone has no DVC cache: the listings come from the DVC remote.
    shutil.rmtree(registry.root / ".dvc/cache")
    again = diff(registry.root, "vision", "v0.1.0", "v0.2.0")
    assert again.dataset == d.dataset
    assert again.notes == ()
    cache = registry.root / ".dvc/cache"
    downloaded = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".dir"]
    assert downloaded == []  # no data file was fetched to answer
