"""The leaderboard as data: ranked rows for one dataset, split and fingerprint.

:func:`build` returns a :class:`Board` (plain rows, no Rich); :mod:`harness.board.render`
draws it as a Rich table and :mod:`harness.board.export` writes markdown, csv, json, html.
Only runs scored against the fingerprint of the split as prepared now are shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.config import DEFAULT_METRIC, SEGMENTS
from harness.errors import ConfigError
from harness.stats import DEFAULT_RESAMPLES


@dataclass
class BoardRow:
    """One ranked run; ``metrics`` holds the board's columns (None where a run lacks one)."""

    rank: int | None  # None: the run lacks the board's metric (listed last, see Board.notices)
    run_id: str
    recommender: str
    parameters: dict[str, Any]
    params: str  # short text of the parameters
    baseline: bool
    external: bool
    sandbox: str | None  # bwrap or none (unsandboxed); None for external lists
    k: int | None
    fit_seconds: float | None
    recommend_seconds: float | None
    date: str | None  # ISO start time, to the second
    metrics: dict[str, float | None]
    vs_best_baseline: float | None = None
    ci: dict[str, list[float]] | None = None  # {main metric: [lo, hi]}, 95% bootstrap over users
    rank_band: list[int] | None = (
        None  # [1 + runs significantly better, N - runs significantly worse]
    )
    tags: list[str] = field(default_factory=list)  # --tag of the run
    note: str | None = None  # --note of the run


@dataclass
class Board:
    dataset: str
    split: str
    fingerprint: str
    segment: str
    metric: str
    columns: list[str]  # metric columns shown, main metric first
    rows: list[BoardRow] = field(default_factory=list)
    best_baseline: float | None = None
    # resamples, seed, alpha, users, mdd (minimal detectable difference of the main metric) and
    # mdd_reference (the run whose spread it comes from); None without per-user values
    statistics: dict[str, Any] | None = None
    # run_id -> {k: value} of the main metric's family at every stored k (charts; not in JSON)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    dialect: str = "harness"  # whose metric definitions (harness.metrics.dialects)
    notices: list[str] = field(default_factory=list)
    tagged: list[str] = field(default_factory=list)  # only runs carrying all of these tags

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("curves")
        return out


# Metric families where lower is better (DESIGN.md: boards rank gini ascending).
LOWER_IS_BETTER = frozenset({"gini"})


def lower_is_better(metric: str) -> bool:
    return metric.split("@")[0] in LOWER_IS_BETTER


def other_metrics(metric: str, available: list[str]) -> list[str]:
    """A sensible set beside the main metric: the same family at the same k, then the rest at k."""
    k = metric.split("@")[-1]
    wanted = [
        f"{m}@{k}"
        for m in ("ndcg", "recall", "precision", "map", "mrr", "hit_rate", "coverage", "novelty")
    ]
    return [m for m in wanted if m in available and m != metric]


def short_params(params: dict[str, Any], width: int = 40) -> str:
    text = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def build(
    home: Path,
    dataset: str,
    split: str | None = None,
    *,
    metric: str = DEFAULT_METRIC,
    segment: str = "all",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    dialect: str = "harness",
    best_per_model: bool = False,
    tags: list[str] | None = None,
) -> Board:
    """Rank every ok run on the prepared split by ``metric`` in ``segment`` (best first: highest,
    or lowest for gini). Runs without ``metric`` (asked for a smaller k) are listed after the
    ranked ones with rank None and a notice. ``best_per_model``: each recommender's best run only.
    ``tags``: only the runs carrying every one of them (the board, its ranks, bands and CIs are
    those of that subset).

    Each row carries ``ci`` ({metric: [lo, hi]}, a percentile bootstrap over the segment's
    users, ``resamples`` resamples seeded by ``seed``) and ``rank_band`` ([1 + runs significantly
    better, N - runs significantly worse]: paired randomization tests between all pairs, Holm
    at 0.05), both None for a run without per-user values of the metric (see harness.stats).
    ``dialect`` other than harness re-scores the stored lists with that library's definitions
    (:mod:`harness.board.dialect`); CIs and rank bands are then not computed."""
    from harness.labels import check_tags
    from harness.store.runs import leaderboard_rows
    from harness.store.splits import split_meta

    if segment not in SEGMENTS:
        raise ConfigError(f"--segment must be one of {', '.join(SEGMENTS)}, got {segment!r}")
    tagged = check_tags(tags)
    meta = split_meta(home, dataset, split)
    frame = leaderboard_rows(
        home, dataset, meta["split"], meta["fingerprint"], segment, tags=tagged
    )
    notices: list[str] = []
    if dialect != "harness":
        from harness.board.dialect import rescore
        from harness.metrics.dialects import get

        name = metric.split("@")[0]
        if name not in get(dialect).metrics:
            raise ConfigError(
                f"--metric {metric!r}: dialect {dialect} has no {name}; it offers "
                f"{', '.join(get(dialect).metrics)}"
            )
        frame, notices = rescore(home, frame, dataset, meta["split"], segment, dialect)
    available = [c for c in frame.columns if "@" in c]
    if frame.height and metric not in available:
        raise ConfigError(
            f"--metric {metric!r} is not stored for these runs; known: "
            f"{', '.join(sorted(available))}"
        )
    if resamples < 1:
        raise ConfigError(f"--ci-resamples must be at least 1, got {resamples}")
    columns = [metric, *other_metrics(metric, available)]
    family = metric.split("@")[0]
    at_k = {
        int(c.split("@")[1]): c
        for c in available
        if c.split("@")[0] == family and c.split("@")[1].isdigit()
    }
    rows: list[BoardRow] = []
    curves: dict[str, dict[int, float]] = {}
    for d in frame.to_dicts():
        curves[d["run_id"]] = {k: d[c] for k, c in sorted(at_k.items()) if d.get(c) is not None}
        params = json.loads(d["parameters"]) if d["parameters"] else {}
        rows.append(
            BoardRow(
                rank=0,
                run_id=d["run_id"],
                recommender=d["recommender"],
                parameters=params,
                params=short_params(params),
                baseline=bool(d["baseline"]),
                external=bool(d["external"]),
                sandbox=d.get("sandbox"),
                k=d["k"],
                fit_seconds=d["fit_seconds"],
                recommend_seconds=d["recommend_seconds"],
                date=d["started_at"].isoformat(timespec="seconds") if d["started_at"] else None,
                metrics={c: d.get(c) for c in columns},
                tags=list(d.get("tags") or []),
                note=d.get("note"),
            )
        )
    sign = 1 if lower_is_better(metric) else -1
    rows.sort(
        key=lambda r: (
            _num(r.metrics[metric]) is None,
            sign * (_num(r.metrics[metric]) or 0.0),
            r.date or "",
            r.run_id,
        )
    )
    if best_per_model:
        first: dict[str, BoardRow] = {}  # each recommender's best row, in board order
        for r in rows:
            first.setdefault(r.recommender, r)
        rows = list(first.values())
    baselines = [v for v in (_num(r.metrics[metric]) for r in rows if r.baseline) if v is not None]
    best = (min(baselines) if sign > 0 else max(baselines)) if baselines else None
    rank = 0
    for r in rows:
        value = _num(r.metrics[metric])
        if value is None:
            r.rank = None
        else:
            rank += 1
            r.rank = rank
        r.vs_best_baseline = None if best is None or value is None else value - best
    missing = [r for r in rows if r.rank is None]
    if missing:
        ks = sorted({r.k for r in missing if r.k})
        notices.append(
            f"{len(missing)} run(s) have no {metric} (asked for "
            f"{', '.join(f'k={k}' for k in ks) or 'a smaller k'}): listed last, unranked"
        )
    board = Board(
        dataset,
        meta["split"],
        meta["fingerprint"],
        segment,
        metric,
        columns,
        rows,
        best,
        curves=curves,
        dialect=dialect,
        notices=notices,
        tagged=tagged,
    )
    if dialect == "harness":
        _attach_statistics(home, board, resamples, seed)
    elif rows:  # the stored per-user values are harness'; the dialect's are not stored
        notices.append(
            f"no CIs or rank bands in the {dialect} dialect (computed from the "
            "stored harness per-user values only)"
        )
    return board


def _attach_statistics(home: Path, board: Board, resamples: int, seed: int) -> None:
    """CI and rank band of every row that has per-user values of the main metric."""
    import numpy as np

    from harness import stats
    from harness.store.runs import user_values

    if not board.rows:
        return
    _, values = user_values(home, [r.run_id for r in board.rows], [board.metric], board.segment)
    rows = [r for r in board.rows if (r.run_id, board.metric) in values]
    if not rows:
        return
    matrix = np.stack([values[(r.run_id, board.metric)] for r in rows], axis=1)
    matrix = matrix[~np.isnan(matrix).any(axis=1)]  # paired: users every run has a value for
    if matrix.shape[0] == 0:
        return
    flip = lower_is_better(board.metric)  # bands count "better" as higher: negate, then undo
    result = stats.board_statistics(-matrix if flip else matrix, resamples=resamples, seed=seed)
    for i, r in enumerate(rows):
        lo, hi = (float(v) for v in result["ci"][i])
        r.ci = {board.metric: [-hi, -lo] if flip else [lo, hi]}
        r.rank_band = [int(v) for v in result["rank_band"][i]]
    ref = _reference(rows)
    board.statistics = {
        "resamples": resamples,
        "seed": seed,
        "alpha": stats.ALPHA,
        "users": int(matrix.shape[0]),
        "mdd": stats.minimal_detectable_difference(matrix[:, rows.index(ref)]),
        "mdd_reference": f"{ref.recommender} {ref.run_id}",
    }


def _reference(rows: list[BoardRow]) -> BoardRow:
    """The run whose spread sizes the minimal detectable difference: popular, else the best
    baseline, else the best run."""
    return next(
        (r for r in rows if r.recommender == "popular" and r.baseline),
        next((r for r in rows if r.baseline), rows[0]),
    )


def detectable_difference(
    home: Path, dataset: str, split: str | None = None, metric: str = DEFAULT_METRIC
) -> dict[str, Any]:
    """Roughly the smallest difference of ``metric`` this split can detect (80% power, paired
    test at 0.05; harness.stats.minimal_detectable_difference): from the per-user spread of a
    reference run (popular, else the best baseline, else the best run), or, before any run, an
    upper bound from the number of test users (a per-user value in [0, 1] has a spread of at
    most 0.5)."""
    from harness import stats
    from harness.store.runs import leaderboard_rows, user_values
    from harness.store.splits import split_meta

    meta = split_meta(home, dataset, split)
    has_runs = (
        leaderboard_rows(home, meta["dataset"], meta["split"], meta["fingerprint"]).height > 0
    )
    board = build(home, dataset, meta["split"], metric=metric, resamples=1) if has_runs else None
    rows = [r for r in (board.rows if board else []) if r.ci is not None]
    if rows:
        ref = _reference(rows)
        _, values = user_values(home, [ref.run_id], [metric])
        return {
            "metric": metric,
            "value": stats.minimal_detectable_difference(values[(ref.run_id, metric)]),
            "reference": f"{ref.recommender} {ref.run_id}",
            "bound": False,
        }
    n = meta["info"].get("test_users") or 0
    z = 1.959964 + 0.841621
    return {
        "metric": metric,
        "value": z * 0.5 / math.sqrt(n) if n else None,
        "reference": None,
        "bound": True,
    }


def position(board: Board, run_id: str) -> int | None:
    """Rank of a run on the board, or None."""
    return next((r.rank for r in board.rows if r.run_id == run_id), None)


def standing(board: Board, run_id: str) -> dict[str, Any] | None:
    """Where a run stands: rank, of, rank_band, metric, value, ci; None when not on the board."""
    row = next((r for r in board.rows if r.run_id == run_id), None)
    if row is None:
        return None
    return {
        "rank": row.rank,
        "of": len(board.rows),
        "rank_band": row.rank_band,
        "metric": board.metric,
        "value": row.metrics[board.metric],
        "ci": (row.ci or {}).get(board.metric),
    }


def run_standing(home: Path, run, **options) -> dict[str, Any] | None:
    """:func:`standing` of a stored run (harness.store.runs.Run) on the board of its split (None
    when the split was prepared again since, or the run is not ok)."""
    from harness.errors import NotFoundError

    if run.status != "ok":
        return None
    metric = (
        DEFAULT_METRIC
        if DEFAULT_METRIC in run.metrics
        else (f"ndcg@{run.k}" if run.k else DEFAULT_METRIC)
    )
    try:
        board = build(home, run.dataset, run.split, metric=metric, **options)
    except (NotFoundError, ConfigError):
        return None
    return standing(board, run.run_id)


def describe_standing(s: dict[str, Any]) -> str:
    """'rank 2 of 8 (band 1–4); ndcg@10 0.0847, 95% CI [0.0738, 0.0954]'."""
    band = s["rank_band"]
    text = f"rank {s['rank']} of {s['of']}"
    if band:
        text += f" (band {band[0]}–{band[1]})" if band[0] != band[1] else f" (band {band[0]})"
    if s["value"] is not None:
        text += f"; {s['metric']} {s['value']:.4f}"
    if s["ci"]:
        text += f", 95% CI [{s['ci'][0]:.4f}, {s['ci'][1]:.4f}]"
    return text


def _num(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
