"""The model server as an ASGI app (Starlette, imported when served): the Open Inference
Protocol v2 (KServe, MLServer, Triton) and a plain ``/predict`` of JSON records, over a
``mvctl.serving.Router`` that picks the channel and version answering each request.

Every endpoint but the two health probes needs the bearer token; bodies are capped and read
under a deadline; decoding a body (JSON, tensors, records) and running a model happen in a
worker thread, never on the event loop, so big bodies cannot stall the health probes. A
request is checked whole before anything is run or written: a 400 has changed nothing."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mvctl import __version__
from mvctl.errors import MvctlError, UsageError
from mvctl.web import auth, httpserver, receiver
from mvctl.web.tensors import (
    MAX_ELEMENTS,
    OUTPUT,
    BadTensor,
    InferRequest,
    output_tensor,
    parse_infer,
)

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
# A JSON escape of a UTF-16 surrogate: the only way (in a body that is UTF-8) to a string
# UTF-8 cannot encode, which would fail the answer, the decision log or both.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_RECORDS = 'expected a non-empty list of records: [{"feature": value}, ...]'
_OUTCOMES = (
    'expected {"key": KEY, "outcome": VALUE} or a list of them; '
    f"a key is 1 to {MAX_KEY} printable ASCII characters"
)


class BadBody(ValueError):
    """A body that is not what its endpoint takes (answered 400, before anything is run)."""


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
    max_elements: int = MAX_ELEMENTS,
    read_timeout: float = httpserver.READ_TIMEOUT,
    log: Callable[[str], None] = lambda _: None,
) -> Any:
    """The ASGI app. ``token`` None serves without authentication (check_no_auth first);
    ``max_elements`` caps the tensor elements, or record values, of one request."""
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

    async def payload(
        request: Request, decode: Callable[[bytes], Any]
    ) -> tuple[bytes, Any] | Response:
        """The body and what ``decode`` (run in a worker thread) made of it, or the answer
        that refuses it."""
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body):
            log(f"413: body of {declared[:20]} bytes refused")
            return _error("payload too large", 413)
        body = await receiver._body(request, max_body, read_timeout, log)
        if not isinstance(body, bytes):
            return body
        try:
            return body, await run_in_threadpool(decode, body)
        except (BadBody, BadTensor) as exc:
            return _error(str(exc), 400)

    async def answered(
        request: Request, body: bytes, inputs: Any
    ) -> tuple[Answer, dict[str, str]] | Response:
        from mvctl.serving.errors import InvalidRequest, NotReady, PredictError

        try:
            key = router.request_key(request.headers.get(_KEY_HEADER.lower()), body)
        except MvctlError as exc:
            return _error(f"bad {_KEY_HEADER}: {exc.message}", 400)
        try:
            answer = await run_in_threadpool(router.predict, inputs, key=key, body_size=len(body))
        except NotReady as exc:
            return _error(exc.message, 503, {"Retry-After": "1"})
        except (InvalidRequest, PredictError) as exc:  # 400, as MLServer answers InferenceError
            return _error(exc.message, 400, {_KEY_HEADER: key})
        except MvctlError as exc:
            log(f"500: {exc.message}")
            return _error(exc.message, 500, {_KEY_HEADER: key})
        headers = {_KEY_HEADER: answer.key, _VERSION_HEADER: answer.version}
        return answer, headers

    def infer_request(body: bytes) -> InferRequest:
        return parse_infer(_decoded(body), max_elements=max_elements)

    def records_of(body: bytes) -> list[dict[str, Any]]:
        data = _decoded(body)
        records = data.get("records") if isinstance(data, dict) else data
        if (
            not isinstance(records, list)
            or not records
            or not all(isinstance(r, dict) and r for r in records)
        ):
            raise BadBody(_RECORDS)
        if sum(len(r) for r in records) > max_elements:
            raise BadBody(f"a request holds at most {max_elements} values in all its records")
        return records

    @authed
    async def infer(request: Request) -> Response:
        read = await payload(request, infer_request)
        if not isinstance(read, tuple):
            return read
        body, parsed = read
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
        read = await payload(request, records_of)
        if not isinstance(read, tuple):
            return read
        body, records = read
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

    def record_outcomes(items: list[tuple[str, Any]]) -> None:
        for key, outcome in items:
            router.outcome(key, outcome)

    @authed
    async def outcomes(request: Request) -> Response:
        # The whole batch is checked before one line is written, then written by one call:
        # a 400 means none was recorded, so the client's retry duplicates nothing.
        read = await payload(request, _outcomes_of)
        if not isinstance(read, tuple):
            return read
        _, items = read
        try:
            await run_in_threadpool(record_outcomes, items)
        except MvctlError as exc:  # not expected: _outcomes_of checks what the log refuses
            log(f"500: {exc.message}")
            return _error(exc.message, 500)
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


def _decoded(body: bytes) -> Any:
    """A body as JSON (UTF-8, RFC 8259), refusing one whose strings UTF-8 cannot encode: a
    lone surrogate (``"\\ud800"``) would otherwise reach the model, and then fail its answer
    or the decision log after the model ran."""
    try:
        text = body.decode("utf-8-sig")  # strict (encoded surrogates too); a BOM is dropped
    except UnicodeDecodeError as exc:
        raise BadBody(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise BadBody(f"body is not JSON: {str(exc)[:200]}") from exc
    if _SURROGATE_ESCAPE.search(text) and not _encodable(data):
        raise BadBody("body holds a string with a lone UTF-16 surrogate, which is not text")
    return data


def _encodable(data: Any) -> bool:
    """Every string in ``data`` (keys too) encodes as UTF-8."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            strings = [value]
        elif isinstance(value, dict):
            strings = list(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
            continue
        else:
            continue
        for text in strings:
            if not text.isascii():
                try:
                    text.encode()
                except UnicodeEncodeError:
                    return False
    return True


def _outcomes_of(body: bytes) -> list[tuple[str, Any]]:
    """An /outcomes batch, every item checked as the router and decision log check it."""
    from mvctl.serving.decisions import OUTPUT_CAP
    from mvctl.serving.errors import InvalidRequest
    from mvctl.serving.routing import check_key

    data = _decoded(body)
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(i, dict) and set(i) == {"key", "outcome"} for i in items):
        raise BadBody(_OUTCOMES)
    batch = [(item["key"], item["outcome"]) for item in items]
    for key, outcome in batch:
        try:
            check_key(key)
        except InvalidRequest as exc:
            raise BadBody(_OUTCOMES) from exc
        if len(json.dumps(outcome)) > OUTPUT_CAP:  # ASCII: characters are bytes
            raise BadBody(f"an outcome is at most {OUTPUT_CAP} bytes of JSON")
    return batch


def _answer(data: dict[str, Any], headers: dict[str, str]) -> Response:
    """A model's answer as JSON; a NaN or an infinity (which JSON cannot carry) is a 500
    that says so rather than a traceback."""
    from starlette.responses import Response

    try:
        text = json.dumps(data, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return _error("the model answered NaN or Infinity, which JSON cannot carry", 500, headers)
    try:
        body = text.encode()
    except UnicodeEncodeError:
        return _error(
            "the model answered a string that is not text (a lone surrogate)", 500, headers
        )
    return Response(body, media_type="application/json", headers=headers)


def _ready(ready: bool) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message}, status_code=status, headers=headers)
