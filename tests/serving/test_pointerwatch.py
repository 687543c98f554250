"""A host woken by pointer files (``mvctl pull --watch --pointer``): it swaps as soon as a
pointer moves, asks git nothing while none does, and serves what git says whatever a
pointer claims (forged, stale, huge, garbage, or a store that is down).

The poller's steps are driven with a clock of the test's own (``_Watch.step(now)``), so
"several polls with no change" is a count, never a sleep; the public ``watch_pointer``
runs once in a thread, end to end."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mvctl import serving
from mvctl.channels.promotion import promote
from mvctl.channels.rollback import rollback
from mvctl.errors import MvctlError
from mvctl.formats.pointer import BadPointer
from mvctl.serving.pointerwatch import PointerMismatch, _open, _Watch
from mvctl.serving.request import ChannelsResult
from tests.conftest import Registry, copy_registry, git, mvctl, run
from tests.remotes.conftest import GitDaemon, git_daemon, serve_origin  # noqa: F401 - a fixture
from tests.serving import test_serving as base
from tests.serving.test_serving import WEIGHTS, request, served_bytes

template, host = base.template, base.host

KEY = "mvctl/channels/fraud/production.json"


@pytest.fixture
def reg(template: Path, tmp_path: Path) -> Registry:
    reg = copy_registry(template, tmp_path, storage=False)
    with_pointers(reg, reg.storage)
    return reg


def with_pointers(reg: Registry, store: Path | str) -> None:
    path = reg.root / "mvctl.yaml"
    path.write_text(path.read_text() + "pointers: true\n")
    reg.git("commit", "-q", "-am", "Pointer files for the fleet")
    run("dvc", "remote", "modify", "--local", "mvctl", "url", str(store), cwd=reg.root)


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every git command's working directory and arguments, one line each (a shim first on
    PATH): what the host asks the git server is counted from it."""
    import shutil

    real = shutil.which("git")
    assert real is not None
    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    log = tmp_path / "git.log"
    log.touch()
    (shim_dir / "git").write_text(f'#!/bin/sh\necho "$PWD|$*" >> "{log}"\nexec "{real}" "$@"\n')
    (shim_dir / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def host_requests(log: Path, host: Path) -> int:
    """Requests the host made to the git server: its fetches and ls-remotes."""
    lines = log.read_text().splitlines()
    return sum(
        1
        for line in lines
        if str(host) in line and (" fetch " in f" {line.partition('|')[2]} " or "ls-remote" in line)
    )


class Recorder:
    def __init__(self) -> None:
        self.results: list[ChannelsResult] = []
        self.errors: list[MvctlError] = []

    def result(self, result: ChannelsResult) -> None:
        self.results.append(result)

    def error(self, exc: MvctlError, _delay: float) -> None:
        self.errors.append(exc)


def watcher(
    reg: Registry, host: Path, url: str | None = None, git_interval: float = 3600.0
) -> tuple[_Watch, Recorder]:
    rec = Recorder()
    watch = _Watch(
        request(reg, host),
        _open(url or str(reg.storage)),
        interval=1.0,
        git_interval=git_interval,
        on_result=rec.result,
        on_error=rec.error,
    )
    return watch, rec


def served(host: Path) -> str | None:
    got = serving.status(host)
    return got.version if got else None


def test_a_rollback_swaps_on_the_next_pointer_poll_and_no_change_costs_git_nothing(
    reg: Registry, host: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert (reg.storage / KEY).is_file()
    watch, rec = watcher(reg, host)
    watch.step(0.0)  # on start: a git poll
    assert served(host) == "v0.1.0" and len(rec.results) == 1
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(1.0)
    assert served(host) == "v0.2.0"

    rollback(reg.root, "fraud", reason="bad", push=True)
    before = host_requests(git_log, host)
    watch.step(2.0)  # long before git_interval: the pointer moved
    assert served(host) == "v0.1.0" and served_bytes(host) == WEIGHTS["v0.1.0"]
    outcome = rec.results[-1].outcomes[0]
    assert outcome.changed and not outcome.downloaded
    assert host_requests(git_log, host) - before == 1  # one fetch of the aliases: that is all

    quiet = host_requests(git_log, host)
    for now in range(3, 10):
        watch.step(float(now))
    assert host_requests(git_log, host) == quiet  # seven pointer polls, no git request
    assert len(rec.results) == 3 and not rec.errors

    watch.step(3603.0)  # git_interval passed: a git poll without any pointer change
    assert host_requests(git_log, host) == quiet + 1 and len(rec.results) == 4


def forge(reg: Registry, body: bytes) -> None:
    path = reg.storage / KEY
    tmp = path.with_suffix(".forged")
    tmp.write_bytes(body)
    tmp.replace(path)


def commit_of(reg: Registry, version: str) -> str:
    return reg.git("rev-parse", f"fraud@{version}^{{commit}}").strip()


def test_forged_pointers_cost_a_git_poll_and_never_a_swap(
    reg: Registry, host: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    good = (reg.storage / KEY).read_bytes()
    watch, rec = watcher(reg, host)
    watch.step(0.0)
    assert served(host) == "v0.1.0"
    v3 = commit_of(reg, "v0.3.0")
    forgeries = [
        good.replace(commit_of(reg, "v0.1.0").encode(), v3.encode()).replace(
            b"v0.1.0", b"v0.3.0"
        ),  # a well-formed pointer naming a version git does not serve
        good.replace(commit_of(reg, "v0.1.0").encode(), b"e" * 40),  # a commit git lacks
        b"garbage",
        b"{" * (10 << 20),  # 10 MB: never read past the cap
        good.replace(b"mvctl.pointer/1", b"mvctl.pointer/9"),
        good.replace(b'"fraud"', b'"other"'),
    ]
    for n, body in enumerate(forgeries, start=1):
        before = host_requests(git_log, host)
        forge(reg, body)
        watch.step(float(n))
        assert served(host) == "v0.1.0", body[:80]
        assert host_requests(git_log, host) - before == 1  # at most a git poll
    kinds = [type(e) for e in rec.errors]
    assert kinds == [PointerMismatch, PointerMismatch, *[BadPointer] * 4]
    assert "serving what git says" in rec.errors[0].message


@pytest.mark.slow
def test_a_stale_pointer_delays_a_host_by_git_interval_at_most(
    reg: Registry, host: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    watch, _ = watcher(reg, host, git_interval=60.0)
    watch.step(0.0)
    (reg.root / "mvctl.yaml").write_text(
        (reg.root / "mvctl.yaml").read_text().replace("pointers: true", "pointers: false")
    )
    reg.git("commit", "-q", "-am", "No pointer files")
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)  # no pointer written
    watch.step(30.0)
    assert served(host) == "v0.1.0"
    watch.step(61.0)
    assert served(host) == "v0.2.0"


@pytest.mark.slow
def test_an_unreachable_store_falls_back_to_git_polls_reported_once(
    reg: Registry, host: Path, tmp_path: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    watch, rec = watcher(reg, host, url=str(tmp_path / "nowhere"), git_interval=60.0)
    watch.step(0.0)
    assert served(host) == "v0.1.0"
    assert len(rec.errors) == 1 and "polling git every 60 s" in rec.errors[0].message
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    quiet = host_requests(git_log, host)
    for now in range(1, 60, 5):
        watch.step(float(now))
    assert host_requests(git_log, host) == quiet and len(rec.errors) == 1
    watch.step(61.0)
    assert served(host) == "v0.2.0" and len(rec.errors) == 1


def test_a_planted_link_at_the_alias_cache_is_refused(reg: Registry, host: Path) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    watch, rec = watcher(reg, host)
    watch.step(0.0)
    outside = host.parent / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    cache = host / ".mvctl" / "aliases.git"
    import shutil

    shutil.rmtree(cache)
    cache.symlink_to(outside)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(1.0)
    assert served(host) == "v0.1.0" and rec.errors
    assert (outside / "keep").read_text() == "mine"


@pytest.fixture
def stopper() -> Iterator[threading.Event]:
    stop = threading.Event()
    yield stop
    stop.set()


@pytest.mark.slow
def test_watch_pointer_in_a_thread_follows_a_rollback(
    reg: Registry, host: Path, stopper: threading.Event
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    results: queue.Queue[ChannelsResult] = queue.Queue()
    thread = threading.Thread(
        target=serving.watch_pointer,
        args=(request(reg, host), str(reg.storage)),
        kwargs={
            "interval": 0.05,
            "git_interval": 3600.0,
            "stop": stopper,
            "on_result": results.put,
            "on_error": lambda exc, _d: results.put(exc),  # type: ignore[arg-type]
        },
        daemon=True,
    )
    thread.start()
    first = results.get(timeout=60)
    assert isinstance(first, ChannelsResult) and served(host) == "v0.2.0"
    rollback(reg.root, "fraud", reason="bad", push=True)
    second = results.get(timeout=60)  # woken by the pointer: git_interval is an hour
    assert isinstance(second, ChannelsResult) and served(host) == "v0.1.0"
    stopper.set()
    thread.join(30)
    assert not thread.is_alive()


def test_cli_usage_errors(reg: Registry, host: Path) -> None:
    args = ("pull", str(reg.origin), "fraud", "--dest", str(host))
    alone = mvctl(reg.root, *args, "--git-interval", "60")
    assert alone.returncode == 2 and "--git-interval goes with --pointer" in alone.stderr
    once = mvctl(reg.root, *args, "--pointer", str(reg.storage))
    assert once.returncode == 2 and "--pointer goes with --watch" in once.stderr
    bad = mvctl(reg.root, *args, "--watch", "--pointer", "ftp://x/y", "--interval", "1")
    assert bad.returncode == 2 and "cannot be kept on" in bad.stderr


@pytest.mark.slow
def test_mvctl_pull_watch_pointer_follows_a_rollback_and_stops_on_sigterm(
    reg: Registry, host: Path
) -> None:
    import signal
    import subprocess

    from tests.serving.test_serving import _serves, _until, pull_argv

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    argv = pull_argv(reg, host, "--watch", "--interval", "0.2", "--pointer", str(reg.storage))
    proc = subprocess.Popen(
        [*argv, "--git-interval", "3600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert _until(lambda: _serves(host, "v0.2.0"), timeout=60)
        rollback(reg.root, "fraud", reason="bad", push=True)
        assert _until(lambda: _serves(host, "v0.1.0"), timeout=60)  # not an hour
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "pointer files at" in out and "git every 3600.0 s" in out
    assert "v0.2.0 -> v0.1.0 (downloaded and verified)" in out


def test_an_alias_forced_onto_a_deregistered_version_is_refused_after_one_fetch(
    reg: Registry, host: Path, git_log: Path
) -> None:
    from mvctl.serving.aliases import FetchedAliases
    from mvctl.serving.commit import RefusedCommit

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    v2 = commit_of(reg, "v0.2.0")
    reg.git("tag", "-a", "-m", "retired", "fraud@v0.2.0!", v2)
    reg.git("tag", "-f", "-a", "-m", "forced", "fraud@production", v2)
    reg.git("push", "-q", "--force", "origin", "fraud@v0.2.0!", "fraud@production")
    before = host_requests(git_log, host)
    result = serving.pull_channels(request(reg, host), source=FetchedAliases())
    [(_, error)] = result.errors
    assert isinstance(error, RefusedCommit) and "deregistered" in error.message
    assert served(host) == "v0.1.0" and host_requests(git_log, host) - before == 1


def test_a_pointer_rewritten_every_interval_does_not_make_git_polls_every_interval(
    reg: Registry, host: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    good = (reg.storage / KEY).read_bytes()
    watch, rec = watcher(reg, host, git_interval=60.0)
    watch.step(0.0)
    before = host_requests(git_log, host)
    for now in range(1, 31):  # the same, honest-looking document, a new file each time
        forge(reg, good)
        os.utime(reg.storage / KEY, ns=(now * 10**9, now * 10**9))
        watch.step(float(now))
    assert served(host) == "v0.1.0"
    # 8 free wakes, then backed off (2, 4, 8, 16 s): not 30 fetches
    assert host_requests(git_log, host) - before <= 12
    assert len(rec.errors) == 1 and "backed off" in rec.errors[0].message  # reported once
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    watch.step(31.0 + 60.0)  # a real move: at git_interval at the latest
    assert served(host) == "v0.2.0"


# --- the alias cache, kept between polls --------------------------------------------------


def cache_inits(log: Path, host: Path) -> int:
    """`git init`s of the host's alias cache."""
    cache = str(host / ".mvctl" / "aliases.git")
    return sum(
        1
        for line in log.read_text().splitlines()
        if line.partition("|")[2].split()[:1] == ["init"] and line.endswith(f" {cache}")
    )


def test_the_alias_cache_is_created_once_not_on_every_poll(
    reg: Registry, host: Path, git_log: Path
) -> None:
    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    watch, rec = watcher(reg, host, git_interval=1.0)
    watch.step(0.0)
    marker = host / ".mvctl" / "aliases.git" / "mvctl-test-marker"
    marker.write_text("kept")
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    for now in (2.0, 4.0, 6.0):  # a change, then git polls at git_interval that find none
        watch.step(now)
    assert served(host) == "v0.2.0" and len(rec.results) == 4 and not rec.errors
    assert cache_inits(git_log, host) == 1 and marker.read_text() == "kept"


def test_a_deregistration_gone_from_the_remote_is_not_read_from_the_kept_cache(
    reg: Registry, host: Path
) -> None:
    from mvctl.serving.aliases import FetchedAliases
    from mvctl.serving.commit import RefusedCommit

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    v2 = commit_of(reg, "v0.2.0")
    reg.git("tag", "-a", "-m", "retired", "fraud@v0.2.0!", v2)
    reg.git("push", "-q", "origin", "fraud@v0.2.0!")
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    reg.git("tag", "-f", "-a", "-m", "forced", "fraud@production", v2)
    reg.git("push", "-q", "--force", "origin", "fraud@production")
    refused = serving.pull_channels(request(reg, host), source=FetchedAliases())
    [(_, error)] = refused.errors
    assert isinstance(error, RefusedCommit) and served(host) == "v0.1.0"
    # The deregistration withdrawn on the remote: the cache's copy of it is pruned.
    reg.git("push", "-q", "origin", ":refs/tags/fraud@v0.2.0!")
    result = serving.pull_channels(request(reg, host), source=FetchedAliases())
    assert not result.errors and served(host) == "v0.2.0"


def test_an_alias_deleted_on_the_remote_is_not_read_from_the_kept_cache(
    reg: Registry, host: Path
) -> None:
    from mvctl.serving.aliases import FetchedAliases

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    # A deregistration, so that the fetch still brings a ref once the alias is gone.
    reg.git("tag", "-a", "-m", "retired", "fraud@v0.2.0!", commit_of(reg, "v0.2.0"))
    reg.git("push", "-q", "origin", "fraud@v0.2.0!")
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    reg.git("push", "-q", "origin", ":refs/tags/fraud@production")
    # Read from the remote, not the cache: the channel is empty, the host keeps v0.1.0.
    result = serving.pull_channels(request(reg, host), source=FetchedAliases())
    primary = result.outcomes[0]
    assert primary.empty and primary.error is None and not primary.changed
    assert served(host) == "v0.1.0"
    assert not (host / ".mvctl" / "aliases.git" / "refs/mvctl/remote/fraud@production").exists()


def test_a_cleared_channel_with_nothing_else_to_fetch_empties_the_kept_cache(
    reg: Registry, host: Path
) -> None:
    """The fetch then matches no ref (git fails it, silently): the cache keeps nothing of
    the alias it held, as the prune would have done."""
    from mvctl.serving.aliases import FetchedAliases

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    cached = host / ".mvctl" / "aliases.git"
    listed = git(cached, "for-each-ref", "--format=%(refname)", "refs/mvctl/")
    assert "refs/mvctl/remote/fraud@production" in listed.split()
    reg.git("push", "-q", "origin", ":refs/tags/fraud@production")
    result = serving.pull_channels(request(reg, host), source=FetchedAliases())
    assert result.outcomes[0].empty and served(host) == "v0.1.0"
    assert git(cached, "for-each-ref", "--format=%(refname)", "refs/mvctl/").split() == []
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    assert served(host) == "v0.2.0"


def test_a_broken_alias_cache_fails_one_poll_and_the_next_starts_afresh(
    reg: Registry, host: Path
) -> None:
    from mvctl.serving.aliases import FetchedAliases

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    cache = host / ".mvctl" / "aliases.git"
    (cache / "HEAD").write_text("not a ref\n")  # what a killed or damaged cache may hold
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    with pytest.raises(MvctlError, match="fetch the channel aliases"):
        serving.pull_channels(request(reg, host), source=FetchedAliases())
    assert not cache.exists() and served(host) == "v0.1.0"
    assert serving.pull_channels(request(reg, host), source=FetchedAliases()).primary
    assert served(host) == "v0.2.0"


def test_over_git_daemon_a_forced_alias_and_a_pointer_reach_the_kept_cache_right(
    reg: Registry,
    host: Path,
    git_daemon: GitDaemon,  # noqa: F811 - the fixture
) -> None:
    """Over git:// (a real daemon): polls into the kept cache follow promote, a rollback
    and an alias force-pushed back and forth, always to what the remote says."""
    url = serve_origin(git_daemon, reg.origin)
    reg.git("remote", "set-url", "origin", url)
    req = request(reg, host, repo=url)
    from mvctl.serving.aliases import FetchedAliases

    promote(reg.root, "fraud", "v0.1.0", "production", push=True)
    assert serving.pull_channels(req, source=FetchedAliases()).primary
    promote(reg.root, "fraud", "v0.2.0", "production", push=True)
    serving.pull_channels(req, source=FetchedAliases())
    assert served(host) == "v0.2.0"
    rollback(reg.root, "fraud", reason="bad", push=True)
    serving.pull_channels(req, source=FetchedAliases())
    assert served(host) == "v0.1.0"
    # Someone with push rights forces the alias's old tag object back: git says v0.2.0.
    reg.git("tag", "-f", "-a", "-m", "forced", "fraud@production", commit_of(reg, "v0.2.0"))
    reg.git("push", "-q", "--force", "origin", "fraud@production")
    serving.pull_channels(req, source=FetchedAliases())
    assert served(host) == "v0.2.0"
