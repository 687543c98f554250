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
# The HTTP servers' client limits (webhook, model server, dashboard): read timeouts and a
# connection cap, spelled alike everywhere.
ReadTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--read-timeout", help="Seconds a client has to send a request's headers, and its body."
    ),
]
MaxConnectionsOpt = Annotated[
    int,
    typer.Option(
        "--max-connections",
        help="Open connections at most; beyond, the longest stalled one is dropped.",
    ),
]
