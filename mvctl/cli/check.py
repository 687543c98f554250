"""``mvctl check``: registry consistency, and what the git remote lacks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mvctl.cli.options import JsonOpt
from mvctl.cli.output import esc, handled, print_json_or_refuse, stdout


@handled
def check(
    remote: Annotated[
        str, typer.Option("--remote", help="Also report what this git remote lacks.")
    ] = "origin",
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not compare with the git remote.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check the registry's consistency and what the remote lacks.

    Compares aliases with events, manifests and DVC files, and lists the
    registry tags the git remote lacks. Exit 1 on a problem.
    """
    from mvctl.check import check as run_check
    from mvctl.errors import PolicyError

    report = run_check(Path.cwd(), remote=remote, offline=offline)
    refusal = None
    if not report.ok:
        refusal = PolicyError(f"{len(report.problems)} consistency problem(s) found")
    if as_json:
        print_json_or_refuse(report.to_dict(), refusal)
    else:
        out = stdout()
        for problem in report.problems:
            out.print(f"[red]✗[/] {esc(problem)}")
        for note in report.notes:
            out.print(f"[dim]note: {esc(note)}[/]")
        if report.ok:
            out.print(
                f"[green]✓[/] registry consistent: {report.models} models, "
                f"{report.versions} versions, {report.events} events"
            )
    if refusal:
        raise refusal
