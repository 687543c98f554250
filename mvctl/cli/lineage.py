"""Commands that explain history: lineage and diff."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.output import handled, print_json, stdout


class LineageFormat(StrEnum):
    rich = "rich"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


class DiffFormat(StrEnum):
    rich = "rich"
    json = "json"
    markdown = "markdown"


@handled
def lineage(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str | None, typer.Argument(help="Show only this version's ancestry.")
    ] = None,
    fmt: Annotated[
        LineageFormat, typer.Option("--format", "-f", help="Output format.")
    ] = LineageFormat.rich,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Show a model's version tree, or one version's ancestry.

    Derived from git history.
    """
    from mvctl.lineage.tree import report

    result = report(Path.cwd(), model, version)
    if as_json or fmt is LineageFormat.json:
        print_json(result.to_dict())
        return
    from mvctl.cli.render import lineage as render

    if fmt is LineageFormat.mermaid:
        typer.echo(render.lineage_mermaid(result))
    elif fmt is LineageFormat.dot:
        typer.echo(render.lineage_dot(result))
    else:
        stdout().print(render.lineage_tree(result))


@handled
def diff(
    model: Annotated[str, typer.Argument(help="Model name.")],
    old: Annotated[str, typer.Argument(help="Version or channel, e.g. production or v1.4.0.")],
    new: Annotated[str, typer.Argument(help="Version or channel to compare with OLD.")],
    fmt: Annotated[DiffFormat, typer.Option("--format", "-f", help="Output format.")] = (
        DiffFormat.rich
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Explain what changed between two versions.

    Weights, data, params, environment, metrics and code, each compared.
    """
    from mvctl.lineage.diff import diff as run_diff

    result = run_diff(Path.cwd(), model, old, new)
    if as_json or fmt is DiffFormat.json:
        print_json(result.to_dict())
        return
    from mvctl.cli.render import lineage as render

    if fmt is DiffFormat.markdown:
        from mvctl.lineage.markdown import diff_markdown

        typer.echo(diff_markdown(result), nl=False)
    else:
        stdout().print(render.diff_rich(result))
