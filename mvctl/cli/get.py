"""``mvctl get``: download and verify a version's weights without a checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import JsonOpt
from mvctl.cli.output import RichProgress, esc, handled, print_json, stderr, stdout


@handled
def get(
    ref: Annotated[str, typer.Argument(help="MODEL, MODEL@vX.Y.Z or MODEL@CHANNEL.")],
    repo: Annotated[
        str | None,
        typer.Option(
            "--repo",
            help="A registry's git URL or path (what `git clone` takes); default: the "
            "registry of the current directory.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write, or an existing directory to write the weights into "
            "(default: the current directory).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a file or directory already there.")
    ] = False,
    dvc_remote: Annotated[
        str | None,
        typer.Option(
            "--dvc-remote",
            help="DVC remote name from your config, or a URL (default: the "
            "registry's, as committed with the version).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Download a version's weights, verified, without a checkout.

    The weights are checked against the version's manifest before they are kept.
    """
    from mvctl.registry.get import get as run_get
    from mvctl.serving.get import Options, Wanted

    wanted = Wanted.parse(ref)
    options = Options(cwd=Path.cwd(), out=out, force=force, dvc_remote=dvc_remote)
    progress = RichProgress(stderr(), quiet=as_json)
    with progress.running():
        got = run_get(wanted, options, repo, progress)
    if as_json:
        print_json(got.to_dict())
        return
    held = f" ({got.channel})" if got.channel else ""
    stdout().print(
        f"[green]✓[/] {esc(f'{got.model} {got.version}{held}')} -> {esc(got.path)} "
        f"({got.size:,} bytes, sha256 {esc(got.sha256[:12])}, verified)"
    )
