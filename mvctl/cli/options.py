"""Options shared by commands: declared once, so every command spells them alike."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
]
PushOpt = Annotated[
    bool | None,
    typer.Option(
        "--push/--local",
        help="Publish to the git remote the hosts follow (the default when it exists; "
        "atomic, leased), or keep the move in this clone only.",
    ),
]
RemoteOpt = Annotated[str, typer.Option("--remote", help="Git remote to publish to.")]
EvalDataOpt = Annotated[
    Path | None,
    typer.Option("--eval-data", help="Validation data (CSV/Parquet) for drift and bias gates."),
]
