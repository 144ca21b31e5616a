"""Leaderboard exports: markdown, csv, json and a single self-contained HTML page."""

from __future__ import annotations

import csv
import html
import io
import json

from harness.board import Board

FORMATS = ("markdown", "csv", "json", "html")


def labels(board: Board, wanted: tuple[str, ...] = ()) -> list[str]:
    """The optional text columns, ``tags`` and ``note``: those some run has (or ``wanted``)."""
    return [c for c in ("tags", "note") if c in wanted or any(getattr(r, c) for r in board.rows)]


def table(board: Board, wanted: tuple[str, ...] = ()) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by every format (and the Rich table). ``tags`` (after
    params) and ``note`` (before run) are columns when a run has them, or when ``wanted``."""
    extra = labels(board, wanted)
    header = [
        "rank",
        "band",
        "recommender",
        "params",
        *(["tags"] if "tags" in extra else []),
        *board.columns,
        "vs best baseline",
        "fit s",
        "recommend s",
        "date",
        *(["note"] if "note" in extra else []),
        "run",
    ]
    body = []
    for r in board.rows:
        name = (
            r.recommender
            + (" (baseline)" if r.baseline else "")
            + (" (external)" if r.external else "")
            + (" (unsandboxed)" if r.sandbox == "none" else "")
        )
        main = _fmt(r.metrics[board.metric]) + _half_width(r, board.metric)
        body.append(
            [
                "-" if r.rank is None else str(r.rank),
                band_text(r.rank_band),
                name,
                r.params,
                *([", ".join(r.tags)] if "tags" in extra else []),
                main,
                *(_fmt(r.metrics[c]) for c in board.columns[1:]),
                _signed(r.vs_best_baseline),
                _secs(r.fit_seconds),
                _secs(r.recommend_seconds),
                _date(r.date),
                *([r.note or ""] if "note" in extra else []),
                r.run_id,
            ]
        )
    return header, body


def is_numeric(header: str) -> bool:
    """Columns of numbers: right-aligned in every format."""
    return header in ("rank", "band", "vs best baseline") or "@" in header or header.endswith(" s")


def band_text(band) -> str:
    """[2, 4] -> '2–4', [3, 3] -> '3'."""
    if not band:
        return ""
    return str(band[0]) if band[0] == band[1] else f"{band[0]}–{band[1]}"


def _half_width(row, metric: str) -> str:
    ci = (row.ci or {}).get(metric)
    return "" if not ci else f" ±{(ci[1] - ci[0]) / 2:.4f}"


def breaks_after(board: Board) -> list[bool]:
    """Per row: whether every run above it is significantly better than every run below (a
    line between them); rows between two lines share a band of runs the data cannot order."""
    rows = board.rows
    out = []
    for i, r in enumerate(rows):
        if i + 1 == len(rows) or not r.rank_band or not rows[i + 1].rank_band:
            out.append(False)
            continue
        out.append(
            max(x.rank_band[1] for x in rows[: i + 1] if x.rank_band)
            < min(x.rank_band[0] for x in rows[i + 1 :] if x.rank_band)
        )
    return out


def caption(board: Board) -> str:
    """What the ± and the bands mean, and the smallest difference the split can detect."""
    st = board.statistics
    if not st:
        return "no per-user values: no confidence intervals or bands"
    mdd = st.get("mdd")
    text = (
        f"±: half a 95% bootstrap CI ({st['resamples']} resamples of {st['users']:,} users, "
        f"seed {st['seed']}); band: the ranks the data allow (paired randomization tests, "
        f"Holm {st['alpha']:g})"
    )
    if mdd is not None and mdd == mdd:
        text += f"; MDD ~{mdd:.4f} (80% power, spread of {st['mdd_reference'].split()[0]})"
    return text


def tagged_text(board: Board) -> str:
    """', runs tagged a, b' when the board is filtered by tags."""
    return f", runs tagged {', '.join(board.tagged)}" if board.tagged else ""


def _date(iso: str | None) -> str:
    """'2026-11-25T03:07:50' -> '2026-11-25 03:07' (json and csv keep the full time)."""
    return "" if not iso else iso.replace("T", " ")[:16]


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4f}"


def _signed(v) -> str:
    return "" if v is None else f"{v:+.4f}"


def _secs(v) -> str:
    return "" if v is None else f"{v:.1f}"


def to_markdown(board: Board) -> str:
    header, body = table(board)
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [
        f"Leaderboard: {board.dataset} / {board.split} ({board.segment} users, by "
        f"{board.metric}{tagged_text(board)})",
        "",
        caption(board),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if is_numeric(h) else "---" for h in header) + "|",
    ]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_csv(board: Board) -> str:
    """One row per run; raw numbers (not rounded), for spreadsheets and scripts."""
    buf = io.StringIO()
    w = csv.writer(buf)
    m = board.metric
    w.writerow(
        [
            "rank",
            "band_lo",
            "band_hi",
            "run_id",
            "recommender",
            "parameters",
            "baseline",
            "external",
            "sandbox",
            m,
            f"{m}_ci_lo",
            f"{m}_ci_hi",
            *board.columns[1:],
            "vs_best_baseline",
            "fit_seconds",
            "recommend_seconds",
            "date",
            "tags",
            "note",
        ]
    )
    for r in board.rows:
        band = r.rank_band or (None, None)
        ci = (r.ci or {}).get(m) or (None, None)
        w.writerow(
            [
                r.rank,
                *band,
                r.run_id,
                r.recommender,
                json.dumps(r.parameters),
                r.baseline,
                r.external,
                r.sandbox or "",
                r.metrics[m],
                *ci,
                *(r.metrics[c] for c in board.columns[1:]),
                r.vs_best_baseline,
                r.fit_seconds,
                r.recommend_seconds,
                r.date,
                ", ".join(r.tags),
                r.note or "",
            ]
        )
    return buf.getvalue()


def to_json(board: Board) -> str:
    return json.dumps(board.to_json(), indent=2, default=str)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}th,td{padding:.3rem .7rem;border-bottom:1px solid #ddd}
th{background:#f4f4f4;text-align:left;white-space:nowrap}td{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}.main{font-weight:bold}
tr.baseline{color:#666;font-style:italic}caption{text-align:left;margin:.5rem 0}
h1{font-size:1.1rem;margin:0 0 .3rem}p.note{color:#666;margin:0 0 .7rem;max-width:70rem}
.scroll{overflow-x:auto}tr.cut td{border-bottom:2px solid #444}
figure{margin:2rem 0 0}figure svg{max-width:100%;height:auto}figcaption{color:#666}"""


def to_html(board: Board) -> str:
    """A complete page with inline CSS: no scripts, no external resources."""
    header, body = table(board)
    classes = [
        " ".join(
            c for c in ("num" if is_numeric(h) else "", "main" if h == board.metric else "") if c
        )
        for h in header
    ]
    cls = [f' class="{c}"' if c else "" for c in classes]
    title = f"Leaderboard: {board.dataset} / {board.split}"
    note = (
        f"{board.segment} users, by {board.metric}{tagged_text(board)}; {caption(board)}; baselines shipped with "
        f"harness in grey italics; a line separates runs the data can order; fingerprint "
        f"{board.fingerprint[:12]}"
    )
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="note">{html.escape(note)}</p>',
        '<div class="scroll"><table>',
        "<thead><tr>"
        + "".join(f"<th{c}>{html.escape(h)}</th>" for c, h in zip(cls, header))
        + "</tr></thead>",
        "<tbody>",
    ]
    for r, row, cut in zip(board.rows, body, breaks_after(board)):
        names = " ".join(c for c in ("baseline" if r.baseline else "", "cut" if cut else "") if c)
        row_cls = f' class="{names}"' if names else ""
        cells = "".join(f"<td{c}>{html.escape(v)}</td>" for c, v in zip(cls, row))
        out.append(f"<tr{row_cls}>{cells}</tr>")
    if not board.rows:
        out.append(f'<tr><td colspan="{len(header)}">no runs yet</td></tr>')
    out += ["</tbody>", "</table></div>"]
    if board.rows:
        from harness.board.plots import svg

        out += [
            "<figure>",
            svg(board),
            f"<figcaption>{html.escape(board.metric)} with its 95% CI "
            "per run, a colour per group (every run of a group is significantly better than "
            "every run of the next), and the metric at every k for the top runs</figcaption>",
            "</figure>",
        ]
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def export(board: Board, fmt: str) -> str:
    return {"markdown": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}[fmt](board)
