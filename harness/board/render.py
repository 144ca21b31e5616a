"""The leaderboard as a Rich table (the only place that draws it for a terminal)."""

from __future__ import annotations

from rich.table import Table

from harness.board import Board
from harness.board.export import breaks_after, caption, is_numeric, table, tagged_text
from harness.cli.output import text

# Columns that always show, then the others in the order they are dropped last-to-first when the
# terminal is too narrow for all of them (the exports always carry every column). The run id is
# shown short (its random suffix, which `harness show` and `harness rm` accept) and the params are
# shortened, never dropped, so that two runs of one model stay told apart at 80 columns.
ALWAYS = ("rank", "recommender", "run", "params")
PADDING = 3  # a cell's share of borders and padding in Rich's default box
MIN_PARAMS = 12
GOOD_PARAMS = 28  # what params get before secondary columns are considered
MAX_RECOMMENDER = 20
MAX_TAGS_CELL = 24
MAX_NOTE = 40  # the board shows the start of a note; `harness show` and the exports all of it
# --columns names: the header's words without spaces
KEYS = {"vs best baseline": "vs-best", "fit s": "fit", "recommend s": "recommend"}


def column_key(header: str) -> str:
    return KEYS.get(header, header)


def short_id(run_id: str) -> str:
    """The random suffix of a run id (``20261125-014151-3fa2c1`` -> ``3fa2c1``)."""
    return run_id.rsplit("-", 1)[-1]


def _priority(header: list[str], metric: str) -> list[str]:
    others = [h for h in header if "@" in h and h != metric]
    return [
        *ALWAYS,
        metric,
        "band",
        "tags",
        "vs best baseline",
        *others,
        "note",
        "fit s",
        "recommend s",
        "date",
    ]


def _choose(header, widths, metric, width):
    """Columns that fit ``width`` by priority; widths of params and recommender adjusted."""
    shown, used = set(), 1
    natural = widths["params"]
    for h in _priority(header, metric):
        if h not in widths:
            continue
        if h == "vs best baseline":  # params grow before the secondary columns are considered
            grow = min(natural, GOOD_PARAMS + PADDING) - widths["params"]
            if grow > 0 and used + grow <= width:
                widths["params"] += grow
                used += grow
        if h == "params":
            widths["params"] = min(natural, MIN_PARAMS + PADDING)
        if h in ALWAYS or h == metric or used + widths[h] <= width:
            shown.add(h)
            used += widths[h]
    widths["params"] = min(natural, widths["params"] + max(0, width - used))
    over = used - width
    for h, least in (("recommender", 10 + PADDING), ("params", 6 + PADDING)):
        if over > 0:  # too narrow even for the essentials: cut the text cells further
            cut = min(over, max(0, widths[h] - least))
            widths[h] -= cut
            over -= cut
    return shown


def rich_table(
    board: Board,
    highlight: str | None = None,
    width: int | None = None,
    columns: list[str] | None = None,
) -> Table:
    """Rich table of the board; with ``width``, the columns that fit in it, by priority (text
    cells shortened with "…", numbers never cut); ``columns`` (keys of :func:`column_key`)
    chooses them instead."""
    header, body = table(board, tuple(columns or ()))
    dropped: list[str] = []
    run_col, rec_col = header.index("run"), header.index("recommender")
    cuts = {
        header.index(h): n for h, n in (("tags", MAX_TAGS_CELL), ("note", MAX_NOTE)) if h in header
    }
    for row in body:
        row[run_col] = short_id(row[run_col])
        row[rec_col] = _cut(row[rec_col].replace(" (baseline)", " (b)"), MAX_RECOMMENDER)
        for i, n in cuts.items():
            row[i] = _cut(row[i], n)
    widths = {
        h: max([len(h), *(len(row[i]) for row in body)]) + PADDING for i, h in enumerate(header)
    }
    if columns is not None:
        keys = {column_key(h): h for h in header}
        unknown = [c for c in columns if c not in keys]
        if unknown:
            from harness.errors import ConfigError

            raise ConfigError(
                f"--columns: unknown column(s) {', '.join(unknown)} (known: {', '.join(keys)})"
            )
        order = [keys[c] for c in columns]
        shown = set(order)
        if width is not None:  # fit: shorten the text cells, then leave out the least needed
            over = sum(widths[h] for h in order) + 1 - width
            for h, least in (("note", 8), ("tags", 8), ("params", 6), ("recommender", 10)):
                if over > 0 and h in shown:
                    cut = min(over, max(0, widths[h] - least - PADDING))
                    widths[h] -= cut
                    over -= cut
            for h in reversed(_priority(header, board.metric)):
                if over > 0 and h in shown and h not in ("rank", "run", board.metric):
                    shown.discard(h)
                    dropped.append(column_key(h))
                    over -= widths[h]
            order = [h for h in order if h in shown]
    else:
        shown = set(header) if width is None else _choose(header, widths, board.metric, width)
        order = [h for h in header if h in shown]
    hidden = len(header) - len(shown)
    note = (
        f"{caption(board)}; fingerprint {board.fingerprint[:12]}; (b) baseline, in dim "
        "italics; run: short id for show/rm"
    )
    if hidden and columns is None:
        note += f"; {hidden} columns left out for width (--columns, or --format markdown|csv|html)"
    elif columns is not None and dropped:
        note += (
            f"; left out for width: {', '.join(dropped)} (a wider terminal, or --format "
            "markdown|csv|html)"
        )
    t = Table(
        title=f"{board.dataset} / {board.split} — {board.segment} users, by {board.metric}"
        f"{tagged_text(board)}",
        caption=note,
    )
    keep = [header.index(h) for h in order]
    for i in keep:
        h = header[i]
        cut = h in ("params", "recommender", "tags", "note") and width is not None
        t.add_column(
            h,
            justify="right" if is_numeric(h) else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=widths[h] - PADDING if cut else None,
            style="bold" if h == board.metric else None,
        )
    for r, row, cut in zip(board.rows, body, breaks_after(board)):
        style = "dim italic" if r.baseline else None
        if highlight and r.run_id == highlight:
            style = "bold green"
        t.add_row(*(text(row[i]) for i in keep), style=style, end_section=cut)
    return t


def _cut(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"
