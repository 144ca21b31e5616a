"""The leaderboard as a Rich table (the only place that draws it for a terminal)."""

from __future__ import annotations

from rich.table import Table

from harness.cli.output import text
from harness.board import Board
from harness.board.export import breaks_after, caption, is_numeric, table

# Columns that always show, then the others in the order they are dropped last-to-first when the
# terminal is too narrow for all of them (the exports always carry every column).
ALWAYS = ("rank", "band", "recommender")
PADDING = 3  # a cell's share of borders and padding in Rich's default box


def _priority(header: list[str], metric: str) -> list[str]:
    others = [h for h in header if "@" in h and h != metric]
    return [*ALWAYS, metric, "vs best baseline", "params", *others, "fit s", "recommend s",
            "date", "run"]


def rich_table(board: Board, highlight: str | None = None, width: int | None = None) -> Table:
    """Rich table of the board; with ``width``, the columns that fit in it, by priority."""
    header, body = table(board)
    widths = {h: max([len(h), *(len(row[i]) for row in body)]) + PADDING for i, h in enumerate(header)}
    shown, used = set(), 1
    for h in _priority(header, board.metric):
        if h in widths and (width is None or h in ALWAYS or used + widths[h] <= width):
            shown.add(h)
            used += widths[h]
    hidden = len(header) - len(shown)
    note = f"{caption(board)}; fingerprint {board.fingerprint[:12]}; baselines in dim italics"
    if hidden:
        note += f"; {hidden} columns left out for width (--format markdown|csv|html has all)"
    t = Table(title=f"{board.dataset} / {board.split} — {board.segment} users, by {board.metric}",
              caption=note)
    keep = [i for i, h in enumerate(header) if h in shown]
    for i in keep:
        h = header[i]
        t.add_column(h, justify="right" if is_numeric(h) else "left", no_wrap=True,
                     style="bold" if h == board.metric else None)
    for r, row, cut in zip(board.rows, body, breaks_after(board)):
        style = "dim italic" if r.baseline else None
        if highlight and r.run_id == highlight:
            style = "bold green"
        t.add_row(*(text(row[i]) for i in keep), style=style, end_section=cut)
    return t
