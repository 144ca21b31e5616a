"""Charts of a board, drawn with matplotlib into static SVG or PNG (no browser, no scripts).

Left: each run's main metric with its 95% CI, best first, with its rank band; a colour per group
of runs (the groups between the lines of the terminal table: every run of a group is
significantly better than every run of the next), baselines in grey text.
Right: metric@k for every stored k of the main metric's family, for the top runs.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from harness.board import Board
from harness.board.export import band_text, breaks_after
from harness.errors import ConfigError

TOP_CURVES = 6
# groups of the CI chart in dark tones, curves in matplotlib's bright ones: a colour never means
# a group on one side and a run on the other
_BAND_COLOURS = ("#08306b", "#a50f15", "#00441b", "#3f007d", "#7f2704", "#525252")
_CURVE_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
)


def figure(board: Board):
    """A matplotlib Figure with the two charts (see the module docstring)."""
    from matplotlib.figure import Figure

    rows = board.rows
    n = max(len(rows), 1)
    fig = Figure(figsize=(11, max(3.2, 0.9 + 0.32 * n)), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.25, 1])
    _ci_chart(left, board)
    _curves(right, board)
    fig.suptitle(f"{board.dataset} / {board.split}: {board.segment} users", fontsize=11)
    return fig


def _label(r) -> str:
    text = r.recommender + (f" ({r.params})" if r.params else "")
    return text if len(text) <= 38 else text[:37] + "…"


def _ci_chart(ax, board: Board) -> None:
    rows = board.rows
    if not rows:
        ax.text(0.5, 0.5, "no runs yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    group, groups = 0, []
    for cut in breaks_after(board):
        groups.append(group)
        group += cut
    y = list(range(len(rows)))[::-1]
    for yi, r, g in zip(y, rows, groups):
        colour = _BAND_COLOURS[g % len(_BAND_COLOURS)]
        value = r.metrics[board.metric]
        ci = (r.ci or {}).get(board.metric)
        if value is None:
            continue
        if ci:
            ax.plot(ci, [yi, yi], color=colour, linewidth=2.2, solid_capstyle="butt")
        ax.plot([value], [yi], "o", color=colour, markersize=5)
    ax.set_yticks(y)
    labels = [f"{r.rank}. {_label(r)}   [{band_text(r.rank_band)}]" for r in rows]
    ax.set_yticklabels(labels, fontsize=8.5)
    for tick, r in zip(ax.get_yticklabels(), rows):
        if r.baseline:
            tick.set_color("#666666")
            tick.set_fontstyle("italic")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(
        f"{board.metric} (dot: mean; bar: 95% CI; [band]; a colour per group)", fontsize=9
    )
    ax.grid(axis="x", color="#e5e5e5")
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)


def _curves(ax, board: Board) -> None:
    family = board.metric.split("@")[0]
    top = [r for r in board.rows if board.curves.get(r.run_id)][:TOP_CURVES]
    if not top:
        ax.set_axis_off()
        return
    for i, r in enumerate(top):
        points = sorted(board.curves[r.run_id].items())
        ax.plot(
            [k for k, _ in points],
            [v for _, v in points],
            marker="o",
            markersize=3.5,
            linewidth=1.5,
            linestyle="--" if r.baseline else "-",
            color=_CURVE_COLOURS[i % len(_CURVE_COLOURS)],
            label=f"{r.rank}. {_label(r)}",
        )
    ax.set_xscale("log")
    ks = sorted({k for r in top for k in board.curves[r.run_id]})
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel("k (log scale)", fontsize=9)
    ax.set_ylabel(f"{family}@k", fontsize=9)
    ax.set_title(f"{family}@k, top {len(top)} runs (dashed: baselines)", fontsize=9.5)
    ax.grid(color="#e5e5e5")
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7.5, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def svg(board: Board) -> str:
    """The charts as an inline ``<svg>`` element (glyphs as paths: no fonts, no external refs)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "harness"}):
        figure(board).savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return text


def save(board: Board, out: Path) -> None:
    """Write the charts to ``out`` (.png or .svg)."""
    if out.suffix not in (".png", ".svg"):
        raise ConfigError(f"--out {out}: use a .png or .svg file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".svg":
        out.write_text(svg(board))
    else:
        figure(board).savefig(out, format="png", dpi=130, metadata={"Software": None})
