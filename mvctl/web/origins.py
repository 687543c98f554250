"""Where the dashboard is served: the Host headers it answers and the origins it takes a
state change from.

A loopback dashboard answering any Host is reachable from any web page through DNS
rebinding (a name that resolves to 127.0.0.1): the page's requests then carry its own name
as Host and Origin, and would pass an Origin-equals-Host check. So a request must name the
address bound (127.0.0.1, localhost or [::1] with the port, for a loopback bind) or the
``--public-url`` the dashboard is served at behind a proxy; anything else is refused (421)
before any other work. A state change (a POST) must carry an Origin, or else a Referer,
naming one of those: browsers send Origin on every form POST, so a POST with neither is
not a browser's form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from mvctl.errors import UsageError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")  # noqa: S104 - names of the wildcard, compared only


def check_public_url(url: str) -> str:
    """``url`` as ``--public-url`` takes it: http(s)://host[:port], no credentials, no path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--public-url {url!r} is not an http:// or https:// URL")
    if "@" in parts.netloc:
        raise UsageError("--public-url names where the dashboard is served: no credentials")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(
            f"--public-url {url!r} has a path: the dashboard is served at the root of its origin"
        )
    try:
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError as exc:
        raise UsageError(f"--public-url {url!r}: {exc}") from exc
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _named(host: str, port: int) -> set[str]:
    shown = f"[{host}]" if ":" in host else host
    names = {f"{shown}:{port}"}
    if port == 80:
        names.add(shown)
    return names


def allowed_hosts(host: str, port: int, public_url: str | None) -> frozenset[str]:
    """The Host header values a dashboard bound to host:port (and served at ``public_url``)
    answers, lower case."""
    names: set[str] = set()
    if host in LOOPBACK or host in WILDCARD:
        for name in LOOPBACK:
            names |= _named(name, port)
    else:
        names |= _named(host.lower(), port)
    if public_url is not None:
        parts = urlsplit(public_url)
        default = 443 if parts.scheme == "https" else 80
        netloc = parts.netloc.lower()
        hostname = netloc.rsplit(":", 1)[0] if parts.port is not None else netloc
        names.add(netloc)
        if parts.port in (None, default):
            names |= {hostname, f"{hostname}:{default}"}
    return frozenset(names)


def same_origin(headers: Mapping[str, str], allowed: frozenset[str]) -> bool:
    """A POST's ``Origin`` (else ``Referer``) names this server; neither is a refusal."""
    claimed = headers.get("origin") or headers.get("referer")
    if not claimed:
        return False
    parts = urlsplit(claimed)
    return parts.scheme in ("http", "https") and parts.netloc.lower() in allowed


Asgi = Callable[[Mapping[str, Any], Any, Any], Awaitable[None]]


def host_guarded(app: Any, allowed: frozenset[str]) -> Asgi:
    """``app`` answering only requests whose Host is one of ``allowed`` (else 421)."""

    async def guarded(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            host = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"")
            if host.decode("latin-1").lower() not in allowed:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 421,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": b"misdirected request\n"})
                return
        await app(scope, receive, send)

    return guarded
