"""The serving host treats every registry commit as untrusted.

Each fixture is built the way an attacker with push access would: clone the registry,
craft a commit (manifest, a .dvc file, .dvc/config), re-point the alias tag at it with a
hand-made annotated tag and force-push the alias. The host must refuse it in one line, keep
serving what it had, touch nothing outside DIR, and follow the next good commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from itertools import count
from pathlib import Path

import pytest
import yaml

from mvctl import serving
from mvctl.errors import OperationalError
from tests.conftest import Registry, git
from tests.serving import test_serving as base
from tests.serving.test_serving import WEIGHTS, object_path, pull_argv, request, serve, served_bytes

# The same registry (three versions, v0.1.0..v0.3.0) and host fixtures as test_serving.
template, reg, host = base.template, base.reg, base.host
_until, _serves = base._until, base._serves

Edit = Callable[[Path], None]
_clones = count()


def attack(reg: Registry, edit: Edit, base: str = "fraud@v0.2.0", stage: Edit | None = None) -> str:
    """Craft a commit on ``base`` with ``edit`` (and ``stage``, run on the clone once its
    work tree is staged: git plumbing for what no file system holds) and force-push
    fraud@production at it."""
    clone = reg.root.parent / f"attacker-{next(_clones)}"
    git(reg.root.parent, "clone", "-q", str(reg.origin), str(clone))
    git(clone, "checkout", "-q", "--detach", f"{base}^{{commit}}")
    edit(clone)
    git(clone, "add", "-A")
    if stage is not None:
        stage(clone)
    git(clone, "commit", "-q", "--allow-empty", "-m", "hostile")
    commit = git(clone, "rev-parse", "HEAD").strip()
    body = {"kind": "alias", "model": "fraud", "channel": "production", "version": "v0.2.0"}
    message = f"fraud@production -> v0.2.0\n\n{json.dumps(body, indent=1)}\n"
    git(clone, "tag", "-a", "-f", "-m", message, "fraud@production", commit)
    git(clone, "push", "-q", "--force", "origin", "refs/tags/fraud@production")
    return commit


def repoint(reg: Registry, base: str) -> str:
    """A good alias: fraud@production back on a registered version's own commit."""
    clone = reg.root.parent / f"attacker-{next(_clones)}"
    git(reg.root.parent, "clone", "-q", str(reg.origin), str(clone))
    commit = git(clone, "rev-parse", f"{base}^{{commit}}").strip()
    git(clone, "tag", "-a", "-f", "-m", "fraud@production -> good", "fraud@production", commit)
    git(clone, "push", "-q", "--force", "origin", "refs/tags/fraud@production")
    return commit


MANIFEST = "registry/fraud/manifest.yaml"
DVCFILE = "models/model.bin.dvc"


def edit_manifest(change: Callable[[dict[str, object]], None]) -> Edit:
    def edit(root: Path) -> None:
        path = root / MANIFEST
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    return edit


def edit_weights(**fields: object) -> Edit:
    def change(data: dict[str, object]) -> None:
        entry = data["weights"][0]  # type: ignore[index]
        for key, value in fields.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value

    return edit_manifest(change)


def edit_dvcfile(change: Callable[[dict[str, object]], object]) -> Edit:
    def edit(root: Path) -> None:
        path = root / DVCFILE
        data = yaml.safe_load(path.read_text())
        path.write_text(yaml.safe_dump(change(data), sort_keys=False))

    return edit


def both(*edits: Edit) -> Edit:
    def edit(root: Path) -> None:
        for e in edits:
            e(root)

    return edit


def set_md5(md5: str, sha256: str | None = None, size: int | None = None) -> Edit:
    def dvc(data: dict[str, object]) -> object:
        data["outs"][0]["md5"] = md5  # type: ignore[index]
        if size is not None:
            data["outs"][0]["size"] = size  # type: ignore[index]
        return data

    return both(edit_weights(md5=md5, sha256=sha256, size=size), edit_dvcfile(dvc))


def serving_v1(reg: Registry, host: Path) -> None:
    serve(reg, "v0.1.0")
    serving.pull(request(reg, host))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]


def cli(
    reg: Registry, host: Path, *extra: str, remote: bool = True, **kw: object
) -> subprocess.CompletedProcess[str]:
    argv = pull_argv(reg, host, *extra)
    if not remote:
        argv = argv[: argv.index("--dvc-remote")] + argv[argv.index("--dvc-remote") + 2 :]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120, **kw)  # type: ignore[call-overload,no-any-return]


def refused_in_one_line(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr


# --- 1. object ids and sizes --------------------------------------------------------------


def test_a_hand_made_alias_to_a_good_commit_is_followed(reg: Registry, host: Path) -> None:
    """The fixture itself: an attacker's tooling makes aliases a host does follow."""
    serving_v1(reg, host)
    attack(reg, lambda root: None)
    assert serving.pull(request(reg, host)).served.version == "v0.2.0"
    assert served_bytes(host) == WEIGHTS["v0.2.0"]


def test_an_object_id_that_is_a_path_never_reads_a_host_file(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"host-only secret")
    sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    serving_v1(reg, host)
    # DVC joins the remote, md5[:2] and md5[2:]: enough '..' reach any file on the host.
    attack(reg, set_md5("../" * 40 + str(secret).lstrip("/"), sha, secret.stat().st_size))
    with pytest.raises(OperationalError, match="object id"):
        serving.pull(request(reg, host))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert not [p for p in host.rglob("*") if p.is_file() and p.read_bytes() == secret.read_bytes()]
    refused_in_one_line(cli(reg, host))


@pytest.mark.parametrize(
    "fields",
    [{"size": -1}, {"size": "15"}, {"size": True}, {"sha256": "../x"}, {"size": None}],
    ids=["negative", "string", "bool", "sha256", "missing"],
)
def test_sizes_and_hashes_are_validated(
    reg: Registry, host: Path, fields: dict[str, object]
) -> None:
    serving_v1(reg, host)
    attack(reg, edit_weights(**fields))
    with pytest.raises(OperationalError):
        serving.pull(request(reg, host))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]


def test_a_download_stops_once_it_exceeds_the_declared_size(reg: Registry, host: Path) -> None:
    serving_v1(reg, host)
    attack(reg, lambda root: None)
    # Whoever writes the DVC remote makes v0.2.0's object an endless stream.
    obj = object_path(reg, "v0.2.0")
    obj.chmod(0o644)
    obj.unlink()
    obj.symlink_to("/dev/zero")
    proc = cli(reg, host)  # timeout=120: without the cap this never ends
    assert proc.returncode in (1, 3), proc.stderr
    assert "larger than" in proc.stderr, proc.stderr
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert not [p for p in (host / "versions").iterdir() if p.name.startswith(".tmp-")]


# --- 2. the committed DVC config ----------------------------------------------------------


def _listing(roots: list[Path], skip: Path) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            if path == skip or skip in path.parents:
                continue
            st = path.lstat()
            found.add((str(path), st.st_mtime_ns if not path.is_dir() else 0))
    return found


def test_only_the_remote_url_is_taken_from_the_committed_dvc_config(
    reg: Registry, host: Path, tmp_path: Path, isolated_env: Path
) -> None:
    serving_v1(reg, host)
    anywhere = tmp_path / "anywhere"

    def config(root: Path) -> None:
        (root / ".dvc" / "config").write_text(
            "[core]\n    remote = store\n"
            f"    site_cache_dir = {anywhere}/site\n"
            f"['remote \"store\"']\n    url = {reg.storage}\n"
            f"[cache]\n    dir = {anywhere}/cache\n"
        )

    attack(reg, config)
    private_tmp = tmp_path / "private-tmp"
    private_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "DVC_SITE_CACHE_DIR"}
    env.update(TMPDIR=str(private_tmp), PYTHONDONTWRITEBYTECODE="1")
    watched = [tmp_path, isolated_env, Path("/var/tmp/dvc")]
    before = _listing(watched, host)
    proc = cli(reg, host, remote=False, env=env)
    assert proc.returncode == 0, proc.stderr
    assert served_bytes(host) == WEIGHTS["v0.2.0"]
    assert not anywhere.exists()
    assert _listing(watched, host) == before


@pytest.mark.parametrize(
    "url", ["../elsewhere", "relative/store", "/store\n[core]", "gopher://x/y", "-x"]
)
def test_an_unsafe_remote_url_is_refused(reg: Registry, host: Path, url: str) -> None:
    serving_v1(reg, host)

    def config(root: Path) -> None:
        (root / ".dvc" / "config").write_text(
            f"[core]\n    remote = store\n['remote \"store\"']\n    url = {url}\n"
        )

    attack(reg, config)
    refused_in_one_line(cli(reg, host, remote=False))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]


# --- 3. symlinks planted under DIR --------------------------------------------------------


@pytest.mark.parametrize("planted", ["versions", ".mvctl", "current target", "state.json", "lock"])
def test_a_planted_symlink_is_never_followed(
    reg: Registry, host: Path, tmp_path: Path, planted: str
) -> None:
    serving_v1(reg, host)
    target = tmp_path / "victim"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    if planted == "versions":
        (host / "versions").rename(tmp_path / "moved")
        (host / "versions").symlink_to(target)
        shutil_copy = tmp_path / "moved" / "v0.1.0"
        shutil_copy.rename(target / "v0.1.0")
    elif planted == ".mvctl":
        for item in (host / ".mvctl").iterdir():
            item.rename(target / item.name)
        (host / ".mvctl").rmdir()
        (host / ".mvctl").symlink_to(target)
    elif planted == "current target":
        (host / "versions" / "v0.1.0").rename(target / "v0.1.0")
        (host / "versions" / "v0.1.0").symlink_to(target / "v0.1.0")
    elif planted == "state.json":
        (target / "state.json").write_text((host / "state.json").read_text())
        (host / "state.json").unlink()
        (host / "state.json").symlink_to(target / "state.json")
    else:
        (host / ".mvctl" / "lock").unlink()
        (host / ".mvctl" / "lock").symlink_to(target / "keep.txt")
    listing = sorted((str(p), p.lstat().st_mtime_ns) for p in target.rglob("*"))
    serve(reg, "v0.2.0")
    proc = cli(reg, host)
    refused_in_one_line(proc)
    assert "symlink" in proc.stderr
    assert sorted((str(p), p.lstat().st_mtime_ns) for p in target.rglob("*")) == listing
    assert (target / "keep.txt").read_text() == "precious"


# --- 4. version names re-used, models mixed -----------------------------------------------


def test_a_rewritten_version_never_replaces_what_current_serves(reg: Registry, host: Path) -> None:
    serving_v1(reg, host)
    old = (host / "versions" / "v0.1.0" / "model.bin").stat().st_ino
    # History rewritten: "v0.1.0" now names another commit (with v0.2.0's bytes).
    commit = attack(reg, edit_manifest(lambda d: d.update(version="v0.1.0")))
    result = serving.pull(request(reg, host))
    assert result.downloaded and result.served.version == "v0.1.0"
    assert result.served.commit == commit
    assert served_bytes(host) == WEIGHTS["v0.2.0"]
    # The old directory was never touched while current named it: a fresh one took over.
    assert (host / "versions" / "v0.1.0" / "model.bin").stat().st_ino == old
    assert (host / "current").readlink() != Path("versions/v0.1.0")
    # Back to the original commit: a local swap, the old copy was intact all along.
    repoint(reg, "fraud@v0.1.0")
    back = serving.pull(request(reg, host))
    assert not back.downloaded and served_bytes(host) == WEIGHTS["v0.1.0"]


def test_a_dir_that_serves_another_model_is_refused(reg: Registry, host: Path) -> None:
    serving_v1(reg, host)
    with pytest.raises(OperationalError, match="serves fraud"):
        serving.pull(request(reg, host, model="other"))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]


# --- 5. weights named like bookkeeping ----------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.yaml", ".mvctl-version.json", "state.json"])
def test_weights_named_like_bookkeeping_are_served_as_weights(
    reg: Registry, host: Path, name: str
) -> None:
    serving_v1(reg, host)

    def rename(root: Path) -> None:
        git(root, "mv", DVCFILE, f"models/{name}.dvc")
        edit_weights(path=f"models/{name}")(root)
        dvc = root / f"models/{name}.dvc"
        data = yaml.safe_load(dvc.read_text())
        data["outs"][0]["path"] = name
        dvc.write_text(yaml.safe_dump(data))

    attack(reg, rename)
    result = serving.pull(request(reg, host))
    assert result.served.path.read_bytes() == WEIGHTS["v0.2.0"]
    assert (host / "current" / name).read_bytes() == WEIGHTS["v0.2.0"]
    status = serving.status(host)
    assert status is not None and status.version == "v0.2.0"
    # And the next swap (a rollback to the kept version) still works.
    repoint(reg, "fraud@v0.1.0")
    assert not serving.pull(request(reg, host)).downloaded
    assert served_bytes(host) == WEIGHTS["v0.1.0"]


# --- 6. malformed commits -----------------------------------------------------------------


def _symlinked_dvcfile(root: Path) -> None:
    (root / DVCFILE).unlink()
    (root / DVCFILE).symlink_to("/etc/passwd")


def _symlinked_manifest(root: Path) -> None:
    (root / MANIFEST).unlink()
    (root / MANIFEST).symlink_to("../../models/model.bin.dvc")


def _non_utf8(root: Path) -> None:
    path = root / MANIFEST
    path.write_bytes(path.read_bytes().replace(b"description: ''", b"description: '\xff'"))
    assert b"\xff" in path.read_bytes()


MALFORMED: dict[str, Edit] = {
    "weights without size": edit_weights(size=None),
    "dvc file a symlink": _symlinked_dvcfile,
    "manifest a symlink": _symlinked_manifest,
    "dvc file a list": edit_dvcfile(lambda d: [d]),
    "outs a mapping": edit_dvcfile(lambda d: {"outs": d["outs"][0]}),  # type: ignore[index]
    "outs empty": edit_dvcfile(lambda d: {"outs": []}),
    "non-utf8": _non_utf8,
    "path with ..": edit_weights(path="models/../../etc/passwd"),
    "absolute path": edit_weights(path="/etc/passwd"),
    "path is ..": edit_weights(path=".."),
    "weights a mapping": edit_manifest(lambda d: d.update(weights={"path": "x"})),
    "weights entry a string": edit_manifest(lambda d: d.update(weights=["models/model.bin"])),
    "no weights": edit_manifest(lambda d: d.update(weights=[])),
    "manifest a list": lambda root: (root / MANIFEST).write_text("- 1\n- 2\n"),
    "manifest of another model": edit_manifest(lambda d: d.update(model="other")),
    "md5 not hex": set_md5("x" * 32),
    "dir md5 for a file": set_md5("0" * 32 + ".dir"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_commit_is_one_line_and_exit_3(reg: Registry, host: Path, name: str) -> None:
    serving_v1(reg, host)
    attack(reg, MALFORMED[name])
    with pytest.raises(OperationalError):
        serving.pull(request(reg, host))
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    assert not [p for p in (host / "versions").iterdir() if p.name.startswith(".tmp-")]


def test_the_cli_refuses_a_malformed_commit_in_one_line(reg: Registry, host: Path) -> None:
    serving_v1(reg, host)
    for name in ("dvc file a list", "non-utf8", "outs a mapping"):
        attack(reg, MALFORMED[name])
        refused_in_one_line(cli(reg, host))
        assert served_bytes(host) == WEIGHTS["v0.1.0"]


def test_watch_survives_malformed_commits_and_follows_the_next_good_one(
    reg: Registry, host: Path, tmp_path: Path
) -> None:
    serve(reg, "v0.1.0")
    log = tmp_path / "watch.err"
    with log.open("w") as err:
        proc = subprocess.Popen(
            pull_argv(reg, host, "--watch", "--interval", "0.2"),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )
    try:
        assert _until(lambda: _serves(host, "v0.1.0"))
        for n, name in enumerate(("weights without size", "outs a mapping", "non-utf8"), 1):
            attack(reg, MALFORMED[name])
            assert _until(lambda n=n: log.read_text().count("refused") >= n), log.read_text()  # type: ignore[misc]
            assert proc.poll() is None and _serves(host, "v0.1.0")
        repoint(reg, "fraud@v0.3.0")
        assert _until(lambda: _serves(host, "v0.3.0")), log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    text = log.read_text()
    assert "Traceback" not in text
    # One line per refused commit, not one per poll: the same bad commit is not re-fetched.
    assert text.count("refused") == 3, text


# --- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ("--watch", "--interval", "nan"),
        ("--watch", "--interval", "inf"),
        ("--watch", "--interval", "-1"),
        ("--watch", "--interval", "0"),
        ("--on-change", 'echo "unterminated'),
    ],
)
def test_usage_errors_are_one_line(reg: Registry, host: Path, extra: tuple[str, ...]) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mvctl",
            "pull",
            str(reg.origin),
            "fraud",
            "--dest",
            str(host),
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not host.exists()


def test_a_served_version_removed_by_hand_is_downloaded_again(reg: Registry, host: Path) -> None:
    """Refusing planted symlinks must not brick a host: a dangling `current` of mvctl's own
    form (an operator deleted the directory) is replaced by the next swap."""
    serving_v1(reg, host)
    shutil.rmtree(host / "versions" / "v0.1.0")
    again = serving.pull(request(reg, host))
    assert again.downloaded and served_bytes(host) == WEIGHTS["v0.1.0"]


# --- 7. credentials, caches and names a pusher controls ----------------------------------


def _listener() -> tuple[object, list[dict[str, str]]]:
    """A local HTTP server that records each request's path and headers, answering 404."""
    import http.server
    import threading

    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_HEAD = do_POST = do_PROPFIND = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_host_credentials_only_go_to_the_url_the_host_configured(
    reg: Registry, host: Path, isolated_env: Path
) -> None:
    server, seen = _listener()
    port = server.server_address[1]  # type: ignore[attr-defined]
    good = f"http://127.0.0.1:{port}/good"
    config_dir = Path(os.environ["DVC_GLOBAL_CONFIG_DIR"])
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config").write_text(
        f"['remote \"mvctl\"']\n    url = {good}\n    auth = basic\n"
        "    user = svc\n    password = SECRET\n"
    )
    serving_v1(reg, host)

    def config(url: str) -> Edit:
        def edit(root: Path) -> None:
            (root / ".dvc" / "config").write_text(
                f"[core]\n    remote = mvctl\n['remote \"mvctl\"']\n    url = {url}\n"
            )

        return edit

    try:
        attack(reg, config(f"http://127.0.0.1:{port}/evil"))
        proc = cli(reg, host, remote=False)
        assert proc.returncode == 3, proc.stderr
        evil = [r for r in seen if r["path"].startswith("/evil")]
        assert evil, seen
        assert not [r for r in seen if "authorization" in r], seen
        assert "SECRET" not in proc.stdout + proc.stderr
        # The host's own URL, committed: its credentials do apply, to its own URL only.
        attack(reg, config(good))
        assert cli(reg, host, remote=False).returncode == 3
        sent = {r["path"].split("/")[1] for r in seen if "authorization" in r}
        assert sent == {"good"}, seen
        assert served_bytes(host) == WEIGHTS["v0.1.0"]
    finally:
        server.shutdown()  # type: ignore[attr-defined]


def _du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*")) if path.exists() else 0


JUNK = 20 << 20


def _junk(n: int) -> Edit:
    def edit(root: Path) -> None:
        with (root / f"junk-{n}.bin").open("wb") as out:
            out.write(os.urandom(JUNK))

    return edit


def test_the_git_cache_stays_small_whatever_a_commit_holds(reg: Registry, host: Path) -> None:
    serving_v1(reg, host)
    for n in range(2):
        attack(reg, both(_junk(n), edit_weights(size=-1)))
        with pytest.raises(OperationalError, match="refused"):
            serving.pull(request(reg, host))
    repoint(reg, "fraud@v0.3.0")
    assert serving.pull(request(reg, host)).served.version == "v0.3.0"
    assert _du(host / ".mvctl") < 2 << 20


def test_a_fetch_never_takes_the_blobs_the_host_does_not_read(
    reg: Registry, tmp_path: Path
) -> None:
    from mvctl._adapters.gitdir import GitDir

    git(reg.origin, "config", "uploadpack.allowFilter", "true")  # as GitHub and GitLab do
    attack(reg, _junk(0))
    cache = GitDir.create(tmp_path / "cache.git")
    commit = cache.fetch_shallow(str(reg.origin), "refs/tags/fraud@production", "refs/x")
    assert _du(tmp_path / "cache.git") < 2 << 20
    assert "fraud" in (cache.read_blob(commit, MANIFEST) or "")
    assert cache.read_blob(commit, "junk-0.bin") is None


@pytest.mark.parametrize("lock", ["shallow.lock", "packed-refs.lock", "refs/mvctl/alias.lock"])
def test_a_stale_git_lock_in_the_cache_does_not_wedge_the_host(
    reg: Registry, host: Path, lock: str
) -> None:
    serving_v1(reg, host)
    planted = host / ".mvctl" / "repo.git" / lock
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("")  # a fetch killed mid-way leaves these behind
    serve(reg, "v0.2.0")
    assert serving.pull(request(reg, host)).served.version == "v0.2.0"


def _follow_errors(req: serving.PullRequest, polls: float = 1.5) -> list[Exception]:
    """What ``serving.follow`` reports over ``polls`` seconds of 0.05 s polls."""
    import threading

    errors: list[Exception] = []
    stop = threading.Event()
    timer = threading.Timer(polls, stop.set)
    timer.start()
    try:
        serving.follow(
            req,
            interval=0.05,
            stop=stop,
            on_result=lambda r: None,
            on_error=lambda exc, delay: errors.append(exc),
        )
    finally:
        timer.cancel()
    return errors


def _huge_size(root: Path) -> None:
    path = root / MANIFEST
    text = path.read_text()
    size = yaml.safe_load(text)["weights"][0]["size"]
    path.write_text(text.replace(f"size: {size}", "size: " + "9" * 5000, 1))


LONG_NAME = "m" * 300  # more than the 255 bytes a file name may have


def _long_dvcfile(root: Path) -> None:
    """``models/LONG_NAME.dvc`` in the index only: no file system can hold it."""
    data = yaml.safe_load((root / DVCFILE).read_text())
    data["outs"][0]["path"] = LONG_NAME
    blob = subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=root, input=yaml.safe_dump(data),
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},models/{LONG_NAME}.dvc")


@pytest.mark.parametrize(
    ("edit", "stage"),
    [(_huge_size, None), (edit_weights(path=f"models/{LONG_NAME}"), _long_dvcfile)],
    ids=["5000-digit size", "name too long"],
)
def test_a_commit_the_host_cannot_take_is_refused_once(
    reg: Registry, host: Path, edit: Edit, stage: Edit | None
) -> None:
    serving_v1(reg, host)
    attack(reg, edit, stage=stage)
    with pytest.raises(OperationalError, match="refused"):
        serving.pull(request(reg, host))
    errors = _follow_errors(request(reg, host))
    assert len(errors) == 1, errors
    assert "refused" in str(errors[0]) and "Traceback" not in str(errors[0])
    assert served_bytes(host) == WEIGHTS["v0.1.0"]
    refused_in_one_line(cli(reg, host))


def test_credentials_in_the_repo_url_are_never_printed_or_stored(
    reg: Registry, host: Path, isolated_env: Path
) -> None:
    url = "http://user:SECRET@git.example.invalid/r.git"
    git(isolated_env, "config", "--global", f"url.{reg.origin}.insteadOf", url)
    serve(reg, "v0.1.0")
    argv = pull_argv(reg, host)
    argv[argv.index(str(reg.origin))] = url
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "SECRET" not in proc.stdout + proc.stderr
    assert "SECRET" not in (host / "state.json").read_text()
    for extra in ((), ("--json",)):
        shown = subprocess.run(
            [sys.executable, "-m", "mvctl", "pull", "--status", "--dest", str(host), *extra],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert shown.returncode == 0 and "git.example.invalid" in shown.stdout, shown.stderr
        assert "SECRET" not in shown.stdout + shown.stderr
    # --watch's first line, and what git itself says about an unreachable URL.
    bad = "http://user:SECRET@127.0.0.1:9/r.git?token=TOKEN"
    argv[argv.index(url)] = bad
    watch = subprocess.Popen([*argv, "--watch", "--interval", "60"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert watch.stderr is not None
        line = watch.stderr.readline()
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=30)
    said = out + line + err
    assert "error:" in said and "127.0.0.1" in said, said
    assert "SECRET" not in said and "TOKEN" not in said, said


def test_a_bad_dvc_remote_is_a_usage_error_without_its_password(reg: Registry, host: Path) -> None:
    argv = pull_argv(reg, host)
    argv[argv.index("--dvc-remote") + 1] = "https://user:SECRET@host/x'y"
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "SECRET" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
