"""``mvctl ui``: the dashboard as an ASGI app (Starlette, imported when served).

Only requests naming the address it is served at are answered (mvctl.web.origins). Login by
the dashboard's token and a name; a server-side session (random id in an ``HttpOnly;
SameSite=Strict`` cookie) with its own CSRF token, checked in constant time on every POST
together with the ``Origin`` (or ``Referer``) header, which a POST must carry. Wrong tokens,
at the login form or in a bearer header, lock the client out for a while (mvctl.web.lockout).
Pages read what mvctl.web.views gathers from the core; a forced rollback is
``mvctl.channels.rollback.rollback`` itself, one at a time, off the loop, and only if the
channel still holds what the person confirmed.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from mvctl.channels import moves
from mvctl.channels import rollback as rollbacks
from mvctl.channels import state as channels
from mvctl.errors import ConflictError, MvctlError, NotFoundError, UsageError
from mvctl.formats.names import check_model, check_text
from mvctl.lineage import diff as diffs
from mvctl.lineage import tree
from mvctl.publishing import publish
from mvctl.registry import read
from mvctl.serving.layout import served_channels
from mvctl.web import httpserver, lockout, origins, pages, pages_compare, pages_hosts, pages_model
from mvctl.web import views as gather
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
MAX_SESSIONS = 256  # live sessions at most; a new login beyond drops the oldest
LOCKOUT_AFTER = lockout.AFTER
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
    host: str = "127.0.0.1"  # the address bound, and its port: the Host header must name it
    port: int = 8465
    public_url: str | None = None  # or this, where a proxy serves the dashboard
    fetch_timeout: float = gather.FETCH_TIMEOUT  # a page's wait for each talk with the remote

    @property
    def secure(self) -> bool:
        """Whether browsers reach the dashboard over https (the cookie is then Secure)."""
        return (self.public_url or "").startswith("https://")


@dataclass
class _State:
    sessions: dict[str, Session] = field(default_factory=dict)  # oldest first
    failures: lockout.Lockout = field(default_factory=lockout.Lockout)


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
    allowed = origins.allowed_hosts(s.host, s.port, s.public_url)
    one_at_a_time = threading.Lock()  # one state change at a time, as the CLI would be
    # One talk with the remote at a time (sync's private refs are shared): pages wait for
    # it a bounded time and never for the state-change lock.
    fetching = threading.Lock()

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
        header = request.headers.get("authorization")
        if request.method != "GET" or header is None:
            return None
        client, now = _client(request), time.monotonic()
        if st.failures.locked(client, now):
            return None  # locked out: the right token waits like a login does
        if bearer_ok(header, s.token):
            return pages.Viewer("token", "", True)  # a script reads; it changes nothing
        st.failures.fail(client, now)  # a guess, as surely as one at the login form
        log(f"401: wrong bearer token from {client}")
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
                status = 409 if isinstance(exc, ConflictError) else status
                name = request.path_params.get("model", "")
                return html(pages.failed(viewer, name, exc.message, exc.hint), status)

        return endpoint

    async def form(request: Request) -> dict[str, str] | Response:
        """The POST's fields, after the origin and size checks (CSRF is the caller's)."""
        if not origins.same_origin(request.headers, allowed):
            log(f"403: POST {request.url.path} without this origin from {_client(request)}")
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

    def locked_out() -> Response:
        return html(pages.login("Too many failed logins: wait a minute."), 429)

    async def login(request: Request) -> Response:
        client = _client(request)
        if st.failures.locked(client, time.monotonic()):
            return locked_out()
        fields = await form(request)
        if not isinstance(fields, dict):
            return fields
        # Judged again once the body is in, with no await until it is counted: guesses sent
        # together all passed the first check, and each must see the others' failures.
        now = time.monotonic()
        if st.failures.locked(client, now):
            return locked_out()
        token_ok = hmac.compare_digest(fields.get("token", "").encode(), s.token.encode())
        try:
            name = check_name(fields.get("name", ""))
        except UsageError as exc:
            return html(pages.login(exc.message), 400)
        if not token_ok:
            st.failures.fail(client, now)
            log(f"401: failed login from {client}")
            return html(pages.login("Wrong token."), 401)
        st.failures.clear(client)
        sid = new_session(name, now)
        log(f"login: {name} from {client}")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE,
            sid,
            httponly=True,
            samesite="strict",
            path="/",
            secure=s.secure or request.url.scheme == "https",
            max_age=int(s.session_s),
        )
        return response

    def new_session(name: str, now: float) -> str:
        for sid in [k for k, v in st.sessions.items() if v.expires < now]:
            del st.sessions[sid]
        while len(st.sessions) >= MAX_SESSIONS:
            del st.sessions[next(iter(st.sessions))]  # the oldest login goes first
        sid = secrets.token_urlsafe(32)
        st.sessions[sid] = Session(name, secrets.token_urlsafe(32), now + s.session_s)
        return sid

    async def logout(request: Request, viewer: pages.Viewer) -> Response:
        fields = await csrf_form(request, viewer)
        if not isinstance(fields, dict):
            return fields
        st.sessions.pop(request.cookies.get(COOKIE, ""), None)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    def refresh(model: str | None) -> gather.Fetched:
        return gather.refresh(
            s.root, s.push, s.remote, model, timeout=s.fetch_timeout, fetching=fetching
        )

    def models_now() -> tuple[list[read.ModelSummary], gather.Fetched]:
        fetched = refresh(None)
        return read.list_models(s.root), fetched

    async def home(request: Request, viewer: pages.Viewer) -> Response:
        summaries, fetched = await run_in_threadpool(models_now)
        unpublished: dict[str, dict[str, str | None]] = {}
        for summary in summaries:
            for channel in summary.channels:
                pending, fleet = fetched.fleet_has(summary.model, channel)
                if pending:
                    unpublished.setdefault(summary.model, {})[channel] = fleet
        page = pages.models(viewer, summaries, fetched.stale, unpublished, s.remote)
        return html(page)

    def model_now(name: str) -> tuple[gather.ModelPage, gather.Fetched]:
        fetched = refresh(name)
        return gather.model_page(s.root, name, fetched), fetched

    async def model(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        found, fetched = await run_in_threadpool(model_now, name)
        return html(
            pages_model.model(
                viewer,
                name,
                found.views,
                found.versions,
                found.state,
                fetched.stale,
                found.config_error,
                s.remote,
            )
        )

    async def history(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        fetched = await run_in_threadpool(refresh, name)
        events = await run_in_threadpool(channels.history, s.root, name, None)
        # The notice names an event of this history, never text taken from the link.
        done = next((e for e in events if e.name == request.query_params.get("done")), None)
        return html(
            pages.history(viewer, name, events, done, fetched.stale, fetched.local_only, s.remote)
        )

    async def lineage(request: Request, viewer: pages.Viewer) -> Response:
        name = check_model(request.path_params["model"])
        report = await run_in_threadpool(tree.report, s.root, name, None)
        return html(pages_compare.lineage(viewer, report))

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
        return html(pages_compare.diff(viewer, name, versions, old, new, result, error))

    async def hosts(request: Request, viewer: pages.Viewer) -> Response:
        return html(pages_hosts.hosts(viewer, await run_in_threadpool(host_views)))

    def host_views() -> list[pages_hosts.HostView]:
        views = [pages_hosts.HostView(str(d), served_channels(d)) for d in s.hosts]
        views += [gather.server_view(url, s.serve_token) for url in s.servers]
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
        seen = fields.get("current", "")
        if fields.get("confirm") != "yes" or not seen:
            # Asked, not yet confirmed (or confirmed without saying from what): the question
            # names the version the channel holds now, and its answer carries it.
            current = await run_in_threadpool(fresh_holder, name, channel)
            if to not in current[1]:
                raise UsageError(
                    f"{to or 'nothing'} is not a version {name}@{channel} can roll back to now"
                )
            return html(pages_model.confirm(viewer, name, channel, current[0] or "-", to, reason))

        def act() -> moves.ChannelMove:
            with one_at_a_time, fetching:
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
                    expect=seen,
                )

        move = await run_in_threadpool(act)
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
        with fetching:
            ctx = moves.open_channel(s.root, name, channel, s.push, s.remote, need_config=False)
        return ctx.state.holder(channel), rollbacks.rollback_targets(ctx.state, channel)

    async def publish_pending(request: Request, viewer: pages.Viewer) -> Response:
        """Publish the moves made here that the remote lacks (a rollback whose push was
        interrupted): the core's push, as 'mvctl push MODEL' does."""
        if s.read_only:
            return PlainTextResponse("this dashboard is read-only", 403)
        fields = await csrf_form(request, viewer)
        if not isinstance(fields, dict):
            return fields
        name = check_model(request.path_params["model"])
        if s.push is False:
            raise UsageError("this dashboard keeps moves local (--local): nothing to publish to")

        def act() -> publish.PushResult:
            with one_at_a_time, fetching:
                return publish.push(s.root, s.remote, name)

        result = await run_in_threadpool(act)
        log(f"publish by {viewer.name}: {name} to {s.remote}: {', '.join(result.pushed) or '-'}")
        return RedirectResponse(f"/models/{name}", status_code=303)

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
            Route("/models/{model}/publish", guarded(publish_pending), methods=["POST"]),
        ]
    )
    return _secured(origins.host_guarded(app, allowed))


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


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
