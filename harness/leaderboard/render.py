"""The leaderboard as a Rich table (the only place that draws it for a terminal)."""

from __future__ import annotations

from rich.table import Table

from harness.leaderboard import Board
from harness.leaderboard.export import table


def rich_table(board: Board, highlight: str | None = None) -> Table:
    header, body = table(board)
    t = Table(title=f"{board.dataset} / {board.split} — {board.segment} users, by {board.metric}",
              caption=f"fingerprint {board.fingerprint[:12]}; baselines in dim italics")
    for h in header:
        numeric = h == "rank" or "@" in h or h.endswith(" s") or h == "vs best baseline"
        t.add_column(h, justify="right" if numeric else "left",
                     style="bold" if h == board.metric else None, no_wrap=h == "run")
    for r, row in zip(board.rows, body):
        style = "dim italic" if r["baseline"] else None
        if highlight and r["run_id"] == highlight:
            style = "bold green"
        t.add_row(*row, style=style)
    return t
