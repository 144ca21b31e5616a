"""The leaderboard as data: ranked rows for one dataset, split and fingerprint.

:func:`build` returns a :class:`Board` (plain rows, no Rich); :mod:`harness.leaderboard.render`
draws it as a Rich table and :mod:`harness.leaderboard.export` writes markdown, csv, json, html.
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


@dataclass
class BoardRow:
    """One ranked run; ``metrics`` holds the board's columns (None where a run lacks one)."""

    rank: int
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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def other_metrics(metric: str, available: list[str]) -> list[str]:
    """A sensible set beside the main metric: the same family at the same k, then the rest at k."""
    k = metric.split("@")[-1]
    wanted = [f"{m}@{k}" for m in ("ndcg", "recall", "precision", "map", "mrr", "hit_rate",
                                   "coverage", "novelty")]
    return [m for m in wanted if m in available and m != metric]


def short_params(params: dict[str, Any], width: int = 40) -> str:
    text = " ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return text if len(text) <= width else text[: width - 1] + "…"


def build(home: Path, dataset: str, split: str | None = None, *, metric: str = DEFAULT_METRIC,
          segment: str = "all") -> Board:
    """Rank every ok run on the prepared split by ``metric`` in ``segment`` (best first)."""
    from harness.store.runs import leaderboard_rows
    from harness.store.splits import split_meta

    if segment not in SEGMENTS:
        raise ConfigError(f"--segment must be one of {', '.join(SEGMENTS)}, got {segment!r}")
    meta = split_meta(home, dataset, split)
    frame = leaderboard_rows(home, dataset, meta["split"], meta["fingerprint"], segment)
    available = [c for c in frame.columns if "@" in c]
    if frame.height and metric not in available:
        raise ConfigError(f"--metric {metric!r} is not stored for these runs; known: "
                          f"{', '.join(sorted(available))}")
    columns = [metric, *other_metrics(metric, available)]
    rows = []
    for r in frame.to_dicts():
        params = json.loads(r["parameters"]) if r["parameters"] else {}
        rows.append(BoardRow(
            rank=0, run_id=r["run_id"], recommender=r["recommender"], parameters=params,
            params=short_params(params), baseline=bool(r["baseline"]),
            external=bool(r["external"]), sandbox=r.get("sandbox"), k=r["k"], fit_seconds=r["fit_seconds"],
            recommend_seconds=r["recommend_seconds"],
            date=r["started_at"].isoformat(timespec="seconds") if r["started_at"] else None,
            metrics={c: r.get(c) for c in columns},
        ))
    rows.sort(key=lambda r: (-_num(r.metrics[metric]), r.date or "", r.run_id))
    baselines = [_num(r.metrics[metric]) for r in rows if r.baseline]
    best = max(baselines) if baselines else None
    for rank, r in enumerate(rows, 1):
        r.rank = rank
        value = r.metrics[metric]
        r.vs_best_baseline = None if best is None or value is None else value - best
    return Board(dataset, meta["split"], meta["fingerprint"], segment, metric, columns, rows, best)


def position(board: Board, run_id: str) -> int | None:
    """Rank of a run on the board, or None."""
    return next((r.rank for r in board.rows if r.run_id == run_id), None)


def _num(v: float | None) -> float:
    return -math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
