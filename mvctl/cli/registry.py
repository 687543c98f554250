"""Commands that create and read versions: init, register, list, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import DryRunOpt, JsonOpt
from mvctl.cli.output import RichProgress, esc, handled, print_json, say_published, stderr, stdout
from mvctl.cli.render import registry as render


@handled
def init(
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="DVC remote for artifacts: a directory or any DVC URL (s3://, ssh://, ...). "
            "Default: an embedded store at .mvctl/storage.",
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Make this git repository an mvctl registry.

    Initialises DVC, writes mvctl.yaml and sets the DVC remote for artifacts.
    """
    from mvctl.registry.initialise import init as run_init

    result = run_init(Path.cwd(), storage, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "root": str(result.root),
                "dvc_initialised": result.dvc_initialised,
                "config_written": result.config_written,
                "remote": {"name": result.remote[0], "url": result.remote[1]},
                "remote_configured": result.remote_configured,
                "commit": result.commit,
                "dry_run": result.dry_run,
            }
        )
        return
    out = stdout()
    if not result.changed:
        out.print(f"[green]✓[/] {esc(result.root)} is already an mvctl registry")
    remote = esc(f"DVC remote {result.remote[0]!r} -> {result.remote[1]}")
    for done, would, did in (
        (result.dvc_initialised, "would initialise DVC", "initialised DVC"),
        (result.config_written, "would write mvctl.yaml", "wrote mvctl.yaml"),
        (result.remote_configured, f"would set {remote}", f"set {remote}"),
    ):
        if done:
            out.print(f"[green]✓[/] {would if dry_run else did}")
    if result.commit:
        out.print(f"[green]✓[/] committed {result.commit[:12]}")
    name, url = (esc(part) for part in result.remote)
    out.print(f"artifacts go to DVC remote [bold]{name}[/] ({url})")


@handled
def register(
    model: Annotated[str, typer.Argument(help="Model name, e.g. fraud.")],
    weights: Annotated[
        str | None, typer.Option("--weights", "-w", help="Weights file or directory.")
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", help="Dataset path (repeatable; DVC-tracked or imported)."),
    ] = None,
    metrics_file: Annotated[
        str | None, typer.Option("--metrics", help="Metrics file (JSON or YAML).")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="KEY=NUMBER (repeatable).")
    ] = None,
    params_file: Annotated[
        str | None, typer.Option("--params", help="Params file (YAML or JSON).")
    ] = None,
    env_lock: Annotated[
        str | None,
        typer.Option("--env-lock", help="requirements/uv/poetry/conda lock to record."),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="Explicit version, e.g. v1.2.0.")
    ] = None,
    bump: Annotated[
        str, typer.Option("--bump", help="major, minor or patch (without --version).")
    ] = "minor",
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Register with uncommitted code changes.")
    ] = False,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--local",
            help="Publish the commit and tag to the git remote (the default when it exists), "
            "or keep them in this clone only.",
        ),
    ] = None,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to publish to.")] = "origin",
    description: Annotated[str, typer.Option("--description", help="Free text.")] = "",
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="KEY=VALUE label, e.g. season=holiday (repeatable)."),
    ] = None,
    data_window: Annotated[
        str | None,
        typer.Option(
            "--data-window",
            help="START..END: the days the training data covers (ISO dates), e.g. "
            "2025-11-20..2026-01-05. Default: from the model's columns.date, if set.",
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume", help="Finish a registration interrupted after its commit (tag, publish)."
        ),
    ] = False,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Record a model version: artifacts, manifest, commit and tag.

    The artifacts are DVC-tracked and pushed to the registry's DVC remote,
    then the manifest is written and committed, and the version tagged.
    """
    from mvctl.errors import UsageError
    from mvctl.registry.register import RegisterRequest
    from mvctl.registry.register import register as run_register

    if resume:
        _resume(model, push, remote, as_json)
        return

    if bump not in ("major", "minor", "patch"):
        raise UsageError(f"--bump must be major, minor or patch, not {bump!r}")
    request = RegisterRequest(
        model=model,
        cwd=Path.cwd(),
        weights=weights,
        data=tuple(data or ()),
        metrics_file=metrics_file,
        metrics=tuple(metric or ()),
        params_file=params_file,
        env_lock=env_lock,
        version=version,
        bump=bump,  # type: ignore[arg-type]  # checked just above
        allow_dirty=allow_dirty,
        push=push,
        git_remote=remote,
        description=description,
        labels=tuple(label or ()),
        data_window=data_window,
        dry_run=dry_run,
    )
    progress = RichProgress(stderr(), quiet=as_json)
    with progress.running():  # counting the upload's bytes costs DVC a second look
        result = run_register(request, progress if progress.drawn else None)
    if as_json:
        print_json(result.to_dict())
        return
    render.registered(result)


def _resume(model: str, push: bool | None, remote: str, as_json: bool) -> None:
    from mvctl.registry.resume import resume as run_resume

    done = run_resume(Path.cwd(), model, push=push, remote=remote)
    if as_json:
        print_json(done.to_dict())
        return
    stdout().print(
        f"[green]✓[/] finished the registration of [bold]{esc(done.model)} {esc(done.version)}"
        f"[/] at {esc(done.commit[:12])} (tag {esc(done.tag)})"
    )
    say_published(done.pushed, done.remote, done.published)


@handled
def list_(
    model: Annotated[str | None, typer.Argument(help="Show this model's versions.")] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="Only versions labelled KEY=VALUE (repeatable: all)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help="Only versions whose metric passes, e.g. 'auc>=0.9' (repeatable).",
        ),
    ] = None,
    channel: Annotated[
        str | None, typer.Option("--channel", "-c", help="Only versions this channel held.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the models, or one model's versions and their status.

    Each version with its labels and status: gold, bad, retired or deregistered.
    The filters narrow one model's versions, and all of them must match.
    """
    from mvctl.errors import UsageError
    from mvctl.registry.read import list_models

    if model is None:
        if label or metric or channel:
            raise UsageError("--label, --metric and --channel filter one model's versions",
                             hint="e.g. mvctl list fraud --label season=holiday")  # fmt: skip
        models = list_models(Path.cwd())
        if as_json:
            print_json({"models": [m.to_dict() for m in models]})
            return
        from rich.table import Table  # only for people: --json does without it

        table = Table("model", "latest", "versions", "channels", title="models")
        for m in models:
            channels = (
                ", ".join(render.held(f"{c}={v}", m.weights.get(c)) for c, v in m.channels.items())
                or "-"
            )
            table.add_row(esc(m.model), esc(m.latest or "-"), str(m.count), esc(channels))
        stdout().print(table if models else "no models registered yet")
        return
    from mvctl.channels.catalog import Filters, catalog, catalog_dicts
    from mvctl.formats.labels import LabelFilter, check_labels, parse_metric_filter

    filters = Filters(
        labels=tuple(LabelFilter(*x.split("=", 1)) for x in check_labels(label or ())),
        metrics=tuple(parse_metric_filter(m) for m in metric or ()),
        channel=channel,
    )
    if as_json:
        if filters.empty:  # every version: straight from the index's rows
            found = catalog_dicts(Path.cwd(), model)
        else:
            found = [v.to_dict() for v in catalog(Path.cwd(), model, filters)]
        print_json({"model": model, "filters": filters.to_dict(), "versions": found})
        return
    versions = catalog(Path.cwd(), model, filters)
    render.versions_table(model, versions, filtered=bool(label or metric or channel))


@handled
def show(
    ref: Annotated[str, typer.Argument(help="MODEL, MODEL@vX.Y.Z or MODEL@CHANNEL.")],
    as_json: JsonOpt = False,
) -> None:
    """Show a version's whole manifest."""
    from rich.syntax import Syntax

    from mvctl.common import yamlio
    from mvctl.registry.read import show as run_show

    shown = run_show(Path.cwd(), ref)
    if as_json:
        print_json(shown.to_dict())
        return
    info = shown.info
    out = stdout()
    shown_channels = ", ".join(render.held(c, info.weights.get(c)) for c in info.channels)
    held = esc(f"  channels: {shown_channels}") if info.channels else ""
    retired = "  [red](deregistered)[/]" if info.deregistered else ""
    name, commit = esc(f"{info.model} {info.version}"), esc(info.commit[:12])
    out.print(f"[bold]{name}[/]  commit {commit}{held}{retired}")
    out.print(Syntax(yamlio.dumps(shown.manifest), "yaml", theme="ansi_dark", word_wrap=True))
