"""Serving an ASGI app to peers that may be hostile: uvicorn with read timeouts and a cap.

uvicorn (0.54) times out only idle keep-alive connections. A peer that connects and sends
nothing, or sends its headers a byte every few seconds, holds a connection and a file
descriptor for ever, and ``limit_concurrency`` counts connections only once a request's
headers are in (then answering 503 to everyone while the stalled sockets stay open). So
here every connection must complete its request headers within the read timeout of
connecting, or of its previous response; and a connection beyond the cap evicts the one
that has waited longest for its first request's headers, so a flood of stalled sockets
cannot keep out a client that sends its request at once. The eviction waits until the
server has read what the connections accepted with the newcomer sent (two loop turns), so a
client's new connection amid a burst of silent ones is not taken for one of them. A
kept-alive connection idle between two requests (a client's pool, a TLS proxy's upstream)
has proved itself by completing a request: it is evicted only when no connection is waiting
for its first headers, the longest idle first; only when every connection is inside a
request is the newcomer closed. Reading the body is the app's to time out: it knows when it
reads one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mvctl.errors import OperationalError, UsageError

READ_TIMEOUT = 10.0  # seconds for a request's headers, and (in the app) for its body
MAX_CONNECTIONS = 64
KEEP_ALIVE = 5  # seconds an idle kept-alive connection stays open, at most
BACKLOG = 2048  # uvicorn's: connections the kernel queues before they are accepted


@dataclass(frozen=True)
class Limits:
    read_timeout: float = READ_TIMEOUT
    max_connections: int = MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if not 0 < self.read_timeout <= 3600:
            raise UsageError(
                f"--read-timeout must be over 0 and at most 3600 seconds, not {self.read_timeout}"
            )
        if not 1 <= self.max_connections <= 65536:
            raise UsageError(
                f"--max-connections must be between 1 and 65536, not {self.max_connections}"
            )


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, not {port}")
    return port


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (not yet listening: :func:`run` listens); failures are
    mvctl errors."""
    check_port(port)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise UsageError(f"cannot listen on --host {host!r}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OperationalError(
            f"cannot listen on {_where(host, port)}: {exc.strerror or exc}",
            hint="another process may hold the port; choose another --port or --host",
        ) from exc
    return sock


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def run(
    app: Any,
    host: str,
    port: int,
    limits: Limits,
    *,
    ready: Callable[[str], None] = lambda _: None,
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """Serve ``app`` on host:port until SIGINT/SIGTERM; ``ready`` gets "host:port" once the
    socket listens (a client that connects as soon as it is told is queued, not refused).

    The process's soft descriptor limit is raised to its hard limit, so that the connection
    cap, not the descriptors, is what a flood of sockets runs into. Proxy headers are never
    trusted: uvicorn's default believes X-Forwarded-For from 127.0.0.1, the default bind,
    so any local client could name its own address (a fresh lockout, a forged log line)."""
    import uvicorn

    sock = bind(host, port)
    sock.listen(BACKLOG)
    _raise_descriptor_limit()
    config = uvicorn.Config(
        app,
        http=guarded_protocol(limits),
        ws="none",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        backlog=BACKLOG,
        timeout_keep_alive=max(1, min(KEEP_ALIVE, int(limits.read_timeout))),
    )
    server = uvicorn.Server(config)

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(_exhaustion_noted(log))
        await server.serve(sockets=[sock])

    ready(_where(host, port))
    asyncio.run(main())


def _raise_descriptor_limit() -> None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _exhaustion_noted(
    log: Callable[[str], None],
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """A loop exception handler that turns asyncio's traceback per failed accept (thousands a
    second while descriptors run out) into one log line every few seconds."""
    quiet_until = 0.0

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        nonlocal quiet_until
        if context.get("message") != "socket.accept() out of system resource":
            loop.default_exception_handler(context)
            return
        if time.monotonic() >= quiet_until:
            quiet_until = time.monotonic() + 10
            log(f"not accepting connections for a second: {context.get('exception')}")

    return handler


def guarded_protocol(limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header-read timeout and a connection cap."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    # Per server, never per module: the connections owing their first request's headers and
    # the kept-alive ones owing the next request's, each oldest first (a dict keeps
    # insertion order), and every connection not yet dropped.
    fresh: dict[Guarded, None] = {}
    idle: dict[Guarded, None] = {}
    admitted: set[Guarded] = set()

    class Guarded(H11Protocol):
        timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            admitted.add(self)
            self.await_headers(fresh)
            if len(admitted) > limits.max_connections:
                # Who makes room is decided two loop turns on (one registers the newcomer's
                # reader, the next reads it): a client accepted in one burst with a flood
                # has had its request read by then, and is judged by it.
                self.loop.call_soon(self.loop.call_soon, self.make_room)

        def make_room(self) -> None:
            """Down to the cap: the silent connection that waited longest, else the
            kept-alive one idle longest, else this newcomer (even inside a request)."""
            while len(admitted) > limits.max_connections:
                victim = next((c for c in fresh if c is not self), None)
                if victim is None:
                    victim = next(iter(idle), None)
                if victim is None:
                    if self not in admitted:
                        return  # every other connection is inside a request
                    victim = self
                victim.drop()

        def await_headers(self, queue: dict[Guarded, None]) -> None:
            self.stop_waiting()
            queue[self] = None
            self.timer = self.loop.call_later(limits.read_timeout, self.drop)

        def stop_waiting(self) -> None:
            fresh.pop(self, None)
            idle.pop(self, None)
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None

        def drop(self) -> None:
            self.stop_waiting()
            admitted.discard(self)
            self.transport.close()

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a new request: its headers are complete
                self.stop_waiting()

        def on_response_complete(self) -> None:
            cycle = self.cycle
            super().on_response_complete()  # may already parse a pipelined request
            if self.cycle is cycle and not self.transport.is_closing():
                self.await_headers(idle)  # the next request (or the rest of this body) is owed

        def connection_lost(self, exc: Exception | None) -> None:
            self.stop_waiting()
            admitted.discard(self)
            super().connection_lost(exc)

    return Guarded
