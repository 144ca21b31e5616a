"""The terminal table fits the terminal: columns by priority; numbers never cut, text cells
(recommender, params) shortened with an ellipsis rather than dropped; a short run id always."""

from __future__ import annotations

import pytest
from rich.console import Console


def _draw(home, dataset_name, width):
    from harness.board import build
    from harness.board.render import rich_table

    console = Console(width=width, record=True, color_system=None)
    console.print(rich_table(build(home, dataset_name), width=width))
    return console.export_text()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_narrow_terminal_drops_columns_instead_of_cutting_cells(home, board, width):
    text = _draw(home, board, width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    for must in (
        "rank",
        "recommender",
        "ndcg@10",
        "mine",
        "0.2500 ±0.0000",
        "0.1000 ±0.0000",
        "run",
        "params",
        "a=1",
    ):
        assert must in text, must
    assert "popular (b)" in text or "popular (…" in text
    if width < 120:
        assert "columns left out" in " ".join(text.split())  # the caption wraps


def test_wide_terminal_shows_every_column(home, board):
    text = _draw(home, board, 300)
    for header in (
        "params",
        "recall@10",
        "vs best baseline",
        "fit s",
        "recommend s",
        "date",
        "run",
        "band",
        "popular (b)",
    ):
        assert header in text, header
    assert "left out" not in text
