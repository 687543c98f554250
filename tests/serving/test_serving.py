"""The serving host: pull, swap, verify, keep, roll back locally, survive failures."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mvctl import serving
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.errors import OperationalError, PolicyError
from mvctl.registry.register import RegisterRequest, register
from tests.conftest import (
    Registry,
    RegistryFactory,
    Release,
    copy_registry,
    make_registry,
    mvctl,
)

WEIGHTS = {"v0.1.0": b"one" * 1000, "v0.2.0": b"two" * 2000, "v0.3.0": b"three" * 3000}


@pytest.fixture(scope="module")
def template(registry_factory: RegistryFactory) -> Path:
    releases = (Release(weights=w, data=(), metrics=False, push=True) for w in WEIGHTS.values())
    return registry_factory(*releases)


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    return copy_registry(template, tmp_path, storage=False)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return tmp_path / "host"


def request(reg: Registry, host: Path, **kw: object) -> serving.PullRequest:
    fields: dict[str, object] = {
        "repo": str(reg.origin),
        "model": "fraud",
        "channel": "production",
        "dest": host,
        # The committed .dvc/config names the template's store; this copy has its own.
        "dvc_remote": str(reg.storage),
    }
    fields.update(kw)
    return serving.PullRequest(**fields)  # type: ignore[arg-type]


def serve(reg: Registry, version: str, action: str = "promote") -> None:
    if action == "promote":
        promote(reg.root, "fraud", version, "production", push=True)
    else:
        rollback(reg.root, "fraud", to=version, reason="test", push=True)


def object_path(reg: Registry, version: str) -> Path:
    md5 = hashlib.md5(WEIGHTS[version]).hexdigest()  # noqa: S324 - DVC's content address
    return reg.storage / "files" / "md5" / md5[:2] / md5[2:]


def pull_argv(reg: Registry, host: Path, *extra: str) -> list[str]:
    """`mvctl pull` as a host runs it, against this copy's remotes."""
    return [
        sys.executable,
        "-m",
        "mvctl",
        "pull",
        str(reg.origin),
        "fraud",
        "--dest",
        str(host),
        "--dvc-remote",
        str(reg.storage),
        *extra,
    ]


def served_bytes(host: Path) -> bytes:
    return (host / "current" / "model.bin").read_bytes()


def test_promote_then_rollback_is_a_local_swap(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    first = serving.pull(request(reg, host))
    assert (first.changed, first.downloaded, first.previous) == (True, True, None)
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert (host / "current").readlink() == Path("versions/v0.1.0")
    state = json.loads((host / "state.json").read_text())
    assert (state["model"], state["channel"], state["version"]) == ("fraud", "production", "v0.1.0")
    assert state["commit"] == reg.git("rev-parse", "fraud@v0.1.0^{commit}").strip()
    manifest = (host / "current" / "manifest.yaml").read_text()
    assert hashlib.sha256(WEIGHTS["v0.1.0"]).hexdigest() in manifest

    again = serving.pull(request(reg, host))
    assert not again.changed and not again.downloaded

    serve(reg, "v0.2.0")
    second = serving.pull(request(reg, host))
    assert (second.served.version, second.previous, second.downloaded) == ("v0.2.0", "v0.1.0", True)
    assert served_bytes(host) == WEIGHTS["v0.2.0"]

    serve(reg, "v0.1.0", "rollback")
    # No download is possible any more: the rollback must come from the host's own copy.
    shutil.move(reg.storage, reg.storage.with_name("moved-away"))
    back = serving.pull(request(reg, host))
    assert (back.served.version, back.downloaded) == ("v0.1.0", False)
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    status = serving.status(host)
    assert status is not None and status.kept == ("v0.1.0", "v0.2.0")


def test_corrupted_object_is_refused_and_the_previous_version_keeps_serving(
    reg: Registry, host: Path
) -> None:
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    broken = object_path(reg, "v0.2.0")
    broken.chmod(0o644)
    broken.write_bytes(b"not the weights")
    serve(reg, "v0.2.0")
    with pytest.raises(PolicyError, match="do not match the manifest"):
        serving.pull(request(reg, host))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert json.loads((host / "state.json").read_text())["version"] == "v0.1.0"
    assert sorted(p.name for p in (host / "versions").iterdir()) == ["v0.1.0"]
    proc = subprocess.run(pull_argv(reg, host), capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "sha256" in proc.stderr


@pytest.mark.parametrize("failure", ["missing object", "unreachable remote", "no alias"])
def test_failures_keep_serving(reg: Registry, host: Path, failure: str) -> None:
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    repo = str(reg.origin)
    if failure == "missing object":
        serve(reg, "v0.3.0")
        object_path(reg, "v0.3.0").unlink()
        match = "missing from the DVC remote"
    elif failure == "unreachable remote":
        repo = str(reg.origin.with_name("gone.git"))
        match = "failed to reach"
    else:
        request_ = request(reg, host, channel="canary")
        with pytest.raises(OperationalError, match="no channel alias fraud@canary"):
            serving.pull(request_)
        match = ""
    if match:
        with pytest.raises(OperationalError, match=match):
            serving.pull(request(reg, host, repo=repo))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert not [p for p in (host / "versions").iterdir() if p.name.startswith(".tmp-")]


def test_keep_prunes_old_versions_but_never_the_current_one(reg: Registry, host: Path) -> None:
    for version in WEIGHTS:
        serve(reg, version)
        serving.pull(request(reg, host, keep=2))
    assert sorted(p.name for p in (host / "versions").iterdir()) == ["v0.2.0", "v0.3.0"]
    serve(reg, "v0.1.0", "rollback")
    back = serving.pull(request(reg, host, keep=1))
    assert back.downloaded  # v0.1.0 had been pruned
    assert sorted(p.name for p in (host / "versions").iterdir()) == ["v0.1.0"]


def test_on_change_hook_gets_the_new_version(reg: Registry, host: Path, tmp_path: Path) -> None:
    out = tmp_path / "hook.json"
    hook = (
        sys.executable,
        "-c",
        "import json, os, sys; json.dump({k: v for k, v in os.environ.items()"
        " if k.startswith('MVCTL_')}, open(sys.argv[1], 'w'))",
        str(out),
    )
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    serve(reg, "v0.2.0")
    result = serving.pull(request(reg, host, on_change=hook))
    assert result.hook is not None and result.hook.returncode == 0
    env = json.loads(out.read_text())
    assert env["MVCTL_MODEL"] == "fraud" and env["MVCTL_VERSION"] == "v0.2.0"
    assert env["MVCTL_PREVIOUS"] == "v0.1.0"
    assert Path(env["MVCTL_PATH"]).read_bytes() == WEIGHTS["v0.2.0"]
    # A failing hook is reported, not hidden; the swap itself stands.
    serve(reg, "v0.3.0")
    proc = subprocess.run(
        pull_argv(reg, host, "--on-change", "false"), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 3
    assert "--on-change exited 1" in proc.stderr
    assert served_bytes(host) == WEIGHTS["v0.3.0"]


def test_directory_weights_are_verified_file_by_file(tmp_path: Path) -> None:
    reg = make_registry(tmp_path)
    reg.write("models/net/a.bin", b"A" * 100)
    reg.write("models/net/sub/b.bin", b"B" * 50)
    register(RegisterRequest(model="net", cwd=reg.root, weights="models/net", push=True))
    promote(reg.root, "net", "v0.1.0", "production", push=True)
    host = tmp_path / "host"
    # No --dvc-remote: the registry's own .dvc/config names the store.
    result = serving.pull(serving.PullRequest(str(reg.origin), "net", "production", host))
    assert (host / "current" / "net" / "sub" / "b.bin").read_bytes() == b"B" * 50
    assert result.served.path == (host / "versions" / "v0.1.0" / "net").resolve()


def test_status_and_the_python_api_callback(reg: Registry, host: Path) -> None:
    assert serving.status(host) is None
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    seen: list[str] = []
    changed = threading.Event()
    stop = threading.Event()

    def callback(served: serving.Served) -> None:
        seen.append(served.version)
        changed.set()

    watcher = threading.Thread(
        target=serving.on_change, args=(host, callback), kwargs={"stop": stop, "interval": 0.02}
    )
    watcher.start()
    try:
        serve(reg, "v0.2.0")
        serving.pull(request(reg, host))
        assert changed.wait(10)
    finally:
        stop.set()
        watcher.join()
    assert seen == ["v0.2.0"]
    shown = json.loads(mvctl(host.parent, "pull", "--status", "--dest", str(host), "--json").stdout)
    assert shown["version"] == "v0.2.0" and shown["kept"] == ["v0.1.0", "v0.2.0"]


def _until(check: Callable[[], bool], timeout: float = 30) -> bool:
    """Wait for a condition another process brings about (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _serves(host: Path, version: str) -> bool:
    status = serving.status(host)
    return status is not None and status.version == version


@pytest.mark.slow
def test_watch_follows_and_stops_cleanly_on_sigterm(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    proc = subprocess.Popen(
        pull_argv(reg, host, "--watch", "--interval", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _until(lambda: _serves(host, "v0.1.0"))
        serve(reg, "v0.3.0")
        assert _until(lambda: _serves(host, "v0.3.0"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "v0.1.0 -> v0.3.0 (downloaded and verified)" in out
    assert "SIGTERM: stopping" in out


@pytest.mark.slow
def test_fleet_of_pollers_converges_after_a_rollback(reg: Registry, tmp_path: Path) -> None:
    serve(reg, "v0.1.0")
    serve(reg, "v0.2.0")
    hosts = [tmp_path / f"host{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            pull_argv(reg, h, "--watch", "--interval", "0.3"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in hosts
    ]
    try:
        assert _until(lambda: all(_serves(h, "v0.2.0") for h in hosts), timeout=60)
        serve(reg, "v0.1.0", "rollback")
        assert _until(lambda: all(_serves(h, "v0.1.0") for h in hosts), timeout=60)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.communicate(timeout=30)
    assert all(p.returncode == 0 for p in procs)


def _complete(host: Path) -> bool:
    """`current` is absent (nothing served yet) or names a complete, verified version."""
    link = host / "current"
    if not link.is_symlink():
        return True
    version = link.readlink().name
    data = (host / "versions" / version / "model.bin").read_bytes()
    return data == WEIGHTS[version]


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_a_partial_current(
    reg: Registry, host: Path
) -> None:
    rng = random.Random(1234)
    versions = list(WEIGHTS)
    for round_ in range(12):
        version = versions[round_ % 3]
        # The alias cycles through the versions; a rollback only goes back, so forward
        # moves are promotions (the host sees the same alias moves either way).
        serve(reg, version)
        link = host / "current"
        if not (link.is_symlink() and link.readlink().name == version):
            shutil.rmtree(host / "versions" / version, ignore_errors=True)  # force a download
        proc = subprocess.Popen(
            pull_argv(reg, host),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.0, 1.2))  # fault injection: kill at a random moment
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _complete(host)
    # The next run cleans what the killed ones left and serves the channel's version.
    final = serving.pull(request(reg, host))
    assert _complete(host) and _serves(host, final.served.version)
    assert not [p for p in (host / "versions").iterdir() if p.name.startswith(".tmp-")]
    assert not (host / ".current.tmp").exists()


def test_a_full_disk_keeps_the_previous_version(reg: Registry, host: Path) -> None:
    """A file-size limit makes writing the 15 kB weights fail like a full disk would."""
    import resource

    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    serve(reg, "v0.3.0")

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (12_000, 12_000))

    proc = subprocess.run(
        pull_argv(reg, host),
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert not [p for p in (host / "versions").iterdir() if p.name.startswith(".tmp-")]
    # Space again: the next poll completes the swap.
    assert serving.pull(request(reg, host)).served.version == "v0.3.0"


def test_pull_takes_the_registry_as_a_relative_path(tmp_path: Path) -> None:
    """`mvctl pull ../origin.git` from where the path is true: git runs in the host's
    cache, so the path is made absolute first (it once failed: "does not appear to be a
    git repository")."""
    reg = make_registry(tmp_path)
    (reg.root / "model.bin").write_bytes(b"weights one")
    register(RegisterRequest(model="fraud", cwd=reg.root, weights="model.bin", push=True))
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    work = tmp_path / "work"
    work.mkdir()
    done = mvctl(work, "pull", "../origin.git", "fraud", "--dest", "host", "--json")
    assert done.returncode == 0, done.stderr
    assert (work / "host" / "current").exists()
    assert json.loads(done.stdout)["version"] == "v0.1.0"
