"""The model server as an ASGI app (Starlette, imported when served): the Open Inference
Protocol v2 (KServe, MLServer, Triton) and a plain ``/predict`` of JSON records, over a
``mvctl.serving.Router`` that picks the channel and version answering each request.

Every endpoint but the two health probes needs the bearer token; bodies are capped and read
under a deadline; a model runs in a worker thread, never on the event loop."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl import __version__
from mvctl.errors import MvctlError, UsageError
from mvctl.web import auth, httpserver, receiver
from mvctl.web.tensors import OUTPUT, BadTensor, output_tensor, parse_infer

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from mvctl.serving.router import Answer, Router

    Handler = Callable[[Request], Awaitable[Response]]

TOKEN_ENV = "MVCTL_SERVE_TOKEN"  # noqa: S105 - the variable's name, not a secret
MAX_BODY = 8 << 20  # 8 MiB of JSON: tens of thousands of rows
MAX_KEY = 256
_KEY_HEADER = "X-Request-Key"
_VERSION_HEADER = "X-Model-Version"


def load_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    """The bearer token: from ``token_file``, else ``MVCTL_SERVE_TOKEN`` (the webhook's rules)."""
    return auth.load_token(token_file, environ, env=TOKEN_ENV, server="mvctl serve")


def check_no_auth(host: str) -> str:
    """``--no-auth`` only on a loopback address: anyone who can reach the port could query
    the model (and read what it answers) otherwise."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise UsageError(
            f"--no-auth is for a loopback --host only, not {host!r}",
            hint=f"set {TOKEN_ENV} or pass --token-file to serve on other addresses",
        )
    return host


def create_app(
    router: Router,
    *,
    model: str,
    token: str | None,
    max_body: int = MAX_BODY,
    read_timeout: float = httpserver.READ_TIMEOUT,
    log: Callable[[str], None] = lambda _: None,
) -> Any:
    """The ASGI app. ``token`` None serves without authentication (check_no_auth first)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def authed(handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            if token is not None and not auth.bearer_ok(
                request.headers.get("authorization", ""), token
            ):
                log(f"401 from {request.client.host if request.client else '?'}: bad or no token")
                return _error("unauthorized", 401, {"WWW-Authenticate": "Bearer"})
            name = request.path_params.get("model")
            if name is not None and name != model:
                return _error(f"unknown model {name[:MAX_KEY]!r}; this server serves {model}", 404)
            version = request.path_params.get("version")
            if version is not None and version not in router.served().values():
                return _error(f"{model} {version[:MAX_KEY]!r} is not served here", 404)
            return await handler(request)

        return checked

    async def payload(request: Request) -> tuple[bytes, Any] | Response:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            log(f"413: body of {declared[:20]} bytes refused")
            return _error("payload too large", 413)
        body = await receiver._body(request, max_body, read_timeout, log)
        if not isinstance(body, bytes):
            return body
        try:
            return body, json.loads(body, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            return _error(f"body is not JSON: {str(exc)[:200]}", 400)

    async def answered(
        request: Request, body: bytes, inputs: Any
    ) -> tuple[Answer, dict[str, str]] | Response:
        from mvctl.serving.errors import InvalidRequest, NotReady, PredictError

        try:
            key = router.request_key(request.headers.get(_KEY_HEADER.lower()), body)
        except MvctlError as exc:
            return _error(f"bad {_KEY_HEADER}: {exc.message}", 400)
        try:
            answer = await run_in_threadpool(router.predict, inputs, key=key)
        except NotReady as exc:
            return _error(exc.message, 503, {"Retry-After": "1"})
        except (InvalidRequest, PredictError) as exc:  # 400, as MLServer answers InferenceError
            return _error(exc.message, 400, {_KEY_HEADER: key})
        except MvctlError as exc:
            log(f"500: {exc.message}")
            return _error(exc.message, 500, {_KEY_HEADER: key})
        headers = {_KEY_HEADER: answer.key, _VERSION_HEADER: answer.version}
        return answer, headers

    @authed
    async def infer(request: Request) -> Response:
        read = await payload(request)
        if not isinstance(read, tuple):
            return read
        body, data = read
        try:
            parsed = parse_infer(data)
        except BadTensor as exc:
            return _error(str(exc), 400)
        got = await answered(request, body, parsed.inputs)
        if not isinstance(got, tuple):
            return got
        answer, headers = got
        return _answer(
            {
                "model_name": model,
                "model_version": answer.version,
                "id": parsed.id if parsed.id is not None else answer.key,
                "parameters": {"channel": answer.channel, "request_key": answer.key},
                "outputs": [output_tensor(answer.outputs)],
            },
            headers,
        )

    @authed
    async def predict(request: Request) -> Response:
        read = await payload(request)
        if not isinstance(read, tuple):
            return read
        body, data = read
        records = data.get("records") if isinstance(data, dict) else data
        if (
            not isinstance(records, list)
            or not records
            or not all(isinstance(r, dict) and r for r in records)
        ):
            return _error('expected a non-empty list of records: [{"feature": value}, ...]', 400)
        got = await answered(request, body, records)
        if not isinstance(got, tuple):
            return got
        answer, headers = got
        return _answer(
            {
                "model": model,
                "model_version": answer.version,
                "channel": answer.channel,
                "key": answer.key,
                "predictions": answer.outputs,
            },
            headers,
        )

    @authed
    async def outcomes(request: Request) -> Response:
        read = await payload(request)
        if not isinstance(read, tuple):
            return read
        _, data = read
        items = data if isinstance(data, list) else [data]
        if not items or not all(_outcome_ok(item) for item in items):
            return _error(
                'expected {"key": KEY, "outcome": VALUE} or a list of them; '
                f"a key is 1 to {MAX_KEY} printable characters",
                400,
            )
        try:
            for item in items:
                await run_in_threadpool(router.outcome, item["key"], item["outcome"])
        except MvctlError as exc:  # an outcome too large to log
            return _error(exc.message, 400)
        return Response(status_code=204)

    @authed
    async def metrics(_: Request) -> Response:
        body, content_type = await run_in_threadpool(router.metrics)
        return Response(body, headers={"Content-Type": content_type})

    @authed
    async def server_metadata(_: Request) -> Response:
        return JSONResponse({"name": "mvctl", "version": __version__, "extensions": []})

    @authed
    async def model_metadata(_: Request) -> Response:
        served = router.served()
        return JSONResponse(
            {
                "name": model,
                "versions": list(dict.fromkeys(served.values())),
                "platform": "mvctl",
                "inputs": [],
                "outputs": [{"name": OUTPUT, "datatype": "BYTES", "shape": [-1]}],
                "parameters": {"channels": served},
            }
        )

    @authed
    async def model_ready(_: Request) -> Response:
        return _ready(router.ready)

    async def live(_: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(_: Request) -> Response:
        return _ready(router.ready)

    async def not_found(_: Request, exc: Exception) -> Response:
        status, headers = getattr(exc, "status_code", 404), getattr(exc, "headers", None)
        return _error("not found" if status == 404 else "method not allowed", status, headers)

    models = "/v2/models/{model}"
    versions = models + "/versions/{version}"
    return Starlette(
        routes=[
            Route("/v2/health/live", live),
            Route("/v2/health/ready", ready),
            Route("/v2", server_metadata),
            Route(models, model_metadata),
            Route(versions, model_metadata),
            Route(models + "/ready", model_ready),
            Route(versions + "/ready", model_ready),
            Route(models + "/infer", infer, methods=["POST"]),
            Route(versions + "/infer", infer, methods=["POST"]),
            Route("/predict", predict, methods=["POST"]),
            Route("/outcomes", outcomes, methods=["POST"]),
            Route("/metrics", metrics),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _outcome_ok(item: Any) -> bool:
    if not isinstance(item, dict) or set(item) != {"key", "outcome"}:
        return False
    key = item["key"]
    return isinstance(key, str) and 0 < len(key) <= MAX_KEY and key.isprintable()


def _answer(data: dict[str, Any], headers: dict[str, str]) -> Response:
    """A model's answer as JSON; a NaN or an infinity (which JSON cannot carry) is a 500
    that says so rather than a traceback."""
    from starlette.responses import Response

    try:
        body = json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return _error("the model answered NaN or Infinity, which JSON cannot carry", 500, headers)
    return Response(body, media_type="application/json", headers=headers)


def _ready(ready: bool) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)
