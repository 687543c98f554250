"""``mvctl webhook serve``: the Alertmanager receiver (mvctl.web)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import MaxConnectionsOpt, ReadTimeoutOpt
from mvctl.cli.output import handled

webhook_app = typer.Typer(
    name="webhook", help="Alertmanager-compatible receiver that rolls back.", no_args_is_help=True
)


@webhook_app.command("serve")
@handled
def webhook_serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 9465,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="File holding the bearer token.")
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--local",
            help="Publish rollbacks to the git remote (the default when it exists), or keep "
            "them local.",
        ),
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to publish to.")] = "origin",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide and log; roll nothing.")
    ] = False,
    read_timeout: ReadTimeoutOpt = 10.0,
    max_connections: MaxConnectionsOpt = 64,
) -> None:
    """Receive Alertmanager webhooks and roll back the channels named.

    Alertmanager POSTs them to /alerts with the bearer token, which mvctl
    reads from --token-file, else MVCTL_WEBHOOK_TOKEN.
    """
    from mvctl._adapters.git import GitRepo
    from mvctl.web import auth, httpserver, receiver

    limits = httpserver.Limits(read_timeout=read_timeout, max_connections=max_connections)
    httpserver.check_port(port)
    token = auth.load_token(token_file, os.environ)
    root = GitRepo.open(Path.cwd()).root

    def log(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        typer.echo(f"{stamp} {text}", err=True)

    app = receiver.create_app(
        root,
        token,
        dry_run=dry_run,
        push=push,
        remote=remote,
        read_timeout=limits.read_timeout,
        log=log,
    )

    def ready(where: str) -> None:
        suffix = " (dry run)" if dry_run else ""
        log(f"mvctl webhook on http://{where}/alerts for {root}{suffix}")

    try:
        receiver.serve(app, host, port, limits, ready=ready, log=log)
    except KeyboardInterrupt:  # SIGINT/SIGTERM: a server asked to stop stops cleanly
        log("stopped")


def _server_url(url: str) -> str:
    """A ``--server`` URL: http(s), and no credentials in it (they would be shown and sent
    as given; the token comes from MVCTL_SERVE_TOKEN)."""
    from urllib.parse import urlsplit

    from mvctl.errors import UsageError
    from mvctl.formats.names import redacted_url

    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--server {redacted_url(url)!r} is not an http:// or https:// URL")
    if "@" in urlsplit(url).netloc:
        raise UsageError(
            "a --server URL carries no credentials",
            hint="give the servers' bearer token in MVCTL_SERVE_TOKEN instead",
        )
    return url


@handled
def ui(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (loopback unless you say otherwise).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8465,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Show everything; offer and accept no rollback.")
    ] = False,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="File holding the login token (else MVCTL_UI_TOKEN)."),
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--local",
            help="Publish rollbacks to the git remote (the default when it exists), or keep "
            "them local.",
        ),
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to publish to.")] = "origin",
    hosts: Annotated[
        list[Path] | None,
        typer.Option("--hosts", help="A serving host directory (mvctl pull --dest) to show."),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option(
            "--server",
            help="An mvctl serve URL whose /metrics to show (token from MVCTL_SERVE_TOKEN).",
        ),
    ] = None,
    read_timeout: ReadTimeoutOpt = 10.0,
    max_connections: MaxConnectionsOpt = 64,
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            help="The origin browsers reach the dashboard at, behind a proxy (e.g. "
            "https://mvctl.example.com): its Host and Origin are accepted, https makes the "
            "cookie Secure.",
        ),
    ] = None,
) -> None:
    """Run a web dashboard of the registry, with a forced rollback.

    Models, channels, versions, history, lineage, diff and hosts.
    A forced rollback asks for a reason and is recorded with your name.
    """
    from mvctl._adapters.git import GitRepo
    from mvctl.formats import config
    from mvctl.web import httpserver, origins
    from mvctl.web import ui as dashboard

    limits = httpserver.Limits(read_timeout=read_timeout, max_connections=max_connections)
    httpserver.check_port(port)
    servers = [_server_url(url) for url in server or []]
    public = origins.check_public_url(public_url) if public_url is not None else None
    token = dashboard.load_token(token_file, os.environ)
    root = GitRepo.open(Path.cwd()).root
    if not (root / config.CONFIG_FILE).is_file():
        config.load(root)  # the usual "not an mvctl registry" error, exit 3
    settings = dashboard.Settings(
        root=root,
        token=token,
        read_only=read_only,
        push=push,
        remote=remote,
        hosts=tuple(hosts or ()),
        servers=tuple(servers),
        serve_token=os.environ.get(dashboard.SERVE_TOKEN_ENV) or None,
        read_timeout=limits.read_timeout,
        host=host,
        port=port,
        public_url=public,
    )

    def log(text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        typer.echo(f"{stamp} {text}", err=True)

    if host not in origins.LOOPBACK:
        log(
            f"warning: --host {host} is reachable from other machines; only the token guards "
            "the dashboard there"
        )
        if host in origins.WILDCARD and public is None:
            log(
                "warning: with a wildcard --host only requests to localhost are answered; "
                "say where the dashboard is reached with --public-url"
            )

    def ready(where: str) -> None:
        suffix = " (read-only)" if read_only else ""
        log(f"mvctl ui on http://{where}/ for {root}{suffix}")

    try:
        httpserver.run(
            dashboard.create_app(settings, log), host, port, limits, ready=ready, log=log
        )
    except KeyboardInterrupt:
        log("stopped")
