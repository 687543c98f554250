"""The Alertmanager receiver as an ASGI app (Starlette, imported when served): bearer
auth, body limits and read deadline, and status codes that tell Alertmanager whether to retry.
The decisions themselves are mvctl.web.webhook's."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl.web import httpserver
from mvctl.web.auth import bearer_ok
from mvctl.web.webhook import Decision, handle

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

MAX_BODY = 1 << 20  # 1 MiB: Alertmanager's batches are far smaller
RETRY_AFTER = 10  # seconds, in a 503 (Alertmanager retries with its own backoff anyway)


def create_app(
    root: Path,
    token: str,
    *,
    dry_run: bool = False,
    push: bool | None = None,
    remote: str = "origin",
    max_body: int = MAX_BODY,
    read_timeout: float = httpserver.READ_TIMEOUT,
    log: Callable[[str], None] = lambda _: None,
) -> Any:
    """The ASGI app (Starlette). It answers 503 when a decision failed for a reason that may
    pass (git unreachable, a race lost), so Alertmanager retries rather than waiting for its
    repeat interval; a body not received within ``read_timeout`` seconds gets 408."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    one_at_a_time = threading.Lock()  # decisions read, then write, channel state

    def decide(payload: Any) -> list[Decision]:
        with one_at_a_time:
            return handle(root, payload, dry_run=dry_run, push=push, remote=remote)

    async def alerts(request: Request) -> Response:
        refused = _refused(request, token, max_body, log)
        if refused is not None:
            return refused
        body = await _body(request, max_body, read_timeout, log)
        if not isinstance(body, bytes):
            return body
        try:
            payload = json.loads(body)
            decisions = await run_in_threadpool(decide, payload)
        except (ValueError, RecursionError) as exc:  # BadPayload; nesting too deep to parse
            log(f"400: {exc}")
            return _json({"error": f"bad payload: {exc}"}, 400)
        return _answer(decisions, log)

    async def healthz(_: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/alerts", alerts, methods=["POST"]), Route("/healthz", healthz)]
    )


def _json(data: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(data, status_code=status, headers=headers)


def _refused(
    request: Request, token: str, max_body: int, log: Callable[[str], None]
) -> Response | None:
    """401 without the token, 413 for a body declared too large; None: go on."""
    if not bearer_ok(request.headers.get("authorization", ""), token):
        log(f"401 from {request.client.host if request.client else '?'}: bad or no token")
        return _json({"error": "unauthorized"}, 401, {"WWW-Authenticate": "Bearer"})
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_body):
        log(f"413: body of {declared} bytes refused")
        return _json({"error": "payload too large"}, 413)
    return None


async def _body(
    request: Request, max_body: int, read_timeout: float, log: Callable[[str], None]
) -> bytes | Response:
    """The whole body, read under one deadline (a byte every few seconds does not reset it),
    or the answer that refuses it."""
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response

    async def read() -> bytes | None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return None
        return body

    try:
        body = await asyncio.wait_for(read(), read_timeout)
    except TimeoutError:
        log(f"408: body not received within {read_timeout:g} s")
        return _json({"error": "request body not received in time"}, 408, {"Connection": "close"})
    except ClientDisconnect:
        log("client went away before sending its body")
        return Response(status_code=400)
    if body is None:
        log("413: body over the limit refused")
        return _json({"error": "payload too large"}, 413)
    return body


def _answer(decisions: list[Decision], log: Callable[[str], None]) -> Response:
    for d in decisions:
        log(f"{d.action}: {d.model}@{d.channel} incident {d.incident}: {d.detail}")
    if not decisions:
        log("200: no firing alert names mvctl_model; nothing to do")
    answer = {"decisions": [d.to_dict() for d in decisions]}
    if any(d.retry for d in decisions):
        log("503: a transient failure; Alertmanager will retry the notification")
        return _json(answer, 503, {"Retry-After": str(RETRY_AFTER)})
    return _json(answer, 200)


def serve(
    app: Any,
    host: str,
    port: int,
    limits: httpserver.Limits | None = None,
    *,
    ready: Callable[[str], None] = lambda _: None,
    log: Callable[[str], None] = lambda _: None,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, with read timeouts and a connection cap so that
    stalled or flooding peers cannot keep Alertmanager out; ``ready`` gets "host:port"."""
    httpserver.run(app, host, port, limits or httpserver.Limits(), ready=ready, log=log)
