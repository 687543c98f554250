"""Tables that fit the terminal with every value whole: columns that do not fit are left
out, in an order, and a caption names them; only free text (reasons, names) wraps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mvctl.cli.output import esc

CUT = " (wider terminal, or --json)"


def fit(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    width: int,
    droppable: Sequence[str],
    folded: Mapping[str, int],
) -> list[str]:
    """The ``columns`` that fit ``width`` with every value whole, leaving out the
    ``droppable`` ones in their order until the rest fit. Cells are Rich markup, lines
    split on newlines; a ``folded`` column (name -> narrowest width) wraps, so it needs
    only that width."""
    from rich.text import Text

    def need(name: str) -> int:
        cells = [esc(name), *(line for row in rows for line in row[name].split("\n"))]
        widest = max(Text.from_markup(c).cell_len for c in cells)
        if name in folded:
            widest = min(widest, folded[name])
        return widest + 3  # padding and a rule

    wanted = list(columns)
    left = [c for c in droppable if c in wanted]
    while sum(need(c) for c in wanted) + 1 > width and left:
        wanted.remove(left.pop(0))
    return wanted


def caption(columns: Sequence[str], shown: Sequence[str]) -> str | None:
    """What a table does not show at this width, as its caption (markup), or None."""
    left_out = [c for c in columns if c not in shown]
    if not left_out:
        return None
    return esc(f"not shown at this width: {', '.join(left_out)}{CUT}")
