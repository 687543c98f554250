"""``mvctl serve DIR``: a model server on a host directory (mvctl.web.inference over a
mvctl.serving.Router), following what DIR serves, and with ``--follow`` pulling it too."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mvctl.cli.options import MaxConnectionsOpt, ReadTimeoutOpt
from mvctl.cli.output import handled
from mvctl.formats.names import redacted_url

if TYPE_CHECKING:
    from mvctl.errors import MvctlError
    from mvctl.serving.request import ChannelsResult, PullRequest
    from mvctl.serving.router import Router

WATCH_INTERVAL = 0.5  # seconds between looks at DIR/state.json (a stat when nothing changed)


def _log(text: str) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    typer.echo(f"{stamp} {text}", err=True)
    sys.stderr.flush()


def _describe(served: dict[str, str]) -> str:
    return ", ".join(f"{channel} {version}" for channel, version in served.items()) or "nothing"


@handled
def serve(
    dest: Annotated[Path, typer.Argument(help="Host directory that mvctl pull writes.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8080,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="File holding the bearer token (else MVCTL_SERVE_TOKEN)."
        ),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without a token (loopback --host only).")
    ] = False,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load .pkl/.pickle/.joblib weights: a pickle runs code, so only if you trust "
            "everyone who can push to the registry.",
        ),
    ] = False,
    loader: Annotated[
        str | None,
        typer.Option("--loader", help="module:function that loads the weights path."),
    ] = None,
    decision_log: Annotated[
        Path | None,
        typer.Option(
            "--decision-log", help="JSON-lines decision log [default: DIR/decisions.jsonl]."
        ),
    ] = None,
    log_outputs: Annotated[
        bool,
        typer.Option(
            "--log-outputs/--hash-outputs",
            help="Write each answer to the decision log, or only its sha256.",
        ),
    ] = True,
    shadow_queue: Annotated[
        int,
        typer.Option("--shadow-queue", help="Shadow requests waiting at most; beyond, dropped."),
    ] = 1000,
    shadow_queue_bytes: Annotated[
        int,
        typer.Option(
            "--shadow-queue-bytes",
            help="Bytes of inputs the waiting shadow requests may hold; beyond, dropped.",
        ),
    ] = 64 << 20,
    max_model_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-model-bytes",
            help="Refuse a model file that is, or unpacks to, more bytes [default: 100x the"
            " file's size + 64 MiB, at most 2 GiB].",
        ),
    ] = None,
    follow: Annotated[
        str | None,
        typer.Option("--follow", help="Also pull DIR from this registry URL (needs --model)."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model to pull with --follow.")
    ] = None,
    channel: Annotated[
        list[str] | None,
        typer.Option("--channel", "-c", help="Channel to pull with --follow (repeatable)."),
    ] = None,
    dvc_remote: Annotated[
        str | None,
        typer.Option("--dvc-remote", help="DVC remote (name or URL) for --follow's downloads."),
    ] = None,
    keep: Annotated[int, typer.Option("--keep", help="Versions kept, with --follow.")] = 3,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between registry polls with --follow.")
    ] = 30.0,
    read_timeout: ReadTimeoutOpt = 10.0,
    max_connections: MaxConnectionsOpt = 64,
) -> None:
    """Serve DIR's model over HTTP, hot-swapping it as DIR changes.

    Speaks the Open Inference Protocol v2 and /predict.
    """
    from mvctl import serving
    from mvctl.errors import UsageError
    from mvctl.web import httpserver, inference

    _route_logging()
    limits = httpserver.Limits(read_timeout=read_timeout, max_connections=max_connections)
    httpserver.check_port(port)
    serving.check_interval(interval)
    if not 1 <= shadow_queue <= 1_000_000:
        raise UsageError(f"--shadow-queue must be between 1 and 1000000, not {shadow_queue}")
    if shadow_queue_bytes < 1:
        raise UsageError(f"--shadow-queue-bytes must be at least 1, not {shadow_queue_bytes}")
    if max_model_bytes is not None and max_model_bytes < 1:
        raise UsageError(f"--max-model-bytes must be at least 1, not {max_model_bytes}")
    if no_auth and token_file is not None:
        raise UsageError("--no-auth and --token-file contradict each other")
    token = None if no_auth else inference.load_token(token_file, os.environ)
    if no_auth:
        inference.check_no_auth(host)
    dest = dest.resolve()
    request = _pull_request(follow, model, channel or [], dest, dvc_remote, keep)
    if request is not None and not serving.served_channels(dest):
        _first_pull(request)
    name = _served_model(dest, model)
    router = _router(
        name,
        dest,
        decision_log,
        {
            "shadow_queue": shadow_queue,
            "shadow_queue_bytes": shadow_queue_bytes,
            "max_model_bytes": max_model_bytes,
            "log_outputs": log_outputs,
        },
        trust_pickle,
        loader,
    )
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=router.follow,
            args=(dest,),
            kwargs={
                "stop": stop,
                "interval": WATCH_INTERVAL,
                "trust_pickle": trust_pickle,
                "loader": loader,
                "on_swap": lambda served: _log(f"swapped: now serving {_describe(served)}"),
                "on_error": lambda exc: _log(f"error: {exc} (still serving what it had)"),
            },
            name="mvctl-serve-follow",
            daemon=True,
        )
    ]
    if request is not None:
        threads.append(_puller(request, interval, stop, router))
    app = inference.create_app(
        router, model=name, token=token, read_timeout=limits.read_timeout, log=_log
    )

    def ready(where: str) -> None:
        auth = "without authentication (loopback)" if token is None else "bearer token required"
        _log(
            f"mvctl serve {name} on http://{where}/v2/models/{name}/infer "
            f"({auth}): serving {_describe(router.served())}"
        )

    try:
        for thread in threads:
            thread.start()
        httpserver.run(app, host, port, limits, ready=ready, log=_log)
    except KeyboardInterrupt:  # SIGINT/SIGTERM: uvicorn drained the requests in flight
        _log("stopping")
    finally:
        stop.set()
        for thread in threads:
            if thread.is_alive():
                thread.join(timeout=10)
        router.close()
    _log("stopped")


def _route_logging() -> None:
    """mvctl.serving's log lines to stderr with the server's own; the router's warning of a
    model not loaded is left out: its follow reports each such error once (on_error)."""
    import logging

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.name != "mvctl.serving.router":
                _log(record.getMessage())

    logger = logging.getLogger("mvctl.serving")
    logger.addHandler(Forward())
    logger.propagate = False


def _pull_request(
    repo: str | None,
    model: str | None,
    channels: list[str],
    dest: Path,
    dvc_remote: str | None,
    keep: int,
) -> PullRequest | None:
    from mvctl import serving
    from mvctl.errors import UsageError

    if repo is None:
        if model is not None or channels or dvc_remote is not None:
            raise UsageError("--model, --channel and --dvc-remote go with --follow REPO_URL")
        return None
    if model is None:
        raise UsageError("--follow needs --model", hint="e.g. --follow URL --model fraud")
    return serving.PullRequest.following(
        repo, model, tuple(channels or ("production",)), dest, keep=keep, dvc_remote=dvc_remote
    )


def _first_pull(request: PullRequest) -> None:
    """Fill an empty DIR before serving it: the primary channel must arrive."""
    from mvctl import serving

    followed = ", ".join(f"{request.model}@{c}" for c in request.followed)
    _log(f"{request.dest} serves nothing yet: pulling {followed}")
    result = serving.pull_channels(request)
    for channel, error in result.errors:
        if channel and channel != request.channel:
            _log(f"error: {request.model}@{channel}: {error.message}")
        else:
            raise error


def _served_model(dest: Path, model: str | None) -> str:
    from mvctl import serving
    from mvctl.errors import OperationalError, UsageError

    served = serving.status(dest)
    if served is None:
        raise OperationalError(
            f"{dest} serves nothing yet",
            hint="run `mvctl pull REPO_URL MODEL --dest DIR` first, or pass --follow and --model",
        )
    if model is not None and served.model != model:
        raise UsageError(f"{dest} serves {served.model}, not --model {model}")
    return served.model


def _router(
    model: str,
    dest: Path,
    decision_log: Path | None,
    options: dict[str, Any],
    trust_pickle: bool,
    loader: str | None,
) -> Router:
    """A router serving what DIR serves now; refuses to start (with the loader's one-line
    reason) when the primary channel's weights cannot be loaded."""
    from mvctl import serving
    from mvctl.errors import OperationalError
    from mvctl.serving import Router

    log_path = decision_log or dest / "decisions.jsonl"
    try:
        router = Router(model, decision_log=log_path, **options)
    except OSError as exc:
        raise OperationalError(
            f"cannot open --decision-log {log_path}: {exc.strerror or exc}"
        ) from exc
    router.refresh(dest, trust_pickle=trust_pickle, loader=loader)
    if not router.ready:
        router.close()
        primary = next(iter(serving.served_channels(dest)), "")
        raise router.errors.get(primary) or OperationalError(f"{dest} serves nothing yet")
    for channel, error in router.errors.items():
        _log(f"error: {channel} not loaded: {error.message}")
    return router


def _puller(
    request: PullRequest, interval: float, stop: threading.Event, router: Router
) -> threading.Thread:
    """The registry poller (mvctl pull --watch) in a thread: its swaps of DIR are what the
    router's follow picks up; its metrics join the router's /metrics (the router's
    mvctl_served_info says what is served)."""
    from mvctl import serving
    from mvctl.serving.hostmetrics import HostMetrics

    metrics = HostMetrics(None, registry=router.metrics_registry, served=False)

    def on_result(result: ChannelsResult) -> None:
        metrics.observe(result)
        for outcome in result.outcomes:
            if outcome.changed and outcome.error is None:
                now = outcome.version or "nothing"
                where = f"{request.model}@{outcome.channel}"
                _log(f"pulled {where}: {outcome.previous or 'nothing'} -> {now}")

    def on_error(exc: MvctlError, retry_in: float) -> None:
        metrics.error()
        _log(f"error: {exc.message} (still serving what it had; retry in {retry_in:.1f} s)")

    where = redacted_url(request.repo)  # a token in the URL is never printed
    followed = ", ".join(f"{request.model}@{c}" for c in request.followed)
    _log(f"following {followed} from {where} every {interval:g} s")
    return threading.Thread(
        target=serving.follow_channels,
        args=(request,),
        kwargs={"interval": interval, "stop": stop, "on_result": on_result, "on_error": on_error},
        name="mvctl-serve-pull",
        daemon=True,
    )
