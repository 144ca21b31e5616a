"""Leaderboard exports: markdown, csv, json and a single self-contained HTML page."""

from __future__ import annotations

import csv
import html
import io
import json

from harness.leaderboard import Board

FORMATS = ("markdown", "csv", "json", "html")


def table(board: Board) -> tuple[list[str], list[list[str]]]:
    """Header and text cells shared by every format (and the Rich table)."""
    header = ["rank", "recommender", "params", *board.columns, "vs best baseline",
              "fit s", "recommend s", "date", "run"]
    body = []
    for r in board.rows:
        name = r.recommender + (" (baseline)" if r.baseline else "") + (
            " (external)" if r.external else "") + (
            " (unsandboxed)" if r.sandbox == "none" else "")
        body.append([str(r.rank), name, r.params, *(_fmt(r.metrics[c]) for c in board.columns),
                     _signed(r.vs_best_baseline), _secs(r.fit_seconds),
                     _secs(r.recommend_seconds), _date(r.date), r.run_id])
    return header, body


def is_numeric(header: str) -> bool:
    """Columns of numbers: right-aligned in every format."""
    return header == "rank" or "@" in header or header.endswith(" s") or header == "vs best baseline"


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
    lines = [f"Leaderboard: {board.dataset} / {board.split} ({board.segment} users, "
             f"by {board.metric})", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if is_numeric(h) else "---" for h in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_csv(board: Board) -> str:
    """One row per run; raw numbers (not rounded), for spreadsheets and scripts."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["rank", "run_id", "recommender", "parameters", "baseline", "external", "sandbox",
                *board.columns, "vs_best_baseline", "fit_seconds", "recommend_seconds", "date"])
    for r in board.rows:
        w.writerow([r.rank, r.run_id, r.recommender, json.dumps(r.parameters), r.baseline,
                    r.external, r.sandbox or "", *(r.metrics[c] for c in board.columns), r.vs_best_baseline,
                    r.fit_seconds, r.recommend_seconds, r.date])
    return buf.getvalue()


def to_json(board: Board) -> str:
    return json.dumps(board.to_json(), indent=2, default=str)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}th,td{padding:.3rem .7rem;border-bottom:1px solid #ddd}
th{background:#f4f4f4;text-align:left;white-space:nowrap}td{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums}.main{font-weight:bold}
tr.baseline{color:#666;font-style:italic}caption{text-align:left;margin:.5rem 0}
caption b{font-size:1.1rem}caption span{color:#666}"""


def to_html(board: Board) -> str:
    """A complete page with inline CSS: no scripts, no external resources."""
    header, body = table(board)
    classes = [" ".join(c for c in ("num" if is_numeric(h) else "", "main" if h == board.metric else "") if c)
               for h in header]
    cls = [f' class="{c}"' if c else "" for c in classes]
    title = f"Leaderboard: {board.dataset} / {board.split}"
    note = (f"{board.segment} users, by {board.metric}; baselines shipped with harness in grey "
            f"italics; fingerprint {board.fingerprint[:12]}")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>", "<body>",
           "<table>", f"<caption><b>{html.escape(title)}</b><br><span>{html.escape(note)}</span></caption>",
           "<thead><tr>" + "".join(f"<th{c}>{html.escape(h)}</th>" for c, h in zip(cls, header))
           + "</tr></thead>", "<tbody>"]
    for r, row in zip(board.rows, body):
        row_cls = ' class="baseline"' if r.baseline else ""
        cells = "".join(f"<td{c}>{html.escape(v)}</td>" for c, v in zip(cls, row))
        out.append(f"<tr{row_cls}>{cells}</tr>")
    if not board.rows:
        out.append(f'<tr><td colspan="{len(header)}">no runs yet</td></tr>')
    out += ["</tbody>", "</table>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def export(board: Board, fmt: str) -> str:
    return {"markdown": to_markdown, "csv": to_csv, "json": to_json, "html": to_html}[fmt](board)
