"""register: the manifest records exactly what was trained, with correct hashes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mvctl.errors import ConflictError, OperationalError, PolicyError, UsageError
from mvctl.formats.manifest import SCHEMA, problems
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import Registry, git, run


def request(reg: Registry, **kw: object) -> RegisterRequest:
    defaults: dict[str, object] = {
        "model": "fraud",
        "cwd": reg.root,
        "weights": "models/model.bin",
        "data": ("data/train.csv",),
        "metrics_file": "metrics.json",
        "params_file": "params.yaml",
    }
    defaults.update(kw)
    return RegisterRequest(**defaults)  # type: ignore[arg-type]


def dvc_md5(dvcfile: Path) -> str:
    return str(yaml.safe_load(dvcfile.read_text())["outs"][0]["md5"])


def test_register_records_every_field_with_correct_hashes(registry: Registry) -> None:
    registry.train(weights=b"\x00weights\xff" * 1000)
    head_before = registry.git("rev-parse", "HEAD").strip()

    result = register(request(registry, description="first cut", labels=("stage=baseline",)))

    m = yaml.safe_load((registry.root / "registry/fraud/manifest.yaml").read_text())
    assert problems(m) == []
    assert m["schema"] == SCHEMA
    assert (m["model"], m["version"]) == ("fraud", "v0.1.0")
    assert m["author"] == "Ada Tester <ada@example.com>"
    assert m["created"].endswith("Z")
    assert m["description"] == "first cut"
    assert m["labels"] == ["stage=baseline"]
    assert m["parent"] is None
    weights_bytes = (registry.root / "models/model.bin").read_bytes()
    [w] = m["weights"]
    assert w["path"] == "models/model.bin"
    assert w["sha256"] == hashlib.sha256(weights_bytes).hexdigest()
    assert w["md5"] == hashlib.md5(weights_bytes).hexdigest()  # noqa: S324 - DVC's hash
    assert w["md5"] == dvc_md5(registry.root / "models/model.bin.dvc")
    assert w["size"] == len(weights_bytes)
    [d] = m["dataset"]
    assert d["path"] == "data/train.csv"
    assert d["md5"] == dvc_md5(registry.root / "data/train.csv.dvc")
    assert d["size"] == (registry.root / "data/train.csv").stat().st_size
    assert d["nfiles"] == 1
    assert m["metrics"] == {"auc": 0.91, "loss": {"train": 0.2, "val": 0.3}}
    assert m["params"] == {"train": {"C": 1.0, "layers": [64, 32]}}
    assert m["code"] == {"commit": head_before, "dirty": False}
    env = m["environment"]
    assert env["python"].count(".") == 2
    assert env["platform"]
    assert env["packages"]["pyyaml"] == yaml.__version__
    assert list(env["packages"]) == sorted(env["packages"])

    # The commit holds the manifest and DVC files; the annotated tag points at it.
    assert result.commit == registry.git("rev-parse", "HEAD").strip()
    assert registry.git("rev-parse", "fraud@v0.1.0^{commit}").strip() == result.commit
    assert registry.git("cat-file", "-t", "fraud@v0.1.0").strip() == "tag"
    committed = registry.git("show", "--name-only", "--format=", "HEAD").split()
    assert sorted(committed) == sorted(
        [
            "data/.gitignore",
            "data/train.csv.dvc",
            "dvc.yaml",
            "models/.gitignore",
            "models/model.bin.dvc",
            "registry/fraud/manifest.yaml",
            "registry/fraud/profile.json",
        ]
    )
    # The reference profile of the training data travels with the version (kilobytes).
    profile_text = (registry.root / "registry/fraud/profile.json").read_text()
    assert m["profile"] == {
        "path": "registry/fraud/profile.json",
        "source": "data/train.csv",
        "sha256": hashlib.sha256(profile_text.encode()).hexdigest(),
    }
    columns = json.loads(profile_text)["columns"]
    assert columns["x"]["kind"] == "numeric" and columns["x"]["count"] == 3
    assert len(profile_text) < 20_000
    assert yaml.safe_load((registry.root / "dvc.yaml").read_text())["artifacts"]["fraud"] == {
        "path": "models/model.bin",
        "type": "model",
        "desc": "first cut",
        "labels": ["stage=baseline"],
    }
    # Artifacts were pushed to the DVC remote, content-addressed by DVC's md5.
    objects = registry.storage_files()
    assert f"files/md5/{w['md5'][:2]}/{w['md5'][2:]}" in objects
    assert f"files/md5/{d['md5'][:2]}/{d['md5'][2:]}" in objects
    # Only the training outputs DVC does not track remain untracked.
    assert registry.git("status", "--porcelain").split("\n")[0] == "?? metrics.json"


def test_versions_bump_and_parents_follow_history(registry: Registry) -> None:
    registry.train(weights=b"one")
    register(request(registry))
    registry.train(weights=b"two", auc=0.93)
    second = register(request(registry))
    assert second.manifest.version == "v0.2.0"
    assert second.manifest.parent == "v0.1.0"
    registry.train(weights=b"three")
    assert register(request(registry, bump="patch")).manifest.version == "v0.2.1"
    registry.train(weights=b"four")
    assert register(request(registry, bump="major")).manifest.version == "v1.0.0"
    registry.train(weights=b"five")
    explicit = register(request(registry, version="v3.0.0-rc.1"))
    assert explicit.manifest.version == "v3.0.0-rc.1"
    assert explicit.manifest.parent == "v1.0.0"
    assert registry.tags() == sorted(
        ["fraud@v0.1.0", "fraud@v0.2.0", "fraud@v0.2.1", "fraud@v1.0.0", "fraud@v3.0.0-rc.1"]
    )


def test_parent_comes_from_the_branch_a_version_was_trained_on(registry: Registry) -> None:
    registry.train(weights=b"one")
    register(request(registry))
    registry.train(weights=b"two")
    register(request(registry))
    registry.git("checkout", "-q", "-b", "experiment", "fraud@v0.1.0")
    registry.train(weights=b"branch")
    branched = register(request(registry))
    assert branched.manifest.version == "v0.3.0"
    assert branched.manifest.parent == "v0.1.0"


def test_directory_weights_list_every_file(registry: Registry) -> None:
    registry.train()
    registry.write("models/net/config.json", '{"layers": 2}')
    registry.write("models/net/shards/a.bin", b"A" * 4096)
    result = register(request(registry, weights="models/net"))

    [w] = result.manifest.to_dict()["weights"]
    assert w["md5"].endswith(".dir")
    assert w["md5"] == dvc_md5(registry.root / "models/net.dvc")
    assert w["nfiles"] == 2
    files = {f["path"]: f for f in w["files"]}
    assert set(files) == {"config.json", "shards/a.bin"}
    raw = (registry.root / "models/net/shards/a.bin").read_bytes()
    assert files["shards/a.bin"]["sha256"] == hashlib.sha256(raw).hexdigest()
    assert files["shards/a.bin"]["md5"] == hashlib.md5(raw).hexdigest()  # noqa: S324
    assert w["size"] == 4096 + len('{"layers": 2}')
    tree = hashlib.sha256()
    for name in sorted(files):
        tree.update(f"{name}\0{files[name]['sha256']}\n".encode())
    assert w["sha256"] == tree.hexdigest()


@pytest.mark.slow
def test_data_already_tracked_by_dvc_and_imported_data(registry: Registry, tmp_path: Path) -> None:
    # A second repo to `dvc import` from, with its own DVC remote.
    source = tmp_path / "source"
    run("git", "init", "-q", "-b", "main", source, cwd=tmp_path)
    (source / "README.md").write_text("source\n")
    git(source, "add", "README.md")
    git(source, "commit", "-q", "-m", "initial")
    from mvctl.registry.initialise import init

    init(source, str(tmp_path / "source-storage"))
    (source / "features.csv").write_text("a,b\n1,2\n")
    run("dvc", "add", "features.csv", cwd=source)
    git(source, "add", "features.csv.dvc", ".gitignore")
    git(source, "commit", "-q", "-m", "features")
    run("dvc", "push", cwd=source)

    registry.train()
    run("dvc", "import", str(source), "features.csv", "-o", "data/features.csv", cwd=registry.root)
    run("dvc", "add", "data/train.csv", cwd=registry.root)
    registry.git("add", "data/features.csv.dvc", "data/train.csv.dvc", "data/.gitignore")
    registry.git("commit", "-q", "-m", "data")

    result = register(request(registry, data=("data/train.csv", "data/features.csv")))
    by_path = {d.path: d for d in result.manifest.dataset}
    assert by_path["data/train.csv"].source is None
    imported = by_path["data/features.csv"]
    assert imported.source is not None
    assert imported.source["repo"] == str(source)
    assert imported.source["path"] == "features.csv"
    assert imported.source["rev_lock"] == git(source, "rev-parse", "HEAD").strip()
    assert imported.md5 == hashlib.md5(b"a,b\n1,2\n").hexdigest()  # noqa: S324
    # The import stage is kept as it was: register did not turn it into a plain `dvc add`.
    assert "deps" in yaml.safe_load((registry.root / "data/features.csv.dvc").read_text())


def test_env_lock_records_path_hash_and_pins(registry: Registry) -> None:
    registry.train()
    lock = "numpy==2.1.0\nscikit-learn==1.5.2 \\\n    --hash=sha256:abc\n# comment\n"
    registry.write("requirements.lock", lock)
    registry.git("add", "requirements.lock")
    registry.git("commit", "-q", "-m", "lock")
    env = register(request(registry, env_lock="requirements.lock")).manifest.environment
    assert env["packages"] == {"numpy": "2.1.0", "scikit-learn": "1.5.2"}
    assert env["lockfile"] == {
        "path": "requirements.lock",
        "sha256": hashlib.sha256(lock.encode()).hexdigest(),
    }


def test_defaults_come_from_mvctl_yaml_and_options_override(registry: Registry) -> None:
    registry.train()
    registry.write(
        "mvctl.yaml",
        "version: 1\nmodels:\n  fraud:\n    weights: models/model.bin\n"
        "    data: [data/train.csv]\n    metrics: metrics.json\n    params: params.yaml\n",
    )
    registry.git("commit", "-q", "-am", "configure fraud")
    sub = registry.root / "models"
    result = register(RegisterRequest(model="fraud", cwd=sub, metrics=("auc=0.99", "lat.p95=12")))
    m = result.manifest
    assert m.weights[0].path == "models/model.bin"
    assert [d.path for d in m.dataset] == ["data/train.csv"]
    assert m.metrics["auc"] == 0.99
    assert m.metrics["lat"] == {"p95": 12}
    assert m.metrics["loss"] == {"train": 0.2, "val": 0.3}


def test_allow_dirty_is_recorded(registry: Registry) -> None:
    registry.train()
    registry.write("README.md", "changed\n")
    result = register(request(registry, allow_dirty=True))
    assert result.manifest.code["dirty"] is True
    assert registry.git("status", "--porcelain", "README.md").startswith(" M")


def test_dry_run_changes_nothing(registry: Registry) -> None:
    registry.train()
    before = registry.snapshot()
    result = register(request(registry, dry_run=True))
    assert result.dry_run and result.commit is None
    assert result.manifest.version == "v0.1.0"
    assert registry.snapshot() == before


def _break_storage(reg: Registry) -> None:
    # A DVC remote that cannot be written: a path below a regular file.
    blocker = reg.root.parent / "not-a-dir"
    blocker.write_text("x")
    run("dvc", "remote", "modify", "mvctl", "url", str(blocker / "store"), cwd=reg.root)
    reg.git("commit", "-q", "-am", "point DVC at a broken store")


REFUSALS = {
    "invalid model name": ({"model": "Fraud!"}, UsageError),
    "model name as option": ({"model": "--force"}, UsageError),
    "invalid version": ({"version": "1.0"}, UsageError),
    "missing weights": ({"weights": "models/none.bin"}, OperationalError),
    "weights outside repo": ({"weights": "../outside.bin"}, UsageError),
    "missing data": ({"data": ("data/none.csv",)}, OperationalError),
    "non-numeric metric option": ({"metrics": ("auc=high",)}, UsageError),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusals_change_nothing(registry: Registry, case: str) -> None:
    kwargs, error = REFUSALS[case]
    registry.train()
    before = registry.snapshot()
    with pytest.raises(error):
        register(request(registry, **kwargs))
    assert registry.snapshot() == before


def test_existing_version_is_refused(registry: Registry) -> None:
    registry.train()
    register(request(registry, version="v1.0.0"))
    registry.train(weights=b"other")
    before = registry.snapshot()
    with pytest.raises(PolicyError, match="already registered"):
        register(request(registry, version="v1.0.0"))
    assert registry.snapshot() == before


def test_non_numeric_metrics_file_is_refused(registry: Registry) -> None:
    registry.train()
    registry.write("metrics.json", '{"auc": "0.9", "ok": true}')
    before = registry.snapshot()
    with pytest.raises(OperationalError, match=r"'auc'.*not a number"):
        register(request(registry))
    assert registry.snapshot() == before


def test_uncommitted_code_is_refused(registry: Registry) -> None:
    registry.train()
    registry.write("params.yaml", "train:\n  C: 2.0\n")
    before = registry.snapshot()
    with pytest.raises(PolicyError, match=r"uncommitted changes.*params\.yaml"):
        register(request(registry))
    assert registry.snapshot() == before


def test_git_tracked_weights_are_refused(registry: Registry) -> None:
    registry.train()
    registry.git("add", "models/model.bin")
    registry.git("commit", "-q", "-m", "oops, weights in git")
    before = registry.snapshot()
    with pytest.raises(OperationalError, match="tracked by git"):
        register(request(registry))
    assert registry.snapshot() == before


def test_dvc_push_failure_leaves_nothing_behind(registry: Registry) -> None:
    registry.train()
    _break_storage(registry)
    before = registry.snapshot()
    with pytest.raises(OperationalError, match="DVC failed to push"):
        register(request(registry))
    assert registry.snapshot() == before
    assert not (registry.root / "models/model.bin.dvc").exists()
    assert not (registry.root / "dvc.yaml").exists()


def test_a_tag_taken_by_a_racer_is_a_conflict_and_undoes_the_commit(registry: Registry) -> None:
    registry.train()
    # A racer registers the same version between our commit and our tag: a post-commit hook
    # creates the tag the moment our commit lands.
    hook = registry.root / ".git/hooks/post-commit"
    hook.write_text("#!/bin/sh\ngit tag -a -m theirs fraud@v0.1.0 HEAD~1\n")
    hook.chmod(0o755)
    status, _, _, head = registry.snapshot()
    with pytest.raises(ConflictError, match="changed by someone else"):
        register(request(registry))
    hook.unlink()
    assert registry.git("rev-parse", "HEAD") == head
    assert registry.status() == status
    assert registry.git("cat-file", "-p", "fraud@v0.1.0").rstrip().endswith("theirs")
    assert registry.tags() == ["fraud@v0.1.0"]


def test_push_sends_commit_and_tag_and_a_clone_restores_identical_weights(
    registry: Registry, tmp_path: Path
) -> None:
    registry.train(weights=bytes(range(256)) * 64)
    result = register(request(registry, push=True))
    assert result.pushed
    assert git(registry.origin, "rev-parse", "fraud@v0.1.0^{commit}").strip() == result.commit
    assert git(registry.origin, "rev-parse", "main").strip() == result.commit

    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(registry.origin), clone, cwd=tmp_path)
    run("git", "checkout", "-q", "fraud@v0.1.0", cwd=clone)
    run("dvc", "pull", "-q", cwd=clone)
    restored = (clone / "models/model.bin").read_bytes()
    assert restored == (registry.root / "models/model.bin").read_bytes()
    manifest = yaml.safe_load((clone / "registry/fraud/manifest.yaml").read_text())
    assert manifest["weights"][0]["sha256"] == hashlib.sha256(restored).hexdigest()


def test_unreachable_git_remote_is_refused_before_anything_is_written(registry: Registry) -> None:
    registry.train()
    registry.git("remote", "set-url", "origin", str(registry.root.parent / "missing.git"))
    before = registry.snapshot()
    with pytest.raises(OperationalError, match="reach remote origin"):
        register(request(registry, push=True))
    with pytest.raises(OperationalError, match="reach remote origin"):
        register(request(registry))  # publishing is the default with a remote
    assert registry.snapshot() == before


def test_rejected_git_push_undoes_the_registration(registry: Registry, tmp_path: Path) -> None:
    # Someone else pushed to main first: our push is not a fast-forward.
    other = tmp_path / "other"
    registry.git("push", "-q", "origin", "main")
    run("git", "clone", "-q", "--branch", "main", str(registry.origin), other, cwd=tmp_path)
    git(other, "commit", "-q", "--allow-empty", "-m", "theirs")
    git(other, "push", "-q", "origin", "main")
    registry.train()
    status, tags_before, _, head = registry.snapshot()
    with pytest.raises(ConflictError, match="refused the push"):
        register(request(registry, push=True))
    status_after, tags_after, _, head_after = registry.snapshot()
    assert (status_after, tags_after, head_after) == (status, tags_before, head)
    assert "fraud@v0.1.0" not in git(registry.origin, "tag", "--list")


def test_dvc_never_phones_home(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DVC_NO_ANALYTICS", raising=False)
    registry.train()
    register(request(registry))
    from dvc import analytics

    assert not analytics.is_enabled()
    # Child processes (a user's `dvc` run by mvctl's hooks) inherit the setting too.
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ.get('DVC_NO_ANALYTICS'))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "1"


def test_a_full_disk_never_truncates_a_file_register_did_not_change(registry: Registry) -> None:
    # The undo wrote every file it had snapshotted back, non-atomically: on a full disk an
    # uncommitted user edit to dvc.yaml was truncated to the size limit and lost.
    import resource
    import signal

    registry.train()
    register(request(registry, push=False))
    edited = (registry.root / "dvc.yaml").read_text() + "".join(
        f"# note {i}: thresholds agreed with the risk team\n" for i in range(80)
    )
    registry.write("dvc.yaml", edited)
    registry.write("models/model.bin", b"x" * 200_000)  # more than the disk may take
    before = registry.snapshot()

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    proc = subprocess.run(
        [sys.executable, "-m", "mvctl", "register", "fraud", "--weights", "models/model.bin",
         "--data", "data/train.csv", "--local"],
        cwd=registry.root, preexec_fn=full_disk, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (registry.root / "dvc.yaml").read_text() == edited
    assert registry.snapshot() == before


@pytest.mark.slow
def test_a_register_killed_before_its_tag_is_noticed_and_resumed(
    registry: Registry, tmp_path: Path
) -> None:
    import os
    import shutil

    from tests.conftest import git_shim, remote_tags

    registry.train()
    real = shutil.which("git")
    assert real is not None
    git_shim(tmp_path / "shim", str(Path(real).resolve()))
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'shim'}{os.pathsep}{os.environ['PATH']}",
        "MVCTL_SHIM_ON": "update-ref",  # the version tag's compare-and-swap
        "MVCTL_SHIM_WHEN": "before",
    }
    argv = [sys.executable, "-m", "mvctl", "register", "fraud", "--weights", "models/model.bin",
            "--data", "data/train.csv", "--local"]  # fmt: skip
    killed = subprocess.run(argv, cwd=registry.root, env=env, capture_output=True, check=False)
    assert killed.returncode == -9
    assert git(registry.root, "log", "-1", "--format=%s").strip() == "Register fraud v0.1.0"
    assert "fraud@v0.1.0" not in registry.tags()
    # The next register refuses to stack a version on it, and check names it.
    again = subprocess.run(argv, cwd=registry.root, capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "interrupted registration" in again.stderr
    assert "mvctl register fraud --resume" in again.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "mvctl", "check", "--offline"],
        cwd=registry.root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 1 and "has no tag fraud@v0.1.0" in checked.stdout
    resumed = subprocess.run(
        [sys.executable, "-m", "mvctl", "register", "fraud", "--resume", "--json"],
        cwd=registry.root, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["pushed"]
    assert "fraud@v0.1.0" in registry.tags() and "fraud@v0.1.0" in remote_tags(registry.origin)
    clone = tmp_path / "clone"
    run("git", "clone", "-q", str(registry.origin), clone, cwd=tmp_path)
    from mvctl.check import check

    assert check(clone).ok and check(registry.root).ok
