"""A fleet converging after a rollback: N serving hosts follow production from a real
`git daemon`; `mvctl rollback --push` moves it back and every host's switch is timed, while
the git server (its --access-hook) and the object store (_httpstore.py) count requests.

    python benchmarks/bench_fleet.py [--hosts 10 50 200] [--interval 1] [--window 10]
        [--git-interval 60] [--modes git git-inetd pointer] [--quick]

A host is a thread of this one process running mvctl's own poller into a host directory of
its own (a lightweight poller, not an interpreter per host): mode ``git`` polls the alias
with `git ls-remote` (``serving.follow_channels``); ``git-inetd`` the same against `git
daemon --inetd` behind a listen backlog of 1024 (_gitinetd.py); mode ``pointer`` polls the channel's
pointer file in the object store with a conditional GET and asks git only when it moved,
or every ``--git-interval`` s (``serving.pointerwatch.watch_pointer``; skipped where that
module does not exist). Every host holds both versions before the rollback, so it is a swap
without a download, the case the budget is about.

Budget (DESIGN.md): 200 hosts converge within the poll interval + 2 s with at most one git
request per host per change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from _common import BIN, isolated_env, machine, new_registry, run, write_section

MODEL = "fraud"
V1, V2 = "v0.1.0", "v0.2.0"
POINTER = f"mvctl/channels/{MODEL}/production.json"  # under the DVC remote
ALIAS_REF = f"refs/tags/{MODEL}@production"


def pointer_watch() -> Callable[..., None] | None:
    """``watch_pointer`` where this checkout has pointer files, else None."""
    try:
        from mvctl.serving.pointerwatch import watch_pointer  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return watch_pointer  # type: ignore[no-any-return]


# --- the servers -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` and of the children it has reaped (a git
    daemon's upload-packs and access hooks; a store's threads are its own)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The kernel's count of connections refused at a full listen queue (machine-wide:
    on loopback here, the fleet's own, unless another engineer's server overflows too)."""
    lines = [ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()]
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names[0] == "TcpExt:":
            return int(values[names.index("ListenOverflows")])
    return 0


@dataclass
class GitServer:
    proc: subprocess.Popen[Any]
    port: int
    requests_log: Path
    daemon_log: Path

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def requests(self) -> int:
        """Requests the daemon has accepted so far: one access-hook line each."""
        return self.requests_log.read_bytes().count(b"\n")

    def dropped(self) -> int:
        """Connections the daemon refused ("Too many children, dropping connection")."""
        return self.daemon_log.read_bytes().count(b"dropping connection")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


@contextmanager
def git_daemon(
    work: Path, base: Path, env: dict[str, str], *, inetd: bool = False
) -> Iterator[GitServer]:
    """A real `git daemon` on a free loopback port exporting ``base``, with git's default
    settings (a listen backlog of 5, --max-connections 32) and an access hook that appends
    one line per request: the count is the server's own. With ``inetd``, `git daemon
    --inetd` per connection behind _gitinetd.py's socket (a backlog of 1024)."""
    name = "inetd" if inetd else "daemon"
    log, hook = work / f"git-{name}-requests.log", work / f"access-hook-{name}"
    log.touch()
    hook.write_text(f"#!/bin/sh\nprintf '%s %s\\n' \"$1\" \"$2\" >> '{log}'\n")
    hook.chmod(0o755)
    daemon_log = work / f"git-{name}.log"
    # The daemon itself, not the `git` wrapper that would run it as its child: its CPU
    # (and that of the children it reaps) is then this process's to read.
    daemon = str(Path(run(["git", "--exec-path"], work, env).strip()) / "git-daemon")
    options = [f"--base-path={base}", "--export-all", f"--access-hook={hook}", str(base)]
    proc: subprocess.Popen[Any]
    with daemon_log.open("wb") as out:
        if inetd:
            script = Path(__file__).with_name("_gitinetd.py")
            proc = subprocess.Popen(
                [sys.executable, str(script), daemon, "--", *options],
                env=env,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
            )
        else:
            port = free_port()
            listen = ["--reuseaddr", "--listen=127.0.0.1", f"--port={port}"]
            proc = subprocess.Popen(
                [daemon, *listen, *options], env=env, stdout=out, stderr=subprocess.STDOUT
            )
    try:
        if inetd:
            assert proc.stdout is not None
            port = listening(str(proc.stdout.readline()), "git daemon --inetd")
        wait_for_port(port, proc)
        yield GitServer(proc, port, log, daemon_log)
    finally:
        stop(proc)


def listening(line: str, what: str) -> int:
    words = line.split()
    if words[:1] != ["listening"]:
        raise SystemExit(f"{what} did not start")
    return int(words[1])


@dataclass
class HttpStore:
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as reply:  # noqa: S310
            return dict(json.load(reply))

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)


@contextmanager
def http_store(root: Path, env: dict[str, str]) -> Iterator[HttpStore]:
    """_httpstore.py over ``root`` (the registry's DVC remote) in a process of its own."""
    script = Path(__file__).with_name("_httpstore.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--root", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield HttpStore(proc, listening(proc.stdout.readline(), "the HTTP store"))
    finally:
        stop(proc)


def wait_for_port(port: int, proc: subprocess.Popen[Any]) -> None:
    deadline = time.time() + 15
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"git daemon exited {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"git daemon did not answer on port {port}")


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the registry ------------------------------------------------------------------------


class Registry:
    """The publisher's clone: every move is a real `mvctl` subprocess pushing to the bare
    remote by path (so the daemon's log holds the fleet's requests alone), with git's clock
    an hour later per move (a plain rollback minutes after another is a retry of it)."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.moves = root, env, 0
        self.version = V2

    def _move(self, *args: str) -> dict[str, Any]:
        self.moves += 1
        when = datetime.now(UTC) + timedelta(hours=self.moves)
        env = {**self.env, "GIT_COMMITTER_DATE": when.isoformat(timespec="seconds")}
        return dict(json.loads(run([BIN / "mvctl", *args, "--push", "--json"], self.root, env)))

    def promote(self, version: str) -> None:
        self._move("promote", MODEL, version, "--to", "production")
        self.version = version

    def rollback(self) -> str:
        """``mvctl rollback fraud --push``; the version production holds after it."""
        moved = self._move("rollback", MODEL, "--reason", "fleet bench")
        self.version = str(moved["version"])
        return self.version


def build(work: Path, env: dict[str, str], size_kb: int) -> tuple[Registry, Path, Path]:
    """A registry with two versions of ``fraud``, production promoted v1 -> v2; returns it,
    the directory the daemon exports and the DVC remote."""
    served, root, storage = work / "served", work / "registry", work / "storage"
    served.mkdir()
    new_registry(root, env, storage, served / "registry.git")
    (root / "models").mkdir()
    for i in (1, 2):
        (root / "models" / "model.bin").write_bytes(os.urandom(size_kb * 1024 - 1) + bytes([i]))
        run([BIN / "mvctl", "register", MODEL, "-w", "models/model.bin", "--push"], root, env)
    registry = Registry(root, env)
    return registry, served, storage


# --- simulated pointer-mode hosts --------------------------------------------------------


@dataclass
class Fetch:
    start: float  # time.time() the git request was sent
    end: float  # when git's answer was in (the git process exited)
    oid: str | None  # the alias tag object it brought


def alias_refspecs() -> list[str]:
    """The refspecs a pointer-mode host fetches (FetchedAliases.remote_refs for one
    followed channel): the alias and the deregistrations, as patterns."""
    from mvctl.formats import tags
    from mvctl.serving.aliases import _spec

    wanted = [f"refs/tags/{tags.alias_tag(MODEL, 'production')}", deregistered_pattern()]
    return [_spec(ref if "*" in ref else f"{ref}*") for ref in wanted]


def deregistered_pattern() -> str:
    from mvctl.formats import tags

    return f"refs/tags/{tags.deregister_tag(MODEL, 'v*')}"


class GitWire:
    """A simulated host's git request over git://, as the real host's `git fetch` sends it,
    packet for packet: the packets of one real host's git poll (mvctl's own, traced with
    GIT_TRACE_PACKET against the same daemon), the wants those its ls-refs answered.
    The daemon runs the same upload-pack (and pack-objects) for it; the host reads the pack
    and drops it, which is the part that would cost a real host's CPU."""

    def __init__(
        self, port: int, hello: bytes, ls_refs: list[bytes], fetch: list[bytes], at: int
    ) -> None:
        self.port, self.hello, self.ls_refs, self.fetch, self.at = port, hello, ls_refs, fetch, at
        self.patterns = [s.split(":")[0].lstrip("+") for s in alias_refspecs()]

    @classmethod
    def traced(cls, port: int, poll: Callable[[], object], trace: Path) -> GitWire:
        """The packets of ``poll``, a real host's git poll (run once, traced)."""
        os.environ["GIT_TRACE_PACKET"] = str(trace)
        try:
            poll()
        finally:
            del os.environ["GIT_TRACE_PACKET"]
        sent = [
            line.split("fetch> ", 1)[1]
            for line in trace.read_text().splitlines()
            if "fetch> " in line
        ]
        hello = sent[0].replace("\\0", "\0").encode()
        commands = [i for i, pkt in enumerate(sent) if pkt.startswith("command=")]
        if not commands or not sent[commands[0]].endswith("ls-refs"):
            raise SystemExit("the real fetch did not speak protocol v2 (ls-refs)")
        end = commands[1] if len(commands) > 1 else len(sent)
        ls_refs = [p.encode() for p in sent[commands[0] : end]]
        # The first round of the fetch (a host holding the alias's objects sends its
        # 'have's, and the server answers 'ready' with the pack: one round here), its wants
        # taken out: a simulated host wants what its own ls-refs lists.
        last = commands[2] if len(commands) > 2 else len(sent)
        first = sent[end:last]
        at = next((i for i, p in enumerate(first) if p.startswith("want ")), None)
        if at is None:
            raise SystemExit("the real host's git poll fetched nothing: nothing to replay")
        fetch = [p.encode() for p in first if not p.startswith("want ")]
        return cls(port, hello, ls_refs, fetch, at)

    @staticmethod
    def pkt(payload: bytes) -> bytes:
        if payload in (b"0000", b"0001", b"0002"):
            return payload
        if not payload.endswith(b"\n") and b"\0" not in payload:
            payload += b"\n"
        return b"%04x" % (len(payload) + 4) + payload

    @staticmethod
    async def read_pkt(reader: asyncio.StreamReader) -> bytes | None:
        """A packet's payload; None for a flush, b"" for a delimiter."""
        size = int(await reader.readexactly(4), 16)
        if size == 0:
            return None
        if size in (1, 2):
            return b""
        return await reader.readexactly(size - 4)

    async def pack(self, reader: asyncio.StreamReader) -> bool:
        """Read a fetch response to its end; whether it carried the pack."""
        packfile = False
        while (line := await self.read_pkt(reader)) is not None:
            packfile = packfile or line == b"packfile\n"
        return packfile

    async def request(self) -> str | None:
        """One git request (one connection, as git daemon counts it): ls-refs, then a
        fetch of what it lists; the alias tag object the remote holds."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(self.pkt(self.hello))
            while await self.read_pkt(reader) is not None:  # the capability advertisement
                pass
            writer.write(b"".join(map(self.pkt, self.ls_refs)))
            refs: dict[str, str] = {}
            while (line := await self.read_pkt(reader)) is not None:
                oid, name = line.decode().split()[:2]
                refs[name] = oid
            wants = list(
                dict.fromkeys(
                    oid
                    for name, oid in refs.items()
                    if any(fnmatchcase(name, p) for p in self.patterns)
                )
            )
            if wants:
                i = self.at
                body = [*self.fetch[:i], *(b"want " + w.encode() for w in wants), *self.fetch[i:]]
                writer.write(b"".join(map(self.pkt, body)))
                if not await self.pack(reader):  # not 'ready': git's next round ends it
                    body.insert(len(body) - 1, b"done")
                    writer.write(b"".join(map(self.pkt, body)))
                    await self.pack(reader)
            writer.write(b"0000")
        finally:
            writer.close()
        return refs.get(ALIAS_REF)


class SimFleet:
    """Simulated pointer-mode hosts in one asyncio loop: each reads the pointer with a
    conditional GET every interval (+/- 10%, a new connection each, as the real host's
    urllib does), and on a change, on start and every git_interval runs the real host's git
    request (the same `git fetch` command line, into a cache directory of its own). What a
    host does locally after git answered (reading the tags, the checks, the swap) is not
    simulated: the one real host beside them measures it."""

    def __init__(self, hosts: list[Host], args: argparse.Namespace, wire: GitWire, port: int):
        self.hosts, self.args, self.wire, self.port = hosts, args, wire, port
        self.lock = threading.Lock()

    async def get(self, etag: str | None) -> tuple[int, str | None]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            head = (
                f"GET /{POINTER} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Accept-Encoding: identity\r\nConnection: close\r\n"
            )
            if etag:
                head += f"If-None-Match: {etag}\r\n"
            writer.write((head + "\r\n").encode())
            reply = await reader.read()
        finally:
            writer.close()
        status_line, _, rest = reply.partition(b"\r\n")
        status = int(status_line.split()[1])
        headers, _, body = rest.partition(b"\r\n\r\n")
        tag = None
        for line in headers.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"etag":
                tag = value.strip().decode()
        if status == 200:
            json.loads(body)  # the host parses the pointer (and only takes it as a hint)
        return status, tag

    async def git_request(self, host: Host) -> None:
        start = time.time()
        oid = await self.wire.request()
        with self.lock:
            host.fetches.append(Fetch(start, time.time(), oid))

    async def host(self, i: int, host: Host, stop: threading.Event, on_error: Any) -> None:
        interval, git_interval = self.args.interval, self.args.git_interval
        await asyncio.sleep(interval * i / len(self.hosts))  # their phases spread
        etag: str | None = None
        pending, next_git, failures = True, 0.0, 0
        while not stop.is_set():
            now = time.monotonic()
            try:
                status, tag = await asyncio.wait_for(self.get(etag), 30)
                if status == 200 and tag != etag:
                    etag, pending = tag, True
                elif status != 304:
                    raise RuntimeError(f"the store answered {status}")
            except Exception as exc:  # the real host falls back to git polls
                on_error(exc, interval)
            if pending or now >= next_git:
                try:
                    await asyncio.wait_for(self.git_request(host), 60)
                    pending, failures = False, 0
                    next_git = time.monotonic() + git_interval
                except Exception as exc:
                    failures += 1
                    on_error(exc, interval)
            delay = interval * (2 ** min(failures, 6) if failures else 1)
            await asyncio.sleep(delay * (1 + random.uniform(-0.1, 0.1)))

    def run(self, stop: threading.Event, on_error: Callable[[Host], Any]) -> None:
        async def main() -> None:
            await asyncio.gather(
                *(self.host(i, h, stop, on_error(h)) for i, h in enumerate(self.hosts))
            )

        asyncio.run(main())


def served_by_fetch(host: Host, oid: str, after: float) -> Fetch | None:
    """A simulated host's first git answer naming ``oid`` sent after ``after``."""
    return next((f for f in host.fetches if f.oid == oid and f.end >= after), None)


# --- the fleet ---------------------------------------------------------------------------


@dataclass
class Host:
    dest: Path
    version: str | None = None
    switched: float | None = None  # when (time.time()) it first served the target
    swap_poll: float = 0.0  # seconds the poll that switched it took (ls-remote to swap)
    polls: int = 0
    errors: int = 0
    elapsed: list[float] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)  # a simulated host's git answers
    local_s: float | None = None  # the real host's switching poll less its git request


def served_version(result: Any) -> str | None:
    """The version a poll's result says the host serves (a ChannelsResult or PullResult)."""
    primary = getattr(result, "primary", None)
    if primary is None:
        primary = getattr(result, "served", None)
    return getattr(primary, "version", None)


@dataclass(frozen=True)
class Run:
    mode: str
    hosts: int
    load: float
    converge: list[float]
    unconverged: int
    steady_git_rps: float
    steady_store_rps: float
    steady_git_cores: float
    steady_store_cores: float
    steady_fleet_cores: float  # the pollers' process and its git children
    poll_cpu: float  # CPU seconds per poll of the pollers' process and its git children
    git_per_poll: float  # git requests per poll in steady state
    store_per_poll: float
    window_git: int
    window_store: int
    window_s: float
    window_expected: float
    errors: int
    dropped: int
    overflows: int
    rollback_s: float
    poll_s: float
    swap_poll_s: float  # median duration of the polls that switched a host
    messages: tuple[tuple[str, int], ...]  # the host errors of the run, most common first
    simulated: int = 0  # hosts simulated (pointer mode: all but the one real host)
    local_swap_s: float | None = None  # the real host's switching poll less its git request
    real_converge_s: float | None = None  # the real host's own convergence
    sim_fetch_s: float | None = None  # median git request of the simulated hosts' switch


class Fleet:
    def __init__(
        self, mode: str, hosts: list[Host], start: Callable[[Host, threading.Event], None]
    ):
        self.mode, self.hosts, self.start = mode, hosts, start
        self.target: str | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.messages: Counter[str] = Counter()

    def on_result(self, host: Host) -> Callable[[Any], None]:
        def record(result: Any) -> None:
            now = time.time()
            version = served_version(result)
            with self.lock:
                host.polls += 1
                host.version = version
                elapsed = getattr(result, "elapsed", None)
                if elapsed:
                    host.elapsed.append(float(elapsed))
                if version == self.target and host.switched is None:
                    host.switched, host.swap_poll = now, float(elapsed or 0.0)

        return record

    def on_error(self, host: Host) -> Callable[[Any, float], None]:
        def record(error: Any, _retry_in: float) -> None:
            with self.lock:
                host.errors += 1
                self.messages[str(getattr(error, "message", error))[:160]] += 1

        return record

    def launch(self, spread: float) -> None:
        """One thread per host, their starts spread over ``spread`` s (hosts of a real fleet
        were not all started in the same second; their polls keep their phase, +/- 10%)."""
        for i, host in enumerate(self.hosts):
            thread = threading.Thread(target=self.start, args=(host, self.stop), daemon=True)
            thread.start()
            self.threads.append(thread)
            time.sleep(spread / len(self.hosts) if i + 1 < len(self.hosts) else 0)

    def polls(self) -> int:
        """Polls so far, failed ones included (the caller holds the lock or reads once)."""
        return sum(h.polls + h.errors for h in self.hosts)

    def wait(self, done: Callable[[Host], bool], deadline: float) -> bool:
        while time.time() < deadline:
            with self.lock:
                if all(done(h) for h in self.hosts):
                    return True
            time.sleep(0.01)
        return False

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(120)


def alias_oid(work: Path, env: dict[str, str]) -> str:
    """The alias tag object the bare remote holds now (what git says)."""
    bare = work / "served" / "registry.git"
    return run(["git", "--git-dir", str(bare), "rev-parse", ALIAS_REF], work, env).strip()


@contextmanager
def timed_fetches() -> Iterator[list[tuple[float, float]]]:
    """(start, end) of every alias fetch mvctl runs in this process meanwhile: the real
    host's git requests (the simulated hosts run theirs as git subprocesses of their own).
    The fetch itself runs as it is; only its clock is read."""
    from mvctl._adapters import gitdir

    original = gitdir.GitDir.fetch_refs
    seen: list[tuple[float, float]] = []

    def fetch_refs(self: Any, url: str, refspecs: Any) -> None:
        start = time.time()
        original(self, url, refspecs)
        seen.append((start, time.time()))

    gitdir.GitDir.fetch_refs = fetch_refs  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        gitdir.GitDir.fetch_refs = original  # type: ignore[method-assign]


def fleet_run(
    mode: str,
    n: int,
    args: argparse.Namespace,
    work: Path,
    template: Path,
    registry: Registry,
    git: GitServer,
    store: HttpStore,
) -> Run:
    from mvctl import serving

    if registry.version != V2:
        registry.promote(V2)
    if mode.startswith("pointer") and not (work / "storage" / POINTER).is_file():
        registry.promote(V1)  # a move with pointers on writes the pointer file
        registry.promote(V2)
    base = work / f"{mode}-{n}"
    simulated = mode.startswith("pointer")  # one real host, n - 1 simulated beside it
    hosts = []
    for i in range(n):
        dest = base / f"host{i}"
        if i == 0 or not simulated:
            shutil.copytree(template, dest, symlinks=True)
        hosts.append(Host(dest))
    url, store_url = git.url("registry.git"), store.url
    wire = None
    if simulated:  # the real host's git request, traced once, replayed by the others
        from mvctl.serving.aliases import FetchedAliases

        tracer = base / "tracer"
        shutil.copytree(template, tracer, symlinks=True)
        req = serving.PullRequest.following(url, MODEL, ("production",), tracer)
        serving.pull_channels(req, source=FetchedAliases())  # a host past its first poll

        def poll() -> object:
            return serving.pull_channels(req, source=FetchedAliases())

        wire = GitWire.traced(git.port, poll, base / "packet-trace")
    watch = pointer_watch()
    oids = {V2: alias_oid(work, dict(os.environ))}
    real_fetches: list[tuple[float, float]] = []

    def start(host: Host, stop: threading.Event) -> None:
        req = serving.PullRequest.following(
            url, MODEL, ("production",), host.dest, dvc_remote=store_url
        )
        on_result, on_error = fleet.on_result(host), fleet.on_error(host)
        if not simulated:
            serving.follow_channels(
                req, interval=args.interval, stop=stop, on_result=on_result, on_error=on_error
            )
        else:
            assert watch is not None

            def on_real_result(result: Any) -> None:
                switching = host.switched is None
                on_result(result)
                if switching and host.switched is not None and real_fetches:
                    fetch_start, fetch_end = real_fetches[-1]
                    host.local_s = host.swap_poll - (fetch_end - fetch_start)

            watch(
                req,
                store_url,  # the DVC remote's root: the pointers are under it
                interval=args.interval,
                git_interval=args.git_interval,
                stop=stop,
                on_result=on_real_result,
                on_error=on_error,
            )

    fleet = Fleet(mode, hosts[:1] if simulated else hosts, start)
    sims = SimFleet(hosts[1:], args, wire, store.port) if wire else None
    load = os.getloadavg()[0]

    def serves(version: str, after: float = 0.0) -> Callable[[Host], bool]:
        def done(h: Host) -> bool:
            if h.fetches or (sims is not None and h is not hosts[0]):
                return served_by_fetch(h, oids[version], after) is not None
            return h.version == version if not after else h.switched is not None

        return done

    def polls(stats: dict[str, int]) -> int:
        """Polls so far: a pointer-mode host's poll is a read of its pointer (its git polls
        are what on_result sees); a git-mode host's, each result or failure."""
        return stats.get("pointer", 0) if simulated else fleet.polls()

    def every(check: Callable[[Host], bool], deadline: float) -> bool:
        while time.time() < deadline:
            with fleet.lock, sims.lock if sims else fleet_nolock():
                if all(check(h) for h in hosts):
                    return True
            time.sleep(0.01)
        return False

    with ExitStack() as stack:
        if simulated:
            real_fetches = stack.enter_context(timed_fetches())
        try:
            fleet.launch(args.interval if not simulated else 0.0)
            if sims is not None:
                thread = threading.Thread(
                    target=sims.run, args=(fleet.stop, fleet.on_error), daemon=True
                )
                thread.start()
                fleet.threads.append(thread)
            if not every(serves(V2), time.time() + 60 + n * 0.5):
                raise SystemExit(f"{mode}, {n} hosts: the fleet never served {V2}")
            time.sleep(args.interval)  # every host past its first poll: steady state
            with fleet.lock:
                for h in hosts:
                    h.errors, h.elapsed, h.polls = 0, [], 0
            g0, s0, gc0, sc0, t0 = (
                git.requests(),
                store.stats(),
                git.cpu(),
                store.cpu(),
                time.time(),
            )
            dropped0, fc0, overflows0, p0 = git.dropped(), own_cpu(), listen_overflows(), polls(s0)
            time.sleep(args.window)
            g1, s1, gc1, sc1, t1 = (
                git.requests(),
                store.stats(),
                git.cpu(),
                store.cpu(),
                time.time(),
            )
            fc1, steady_polls = own_cpu(), polls(s1) - p0
            with fleet.lock:
                elapsed = [e for h in hosts for e in h.elapsed]
            poll_s = statistics.median(elapsed) if elapsed else 0.0
            fleet.target = V1
            # The change window opens as the rollback starts: a host may see the push before
            # the command returns (the publisher pushes by path, so the daemon sees hosts only).
            g2, s2 = git.requests(), store.stats()
            p2, started = polls(s2), time.time()
            if registry.rollback() != V1:
                raise SystemExit(f"the rollback did not go back to {V1}")
            returned = time.time()
            oids[V1] = alias_oid(work, dict(os.environ))
            # The push completed when the remote's alias ref was written (same clock).
            pushed = (work / "served" / "registry.git" / ALIAS_REF).stat().st_mtime
            every(serves(V1, started), pushed + max(args.window, args.interval * 10 + 30))
            left = started + args.window - time.time()
            if left > 0:
                time.sleep(left)
            g3, s3, t3 = git.requests(), store.stats(), time.time()
            p3 = polls(s3)
        finally:
            fleet.halt()
        with fleet.lock:
            real = hosts[0]
            local = real.local_s if simulated else None
            times, swap_polls, fetch_s = [], [], []
            for h in hosts:
                got = served_by_fetch(h, oids[V1], started) if h is not real and sims else None
                if got is not None:  # a simulated host: its git answer, then the real swap
                    times.append(max(got.end - pushed, 0.0) + (local or 0.0))
                    fetch_s.append(got.end - got.start)
                elif h.switched is not None and (h is real or not sims):
                    times.append(max(h.switched - pushed, 0.0))
                    swap_polls.append(h.swap_poll)
            errors = sum(h.errors for h in hosts)
            real_converge = (
                max(real.switched - pushed, 0.0) if simulated and real.switched else None
            )
    shutil.rmtree(base, ignore_errors=True)
    steady = t1 - t0
    return Run(
        mode=mode,
        hosts=n,
        load=load,
        converge=times,
        unconverged=n - len(times),
        steady_git_rps=(g1 - g0) / steady,
        steady_store_rps=(s1.get("requests", 0) - s0.get("requests", 0)) / steady,
        steady_git_cores=(gc1 - gc0) / steady,
        steady_store_cores=(sc1 - sc0) / steady,
        steady_fleet_cores=(fc1 - fc0) / steady,
        poll_cpu=(fc1 - fc0) / max(steady_polls, 1),
        git_per_poll=(g1 - g0) / max(steady_polls, 1),
        store_per_poll=(s1.get("requests", 0) - s0.get("requests", 0)) / max(steady_polls, 1),
        window_git=g3 - g2,
        window_store=s3.get("requests", 0) - s2.get("requests", 0),
        window_s=t3 - started,
        # git requests a poll costs in steady state, times the window's polls: what the
        # window would have cost without the change (polls slow down while hosts swap).
        window_expected=(g1 - g0) / max(steady_polls, 1) * (p3 - p2),
        errors=errors,
        dropped=git.dropped() - dropped0,
        overflows=listen_overflows() - overflows0,
        rollback_s=returned - started,
        poll_s=poll_s,
        swap_poll_s=statistics.median(swap_polls) if swap_polls else 0.0,
        messages=tuple(fleet.messages.most_common(3)),
        simulated=n - 1 if simulated else 0,
        local_swap_s=local,
        real_converge_s=real_converge,
        sim_fetch_s=statistics.median(fetch_s) if fetch_s else None,
    )


@contextmanager
def fleet_nolock() -> Iterator[None]:
    yield


# --- per-request costs -------------------------------------------------------------------


@dataclass(frozen=True)
class Costs:
    ls_remote_wall: float
    ls_remote_server_cpu: float
    ls_remote_client_cpu: float
    fetch_server_cpu: float
    fetch_requests: float
    not_modified_wall: float
    not_modified_cpu: float
    swap_wall: float  # one host's poll that swaps to a version it holds (git mode)
    swap_cpu: float  # its CPU, its git children's included
    swap_server_cpu: float  # the daemon's CPU for that poll's requests
    aliases_wall: float = 0.0  # a pointer-mode host's git poll finding no change
    aliases_cpu: float = 0.0  # its CPU, its git children's included
    aliases_server_cpu: float = 0.0  # the daemon's CPU for its one fetch
    aliases_created: int = 0  # of those polls, how many made the alias cache anew
    aliases_polls: int = 0


def pointer_poll_costs(
    template: Path, git: GitServer, polls: int
) -> tuple[float, float, float, int]:
    """A pointer-mode host's git poll that finds no change (what it does every
    --git-interval, and on a pointer that moved without git): the median wall, and the mean
    host CPU (its git children included) and daemon CPU of one (CPU clocks tick in 10 ms:
    a mean over the polls), and how many of the polls created the alias cache anew."""
    from mvctl import serving
    from mvctl.serving.aliases import FetchedAliases

    req = serving.PullRequest.following(git.url("registry.git"), MODEL, ("production",), template)
    cache = template / ".mvctl" / "aliases.git"
    serving.pull_channels(req, source=FetchedAliases())  # the cache exists from here on
    walls, created = [], 0
    c0, g0 = own_cpu(), git.cpu()
    for _ in range(polls):
        marker = cache / "bench-marker"
        marker.touch()
        start = time.perf_counter()
        got = serving.pull_channels(req, source=FetchedAliases())
        walls.append(time.perf_counter() - start)
        created += not marker.exists()
        assert not got.errors, got.errors
    cpu, server = (own_cpu() - c0) / polls, (git.cpu() - g0) / polls
    return statistics.median(walls), cpu, server, created


def swap_costs(
    registry: Registry, template: Path, git: GitServer, swaps: int
) -> tuple[float, float, float]:
    """Median wall and CPU of a host's poll that swaps to a version it holds, and the
    daemon's CPU for it: what every host of a fleet does at once after a rollback."""
    from mvctl import serving

    req = serving.PullRequest.following(git.url("registry.git"), MODEL, ("production",), template)
    walls, cpus, server = [], [], []
    for i in range(swaps):
        target = V1 if i % 2 else V2
        registry.promote(target)
        c0, g0, start = own_cpu(), git.cpu(), time.perf_counter()
        got = serving.pull_channels(req)
        walls.append(time.perf_counter() - start)
        cpus.append(own_cpu() - c0)
        server.append(git.cpu() - g0)
        assert served_version(got) == target, got
    return statistics.median(walls), statistics.median(cpus), statistics.median(server)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """CPU of this process (every poller thread) and of the git children it has waited for."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + children_cpu()


def measure_costs(
    runs: int,
    work: Path,
    template: Path,
    registry: Registry,
    git: GitServer,
    store: HttpStore,
    env: dict[str, str],
) -> Costs:
    """Sequential requests, one at a time: what each costs the server in CPU seconds."""
    import http.client

    from mvctl import serving
    from mvctl.serving.download import read_alias

    url = git.url("registry.git")
    ref = f"refs/tags/{MODEL}@production"
    walls = []
    g0, c0, k0 = git.requests(), git.cpu(), children_cpu()
    for _ in range(runs):
        start = time.perf_counter()
        run(["git", "ls-remote", "--", url, ref, f"{ref}^{{}}"], work, env)
        walls.append(time.perf_counter() - start)
    served_ls = git.requests() - g0
    ls_server = (git.cpu() - c0) / served_ls
    ls_client = (children_cpu() - k0) / runs

    req = serving.PullRequest.following(url, MODEL, ("production",), template)
    fetches = max(runs // 2, 3)
    g0, c0 = git.requests(), git.cpu()
    for _ in range(fetches):
        read_alias(req, template.resolve(), "production")  # what a cached swap fetches
    fetch_requests = (git.requests() - g0) / fetches
    fetch_server = (git.cpu() - c0) / max(git.requests() - g0, 1)

    probe = "bench/probe.json"
    (work / "storage" / "bench").mkdir(exist_ok=True)
    (work / "storage" / probe).write_text(json.dumps({"version": V2, "commit": "0" * 40}))
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=10)
    conn.request("GET", f"/{probe}")
    reply = conn.getresponse()
    reply.read()
    etag = reply.getheader("ETag") or ""
    conn.close()
    gets = runs * 4
    times = []
    s0, c0 = store.stats().get("not_modified", 0), store.cpu()
    for _ in range(gets):
        start = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=10)  # a poll's own
        conn.request("GET", f"/{probe}", headers={"If-None-Match": etag})
        reply = conn.getresponse()
        reply.read()
        conn.close()
        times.append(time.perf_counter() - start)
        assert reply.status == 304, reply.status
    cpu = store.cpu() - c0
    # The /_stats reads bracketing the loop are two requests of the store's CPU too.
    assert store.stats().get("not_modified", 0) - s0 == gets
    swap_wall, swap_cpu, swap_server = swap_costs(registry, template, git, max(runs // 4, 3))
    polls = max(runs, 5)
    a_wall, a_cpu, a_server, a_created = pointer_poll_costs(template, git, polls)
    return Costs(
        aliases_wall=a_wall,
        aliases_cpu=a_cpu,
        aliases_server_cpu=a_server,
        aliases_created=a_created,
        aliases_polls=polls,
        swap_wall=swap_wall,
        swap_cpu=swap_cpu,
        swap_server_cpu=swap_server,
        ls_remote_wall=statistics.median(walls),
        ls_remote_server_cpu=ls_server,
        ls_remote_client_cpu=ls_client,
        fetch_server_cpu=fetch_server,
        fetch_requests=fetch_requests,
        not_modified_wall=statistics.median(times),
        not_modified_cpu=cpu / gets,
    )


# --- the report --------------------------------------------------------------------------


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def row(r: Run, args: argparse.Namespace) -> str:
    budget_s = args.interval + 2
    per_change = (r.window_git - r.window_expected) / r.hosts
    if r.converge:
        conv = (
            f"{statistics.median(r.converge):.2f} / {p95(r.converge):.2f} / {max(r.converge):.2f}"
        )
    else:
        conv = "-"
    late = f"; {r.unconverged} never switched" if r.unconverged else ""
    ok_time = not r.unconverged and bool(r.converge) and max(r.converge) <= budget_s
    # One request for the change, plus the periodic git check's share of the window: a
    # request per poll is over, however few the change itself adds.
    ok_git = r.window_git / r.hosts <= 1 + r.window_s / args.git_interval
    verdict = "ok" if ok_time and ok_git else "OVER"
    why = [] if ok_time else [f"time{late}"]
    why += [] if ok_git else ["git requests"]
    real = "-"
    if r.simulated:
        real = " / ".join(
            "-" if x is None else f"{x:.2f}"
            for x in (r.real_converge_s, r.local_swap_s, r.sim_fetch_s)
        )
    return (
        f"| {r.mode} | {r.hosts} | {r.load:.1f} | {conv} | {real} | {r.steady_git_rps:.1f}"
        f" ({r.steady_git_cores:.2f} cores) | {r.window_git / r.hosts:.2f}"
        f" | {per_change:.2f} | {r.steady_store_rps:.1f} ({r.steady_store_cores:.2f} cores)"
        f" | {r.window_store / r.hosts:.2f} | {r.errors} / {r.dropped} / {r.overflows}"
        f" | {f'{r.poll_s:.3f}' if r.poll_s else '-'} / {r.swap_poll_s:.3f}"
        f" | {r.poll_cpu * 1000:.0f} ({r.steady_fleet_cores:.2f} cores)"
        f" | {verdict}{' (' + ', '.join(why) + ')' if why else ''} |"
    )


def extrapolate(runs: list[Run], costs: Costs, args: argparse.Namespace, hosts: int) -> list[str]:
    """Server load at ``hosts`` hosts: the requests per poll and per change measured (at the
    largest fleet that ran without host errors), times ``hosts`` polls per interval, times
    the per-request CPU measured alone; git's and the store's linear costs only."""
    lines = [
        "| mode | measured at | poll interval (s) | git requests/s, steady | git cores, steady |"
        f" git requests per change | git cores while {hosts:,} hosts swap in one interval"
        " | store requests/s | store cores |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode in dict.fromkeys(r.mode for r in runs):
        mine = [r for r in runs if r.mode == mode]
        r = max((x for x in mine if not x.errors), key=lambda x: x.hosts, default=mine[-1])
        per_change = max((r.window_git - r.window_expected) / r.hosts, 0.0)
        for interval in dict.fromkeys((args.interval, 30.0)):
            if not mode.startswith("pointer"):  # a request per poll
                git_rps = hosts * r.git_per_poll / interval
            else:  # the periodic git check: every --git-interval, whatever the interval (a
                # window shorter than --git-interval may see none of them: the larger counts)
                git_rps = max(hosts * r.git_per_poll / args.interval, hosts / args.git_interval)
            store_rps = hosts * r.store_per_poll / interval
            # A git-mode poll is an ls-remote (its swap adds the alias tag's fetch); a
            # pointer-mode git request is the fetch of the aliases, measured alone.
            pointer = mode.startswith("pointer")
            per_request = costs.aliases_server_cpu if pointer else costs.ls_remote_server_cpu
            per_swap = costs.aliases_server_cpu if pointer else costs.fetch_server_cpu
            git_cores = git_rps * per_request
            burst = git_cores + hosts * per_change * per_swap / interval
            lines.append(
                f"| {mode} | {r.hosts} hosts | {interval:g} | {git_rps:,.0f} | {git_cores:.1f}"
                f" | {hosts * per_change:,.0f} | {burst:.1f} | {store_rps:,.0f}"
                f" | {store_rps * costs.not_modified_cpu:.2f} |"
            )
    budget = args.interval + 2
    lines += [
        "",
        f"For the budget at {hosts:,} hosts, one pointer-mode git request (the aliases'"
        f" fetch, {costs.aliases_server_cpu * 1000:.1f} ms of this daemon's CPU) per host"
        f" within interval + 2 s ({budget:g} s) needs"
        f" {hosts * costs.aliases_server_cpu / budget:.0f} cores at the git server, or a git"
        " service spread over that many (a git host's replicas); with a 30 s interval and"
        f" the requests spread over it, {hosts * costs.aliases_server_cpu / 32:.0f}. The store"
        f" meanwhile answers {hosts / args.interval:,.0f} conditional GETs a second at"
        f" {costs.not_modified_cpu * 1000:.2f} ms each of this Python server (an object store"
        " or a CDN serves a 304 for far less).",
    ]
    return lines


SETUP = " ".join(
    f"""
    Every host holds {V1} and {V2} (the rollback is a swap without a download). In mode
    `git` each host is a thread of one Python process running mvctl's own poller
    (`serving.follow_channels`, a `git ls-remote` per poll) into its own host directory,
    their starts spread over one interval. In mode `pointer` one host is real and the others
    are simulated. The real one is mvctl's `serving.pointerwatch.watch_pointer` in a thread,
    into a host directory of its own. The simulated ones are asyncio tasks of one thread,
    their phases spread over one interval. Each sends the network requests a real host sends
    and nothing else: every interval (+/- 10%) a conditional GET of the pointer
    (If-None-Match, a new connection each, as urllib does), and on start, on a changed
    pointer and every --git-interval the real host's git request, packet for packet: the
    packets of one real `git fetch` of the aliases (its command line as mvctl runs it,
    traced with GIT_TRACE_PACKET against this daemon, from a host past its first poll), on
    one git:// connection: ls-refs,
    then a fetch of what it listed. The daemon runs the same upload-pack and pack-objects
    for it as for a real host. What is simulated: what a host does locally once git has
    answered (reading the tags, mvctl's checks, the swap); the simulated hosts' git
    requests skip the local git processes of a real host. That local cost is measured on the
    real host, beside the simulated ones and on the same loaded cores. It is its switching
    poll's duration less its git request's (the `GitDir.fetch_refs` call, timed in this
    process). A simulated host's convergence is the end of its git answer naming the new
    alias, plus that local cost; the real host's is its own. The git remote is a bare
    repository served by a real `git daemon` on loopback with git's defaults: a listen
    backlog of 5 and --max-connections 32. Past 32 it kills an older connection from the
    same address (every host here is 127.0.0.1: the hosts' 'connection reset', or a reply
    cut short), and it sleeps 1 s in its accept loop (the listen-queue overflows). Its
    `--access-hook` appends a line per request, so git requests are the server's own count.
    The publisher pushes to the bare repository by path, so every request counted is the
    fleet's. The DVC remote is a directory the registry pushes to and the hosts read over
    HTTP from `benchmarks/_httpstore.py` (its own process, ETag / If-None-Match, listen
    backlog 1024), which counts every request. Convergence runs from the end of the push of
    `mvctl rollback fraud --push` (a subprocess; the mtime of the alias ref it wrote in the
    bare repository) to the end of each host's poll that reported {V1}. Modes `git-inetd`
    and `pointer-inetd` are the same against `git daemon --inetd`, run per connection by
    `benchmarks/_gitinetd.py` behind a socket with a backlog of 1024 (as systemd socket
    activation or xinetd run it): git's cost without git daemon's listen queue and
    connection limit.
    """.split()
)


def herd(runs: list[Run], costs: Costs) -> list[str]:
    """What the largest fleet's swap costs this machine, and where it is spent."""
    if not runs:
        return []
    n = max(r.hosts for r in runs)
    cores = os.cpu_count() or 1
    hosts_cpu = n * costs.swap_cpu
    server_cpu = n * costs.swap_server_cpu
    pointer_server = n * costs.aliases_server_cpu
    return [
        f"After a rollback, {n} git-mode hosts swapping at once ask for {hosts_cpu:.1f} s of"
        f" CPU on the hosts' side and {server_cpu:.1f} s at the git daemon (the swap poll's"
        f" costs above, times {n}): {(hosts_cpu + server_cpu) / cores:.1f} s of this"
        f" machine's {cores} cores if nothing else ran. In mode `git` every host is real, so"
        " the hosts' share runs on the server's cores too, which a real fleet's would not."
        f" In mode `pointer` it does not: {n} git requests ask about {pointer_server:.1f} s"
        f" of the daemon's CPU ({pointer_server / cores:.1f} s on {cores} cores), the"
        " simulated hosts' reading of the answers a little of this process's, and the local"
        " swap is the real host's, measured once and added to each simulated host.",
        "",
    ]


def code_under_test() -> str:
    """Which mvctl the pollers ran: its checkout's branch and commit, and whether the
    package had uncommitted changes (pointer mode may run on a branch not merged yet)."""
    import mvctl

    tree = Path(mvctl.__file__).resolve().parent.parent

    def git(*argv: str) -> str:
        proc = subprocess.run(["git", *argv], cwd=tree, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else "?"

    dirty = git("status", "--porcelain", "--", "mvctl")
    where = f"{git('rev-parse', '--abbrev-ref', 'HEAD')} at {git('rev-parse', '--short', 'HEAD')}"
    return where + (" + uncommitted changes" if dirty not in ("", "?") else "")


def report(runs: list[Run], costs: Costs, args: argparse.Namespace, skipped: list[str]) -> str:
    command = (
        "python benchmarks/bench_fleet.py --hosts "
        + " ".join(map(str, args.hosts))
        + f" --interval {args.interval:g} --window {args.window:g}"
        + f" --git-interval {args.git_interval:g} --modes {' '.join(args.modes)}"
    )
    lines = [
        "## Fleet: convergence after a rollback, requests at the git server and the store",
        "",
        f"`{command}` on {machine()}, shared with other engineers' test runs (the 1-minute"
        " load average as each run started is in the table: their work, and what this"
        f" benchmark's previous, larger run left behind); mvctl from {code_under_test()}. {SETUP}",
        "",
        f"Steady state: {args.window:g} s before the rollback; change window: {args.window:g}"
        " s from the start of the rollback command. 'per change' is the change window's git"
        " requests less what its polls would have cost at the steady state's git requests"
        " per poll, per host. Budget: all hosts within interval + 2 s"
        f" ({args.interval + 2:g} s), and at most one git request per host per change, not"
        " per poll: in the change window, at most 1 + window / --git-interval per host (the"
        " change's, and the periodic git check's share).",
        "",
        "| mode | hosts | load | converge median / p95 / max (s)"
        " | the real host: converge / local swap; the simulated hosts' git request (s)"
        " | git req/s, steady"
        " (daemon CPU) | git req per host, change window | git req per host per change"
        " | store req/s, steady (store CPU) | store req per host, change window"
        " | host errors / dropped by the daemon / listen-queue overflows"
        " | git poll median, no change / the switching one (s)"
        " | host CPU per poll, ms (all pollers) | budget |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(r, args) for r in runs),
        "",
    ]
    lines += [f"Pointer mode skipped: {reason}" for reason in skipped]
    if skipped:
        lines.append("")
    lines += [
        "Per-request cost, one request at a time on the same servers (the basis of the"
        " extrapolation): `git ls-remote` of the alias over git:// takes"
        f" {costs.ls_remote_wall * 1000:.1f} ms, {costs.ls_remote_server_cpu * 1000:.1f} ms of"
        " the daemon's CPU (its fork, the access hook, `git upload-pack`) and"
        f" {costs.ls_remote_client_cpu * 1000:.1f} ms of the host's; the alias fetch of a"
        f" cached swap is {costs.fetch_requests:g} request of"
        f" {costs.fetch_server_cpu * 1000:.1f} ms server CPU; a 304 from the Python store"
        f" takes {costs.not_modified_wall * 1000:.2f} ms and"
        f" {costs.not_modified_cpu * 1000:.2f} ms of its CPU (a new connection each). One"
        " host's poll that swaps to a version it holds (ls-remote, the alias fetch, the swap)"
        f" takes {costs.swap_wall * 1000:.0f} ms alone, {costs.swap_cpu * 1000:.0f} ms of the"
        " host's CPU (its git children included) and"
        f" {costs.swap_server_cpu * 1000:.0f} ms of the daemon's. A pointer-mode host's git"
        " poll that finds no change (its one `git fetch --prune` of the aliases into the"
        f" alias cache it keeps; {costs.aliases_created} of {costs.aliases_polls} polls made"
        f" that cache anew) takes {costs.aliases_wall * 1000:.0f} ms,"
        f" {costs.aliases_cpu * 1000:.1f} ms of the host's CPU and"
        f" {costs.aliases_server_cpu * 1000:.1f} ms of the daemon's.",
        "",
        *herd(runs, costs),
        "On paper, 10,000 hosts: the git and store requests per poll and per change measured"
        " above (at the largest fleet without host errors), times 10,000 hosts polling once an"
        " interval, times the CPU per request measured alone."
        " Assumptions: polls spread evenly over the interval (as here); a host polls the same"
        " way at any interval (a git-mode host's rate is 1/interval; a pointer-mode host asks"
        f" git every --git-interval {args.git_interval:g} s whatever its interval); the swap's"
        " git requests arrive within one interval (a pointer-mode change's fetch is counted"
        " at the cost of a no-change one, though it carries one tag object more); per-request"
        " cost stays what it is for"
        " this two-version registry (a registry with thousands of tags sends more per"
        " ls-remote) and what one core of this machine gives; no fork limits, listen queues"
        " or network in the way (at 200 hosts these already matter: see the drops above).",
        "",
        *extrapolate(runs, costs, args, 10_000),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--git-interval", type=float, default=60.0)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["git", "git-inetd", "pointer", "pointer-inetd"],
        default=["git", "pointer", "pointer-inetd"],
    )
    parser.add_argument("--size-kb", type=int, default=256)
    parser.add_argument("--runs", type=int, default=20, help="sequential requests per cost")
    parser.add_argument("--quick", action="store_true", help="small, print only")
    args = parser.parse_args()
    if args.quick:
        args.hosts, args.window, args.runs = [5], 3.0, 6
    skipped: list[str] = []
    if any(m.startswith("pointer") for m in args.modes) and pointer_watch() is None:
        print("skipped: pointer files not available (no mvctl.serving.pointerwatch)")
        skipped.append("pointer files not available (no `mvctl.serving.pointerwatch` here).")
        args.modes = [m for m in args.modes if not m.startswith("pointer")]
    work = Path(tempfile.mkdtemp(prefix="mvctl-bench-fleet-"))
    try:
        env = isolated_env(work / "home")
        os.environ.update(env)  # the pollers run git from this process
        for name in [k for k in os.environ if k.startswith(("GIT_", "DVC_")) and k not in env]:
            del os.environ[name]
        registry, served, storage = build(work, env, args.size_kb)
        with ExitStack() as stack:
            git = stack.enter_context(git_daemon(work, served, env))
            store = stack.enter_context(http_store(storage, env))
            servers = {"git": git, "pointer": git}
            if {"git-inetd", "pointer-inetd"} & set(args.modes):
                inetd = stack.enter_context(git_daemon(work, served, env, inetd=True))
                servers["git-inetd"] = servers["pointer-inetd"] = inetd
            template = work / "template"
            runs = run_fleets(args, work, registry, servers, store, template, env)
            costs = measure_costs(args.runs, work, template, registry, git, store, env)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = report(runs, costs, args, skipped)
    if not args.quick:
        write_section("fleet", body)
    print(body)


def run_fleets(
    args: argparse.Namespace,
    work: Path,
    registry: Registry,
    servers: dict[str, GitServer],
    store: HttpStore,
    template: Path,
    env: dict[str, str],
) -> list[Run]:
    from mvctl import serving

    # One host downloads both versions over git:// and HTTP; the fleet's hosts are copies.
    req = serving.PullRequest.following(
        servers["git"].url("registry.git"), MODEL, ("production",), template, dvc_remote=store.url
    )
    for version in (V1, V2):
        registry.promote(version)
        got = serving.pull_channels(req)
        assert served_version(got) == version, got
    runs = []
    pointers_on = False
    # Pointer files on stay on: the git modes (a pointer costs them nothing) run first.
    for mode in sorted(args.modes, key=lambda m: m.startswith("pointer")):
        if mode.startswith("pointer") and not pointers_on:
            pointers_on = True
            config = registry.root / "mvctl.yaml"
            config.write_text(config.read_text().rstrip() + "\npointers: true\n")
            run(["git", "commit", "-q", "-am", "bench: pointer files on"], registry.root, env)
            run(["git", "push", "-q", "origin", "HEAD"], registry.root, env)
        for n in args.hosts:
            result = fleet_run(mode, n, args, work, template, registry, servers[mode], store)
            print(row(result, args), flush=True)
            for message, count in result.messages:
                print(f"  {count} x {message}", flush=True)
            runs.append(result)
    return runs


if __name__ == "__main__":
    main()
