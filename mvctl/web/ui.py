"""``mvctl ui``: the dashboard as an ASGI app (Starlette, imported when served).

Login by the dashboard's token and a name; a server-side session (random id in an
``HttpOnly; SameSite=Strict`` cookie) with its own CSRF token, checked in constant time on
every POST together with the ``Origin`` (or ``Referer``) header; failed logins locked out per
client for a while. Pages read the core's dataclasses (mvctl.web.pages renders them); a
forced rollback is ``mvctl.channels.rollback.rollback`` itself, one at a time, off the loop.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from mvctl._adapters.git import GitRepo
from mvctl.channels import moves
from mvctl.channels import rollback as rollbacks
from mvctl.channels import state as channels
from mvctl.errors import (
    ConflictError,
    MvctlError,
    NotFoundError,
    UsageError,
)
from mvctl.formats import config
from mvctl.formats.names import check_model, check_text
from mvctl.lineage import diff as diffs
from mvctl.lineage import tree
from mvctl.publishing import publish
from mvctl.publishing.sync import sync_git
from mvctl.registry import read
from mvctl.serving.layout import served_channels
from mvctl.web import httpserver, pages
from mvctl.web.auth import bearer_ok
from mvctl.web.html import Html

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

TOKEN_ENV = "MVCTL_UI_TOKEN"  # noqa: S105 - the variable's name, not a secret
SERVE_TOKEN_ENV = "MVCTL_SERVE_TOKEN"  # noqa: S105 - likewise
COOKIE = "mvctl_session"
MAX_BODY = 16 * 1024  # a form of a few short fields
SESSION_S = 8 * 3600
LOCKOUT_AFTER = 5  # failed logins from one address ...
LOCKOUT_S = 60.0  # ... lock it out this long
_NAME = re.compile(r"[^\W_][\w .,'@-]{0,63}")
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" on its own forms' POSTs, and
    # the origin check could no longer tell them from a cross-site one.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}
_SERVED = re.compile(r"^mvctl_served_info\{(?P<labels>[^}]*)\}\s+1(?:\.0)?\s*$", re.M)
_LABEL = re.compile(r'(\w+)="([^"\\]*)"')


@dataclass
class Session:
    name: str
    csrf: str
    expires: float


@dataclass(frozen=True)
class Settings:
    root: Path
    token: str
    read_only: bool = False
    push: bool | None = None
    remote: str = "origin"
    hosts: tuple[Path, ...] = ()
    servers: tuple[str, ...] = ()
    serve_token: str | None = None  # for the servers' /metrics; never shown
    max_body: int = MAX_BODY
    read_timeout: float = httpserver.READ_TIMEOUT
    session_s: float = SESSION_S


@dataclass
class _State:
    sessions: dict[str, Session] = field(default_factory=dict)
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # address -> n, until


def check_name(name: str) -> str:
    """A person's name as they type it at login: one line of letters, digits, spaces and
    a little punctuation, at most 64 characters."""
    name = name.strip()
    check_text(name, "your name", limit=64)
    if not _NAME.fullmatch(name):
        raise UsageError("a name is 1-64 letters, digits, spaces and . , ' @ -")
    return name


def create_app(settings: Settings, log: Callable[[str], None] = lambda _: None) -> Any:
    """The dashboard's ASGI app; every response carries the security headers."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse
    from starlette.routing import Route

    s = settings
    st = _State()
    one_at_a_time = threading.Lock()  # one state change at a time, as the CLI would be

    def html(body: Html, status: int = 200) -> Response:
        return HTMLResponse(str(body), status_code=status)

    def session_of(request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE, "")
        found = st.sessions.get(sid) if sid else None
        if found is not None and found.expires < time.monotonic():
            del st.sessions[sid]
            return None
        return found

    def viewer_of(request: Request) -> pages.Viewer | None:
        found = session_of(request)
        if found is not None:
            return pages.Viewer(found.name, found.csrf, s.read_only)
        if request.method == "GET" and bearer_ok(request.headers.get("authorization", ""), s.token):
            return pages.Viewer("token", "", True)  # a script reads; it changes nothing
        return None

    def guarded(
        handler: Callable[[Request, pages.Viewer], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            viewer = viewer_of(request)
            if viewer is None:
                if request.method == "GET":
                    return RedirectResponse("/login", status_code=303)
                return html(pages.login("Your session has ended: log in again."), 401)
            try:
                return await handler(request, viewer)
            except MvctlError as exc:
                status = 404 if isinstance(exc, NotFoundError) else 400
                name = request.path_params.get("model", "")
                return html(pages.failed(viewer, name, exc.message, exc.hint), status)

        return endpoint

    async def form(request: Request) -> dict[str, str] | Response:
        """The POST's fields, after the origin and size checks (CSRF is the caller's)."""
        if not _same_origin(request):
            log(f"403: cross-origin POST {request.url.path} from {_client(request)}")
            return PlainTextResponse("cross-origin request refused", 403)
        body = await _body(request, s.max_body, s.read_timeout)
        if isinstance(body, int):
            return PlainTextResponse("request refused", body)
        try:
            fields = parse_qs(body.decode("utf-8"), max_num_fields=20, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            return PlainTextResponse("bad form", 400)
        return {k: v[0] for k, v in fields.items()}

    async def csrf_form(request: Request, viewer: pages.Viewer) -> dict[str, str] | Response:
        fields = await form(request)
        if isinstance(fields, dict) and not (
            viewer.csrf
            and hmac.compare_digest(fields.get("csrf", "").encode(), viewer.csrf.encode())
        ):
            log(f"403: bad or no CSRF token on {request.url.path} from {_client(request)}")
            return PlainTextResponse("missing or wrong CSRF token: reload the page", 403)
        return fields

    async def login_page(request: Request) -> Response:
        return html(pages.login())

    async def login(request: Request) -> Response:
        client = _client(request)
        count, until = st.failures.get(client, (0, 0.0))
        if until > time.monotonic():
            return html(pages.login("Too many failed logins: wait a minute."), 429)
        fields = await form(request)
        if not isinstance(fields, dict):
            return fields
        token_ok = hmac.compare_digest(fields.get("token", "").encode(), s.token.encode())
        try:
            name = check_name(fields.get("name", ""))
        except UsageError as exc:
            return html(pages.login(exc.message), 400)
        if not token_ok:
            count += 1
            st.failures[client] = (
                count,
                time.monotonic() + LOCKOUT_S if count >= LOCKOUT_AFTER else 0.0,
            )
            log(f"401: failed login from {client}")
            return html(pages.login("Wrong token."), 401)
        st.failures.pop(client, None)
        now = time.monotonic()
        for sid in [k for k, v in st.sessions.items() if v.expires < now]:
            del st.sessions[sid]
        sid = secrets.token_urlsafe(32)
        st.sessions[sid] = Session(name, secrets.token_urlsafe(32), now + s.session_s)
        log(f"login: {name} from {client}")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
            max_age=int(s.session_s),
        )
        return response

    async def logout(request: Request, viewer: pages.Viewer) -> Response:
        fields = await csrf_form(request, viewer)
        if not isinstance(fields, dict):
            return fields
        st.sessions.pop(request.cookies.get(COOKIE, ""), None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def refresh(model: str | None) -> str | None:
        """Fetch the remote's tags (``model``'s, or all), so the pages show what the fleet
        follows; when that fails, why (the page then shows this clone's tags)."""
        try:
            git = GitRepo.open(s.root)
            where = publish.target(git, s.push, s.remote)
            if where is not None:
                with one_at_a_time:
                    sync_git(git, where, model)
        except MvctlError as exc:
            return f"Could not fetch from {s.remote} ({exc.message}): showing this clone's state."
        return None

    def models_now() -> tuple[list[read.ModelSummary], str | None]:
        stale = refresh(None)
        return read.list_models(s.root), stale

    async def home(request: Request, viewer: pages.Viewer) -> Response:
        summaries, stale = await run_in_threadpool(models_now)
        return html(pages.models(viewer, summaries, stale))

    def model_views(
        name: str,
    ) -> tuple[list[pages.ChannelView], list[read.VersionInfo], channels.ModelState, str | None]:
        stale = refresh(name)
        versions = read.list_versions(s.root, name)
        state = channels.load(GitRepo.open(s.root), name)
        cfg = config.load(s.root).model(name)
        metrics = {v.version: v.metrics for v in versions}
        known = list(config.load(s.root).channels)
        known += [c for c in state.tags.aliases if c not in known]
        views = []
        for channel in known:
            events = state.channel_events(channel)
            if not events and state.alias(channel) is None:
                continue
            held = state.holder(channel)
            views.append(
                pages.ChannelView(
                    channel=channel,
                    version=held,
                    weight=state.weight(channel),
                    metrics=metrics.get(held or "", {}),
                    monitors=cfg.monitors(channel),
                    last_automatic=next((e for e in reversed(events) if e.incident), None),
                    last_event=events[-1] if events else None,
                    targets=rollbacks.rollback_targets(state, channel),
                )
            )
        return views, versions, state, stale

    async def model(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        views, versions, state, stale = await run_in_threadpool(model_views, name)
        return html(pages.model(viewer, name, views, versions, state, stale))

    async def history(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        stale = await run_in_threadpool(refresh, name)
        events = await run_in_threadpool(channels.history, s.root, name, None)
        # The notice names an event of this history, never text taken from the link.
        done = next((e for e in events if e.name == request.query_params.get("done")), None)
        return html(pages.history(viewer, name, events, done, stale))

    async def lineage(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        return html(pages.lineage(viewer, await run_in_threadpool(tree.report, s.root, name, None)))

    async def diff(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        versions = [v.version for v in await run_in_threadpool(read.list_versions, s.root, name)]
        old = request.query_params.get("old") or (versions[-2] if len(versions) > 1 else None)
        new = request.query_params.get("new") or (versions[-1] if versions else None)
        result, error = None, None
        if old and new:
            try:
                result = await run_in_threadpool(diffs.diff, s.root, name, old, new)
            except MvctlError as exc:
                error = exc.message
        return html(pages.diff(viewer, name, versions, old, new, result, error))

    async def hosts(request: Request, viewer: pages.Viewer) -> Response:
        return html(pages.hosts(viewer, await run_in_threadpool(host_views)))

    def host_views() -> list[pages.HostView]:
        views = [pages.HostView(str(d), served_channels(d)) for d in s.hosts]
        views += [_server_view(url, s.serve_token) for url in s.servers]
        return views

    async def rollback(request: Request, viewer: pages.Viewer) -> Response:
        if s.read_only:
            return PlainTextResponse("this dashboard is read-only", 403)
        fields = await csrf_form(request, viewer)
        if not isinstance(fields, dict):
            return fields
        name = check_model(request.path_params["model"])
        channel, to = fields.get("channel", ""), fields.get("to", "")
        reason = fields.get("reason", "").strip()
        if not reason:
            return html(
                pages.failed(
                    viewer, name, "A rollback needs a reason: it is recorded in the history.", None
                ),
                400,
            )
        check_text(reason, "the reason")
        if fields.get("confirm") != "yes":
            current = await run_in_threadpool(fresh_holder, name, channel)
            if to not in current[1]:
                raise UsageError(
                    f"{to or 'nothing'} is not a version {name}@{channel} can roll back to now"
                )
            return html(pages.confirm(viewer, name, channel, current[0] or "-", to, reason))

        def act() -> moves.ChannelMove:
            with one_at_a_time:
                return rollbacks.rollback(
                    s.root,
                    name,
                    channel,
                    reason=reason,
                    to=to,
                    push=s.push,
                    remote=s.remote,
                    requested_by=viewer.name,
                    via="ui",
                )

        try:
            move = await run_in_threadpool(act)
        except ConflictError as exc:
            return html(pages.failed(viewer, name, exc.message, exc.hint), 409)
        log(
            f"rollback by {viewer.name}: {name}@{channel} {move.previous} -> {move.version} "
            f"({move.event})"
        )
        if not move.changed:
            note = move.note or f"{name}@{channel} already holds {move.version}: nothing done"
            return html(pages.failed(viewer, name, note, None, kind="ok"), 200)
        done = move.event
        return RedirectResponse(f"/models/{name}/history?{_query(done=done)}", status_code=303)

    def fresh_holder(name: str, channel: str) -> tuple[str | None, tuple[str, ...]]:
        """What ``channel`` holds on the freshly fetched remote, and where it can go back."""
        ctx = moves.open_channel(s.root, name, channel, s.push, s.remote, need_config=False)
        return ctx.state.holder(channel), rollbacks.rollback_targets(ctx.state, channel)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", guarded(logout), methods=["POST"]),
            Route("/", guarded(home)),
            Route("/hosts", guarded(hosts)),
            Route("/models/{model}", guarded(model)),
            Route("/models/{model}/history", guarded(history)),
            Route("/models/{model}/lineage", guarded(lineage)),
            Route("/models/{model}/diff", guarded(diff)),
            Route("/models/{model}/rollback", guarded(rollback), methods=["POST"]),
        ]
    )
    return _secured(app)


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _same_origin(request: Request) -> bool:
    """A POST's ``Origin`` (else ``Referer``) names this server, or is absent (then the
    CSRF token alone decides; browsers send Origin on every form POST)."""
    claimed = request.headers.get("origin") or request.headers.get("referer")
    if not claimed:
        return True
    parts = urlsplit(claimed)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc == host and bool(host)


async def _body(request: Request, limit: int, read_timeout: float) -> bytes | int:
    """The body, read under one deadline and capped, or the status that refuses it."""
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return 413

    async def read_all() -> bytes | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
        return body

    try:
        body = await asyncio.wait_for(read_all(), read_timeout)
    except TimeoutError:
        return 408
    except ClientDisconnect:
        return 400
    return 413 if body is None else body


def _server_view(url: str, token: str | None) -> pages.HostView:
    """What ``url``'s /metrics says it serves (``mvctl_served_info`` gauges set to 1)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url.rstrip("/") + "/metrics", headers=headers)  # noqa: S310 - http(s) only, checked by the CLI
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:  # noqa: S310
            text = answer.read(1 << 20).decode("utf-8", "replace")
    except OSError as exc:
        return pages.HostView(url, {}, error=f"cannot read /metrics: {getattr(exc, 'reason', exc)}")
    gauges = []
    for match in _SERVED.finditer(text):
        labels = dict(_LABEL.findall(match["labels"]))
        gauges.append((labels.get("channel", "?"), labels.get("version", "?")))
    return pages.HostView(url, {}, gauges=gauges)


def _secured(app: Any) -> Any:
    """``app`` with the security headers on every response."""
    extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def secured(scope: Mapping[str, Any], receive: Any, send: Any) -> None:
        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await app(scope, receive, with_headers if scope["type"] == "http" else send)

    return secured


def load_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    """The dashboard's token: ``--token-file`` or ``MVCTL_UI_TOKEN`` (the webhook's rules)."""
    from mvctl.web import auth

    return auth.load_token(token_file, environ, env=TOKEN_ENV, server="the dashboard")
