"""Two runs side by side, user by user, and a run's per-user values as a file.

:func:`compare` returns plain data (DESIGN.md "Statistics"): per metric both means, delta = a - b,
its paired-bootstrap 95% CI, the paired randomization p-value and wins/ties/losses over users;
how alike the two runs' lists are (mean Jaccard@k, RBO with p = 0.9); and the users who went from
a hit to a miss going from B to A (a hit@k in B, none in A: the users A lost) and back (won). The statistics are harness.stats; the values come
from the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from harness.errors import ConfigError
from harness.stats import DEFAULT_RESAMPLES

PER_USER_FAMILIES = (
    "ndcg",
    "recall",
    "precision",
    "map",
    "mrr",
    "hit_rate",
    "novelty",
    "diversity",
)


def _describe(run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "recommender": run.recommender,
        "parameters": run.parameters,
        "k": run.k,
    }


def compare(
    home: Path,
    run_a: str,
    run_b: str,
    *,
    metric: str | None = None,
    segment: str = "all",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired comparison of two ok runs on the same fingerprint (see the module docstring).

    ``metric`` (default ndcg@10, else ndcg at the smaller k) comes first; the other per-user
    metrics at its k follow. The result has ``a``, ``b``, ``segment``, ``users``, ``metrics``
    ({name: {a, b, delta, ci, p_value, wins, ties, losses}}), ``overlap`` ({jaccard@k, rbo}),
    ``hit_to_miss`` and ``miss_to_hit`` (counts), and ``changed`` (a polars frame of those users:
    user_id, change)."""
    from harness import stats
    from harness.board import SEGMENTS
    from harness.store.runs import get_run, user_values

    if segment not in SEGMENTS:
        raise ConfigError(f"--segment must be one of {', '.join(SEGMENTS)}, got {segment!r}")
    a, b = get_run(home, run_a), get_run(home, run_b)
    for run in (a, b):
        if run.status != "ok":
            raise ConfigError(f"run {run.run_id} is {run.status}: only ok runs can be compared")
    if a.fingerprint != b.fingerprint:
        raise ConfigError(
            f"runs {a.run_id} ({a.dataset}/{a.split}) and {b.run_id} "
            f"({b.dataset}/{b.split}) were scored on different truths "
            "(fingerprints differ): a paired comparison needs the same users"
        )
    k = min(a.k or 10, b.k or 10, 10)
    metric = metric or f"ndcg@{k}"
    if "@" not in metric:
        raise ConfigError(f"--metric {metric!r}: use name@k, e.g. ndcg@10")
    mk = metric.split("@", 1)[1]
    wanted = [metric, *(f"{f}@{mk}" for f in PER_USER_FAMILIES if f"{f}@{mk}" != metric)]
    users, values = user_values(home, [a.run_id, b.run_id], wanted, segment)
    names = [m for m in wanted if (a.run_id, m) in values and (b.run_id, m) in values]
    if metric not in names:
        raise ConfigError(
            f"--metric {metric!r} has no per-user values in both runs (per-user "
            f"metrics at @{mk}: {', '.join(names) or 'none'})"
        )
    if len(users) == 0:
        raise ConfigError(f"no {segment} users in these runs")
    metrics: dict[str, dict] = {}
    for name in names:  # a handful of metrics; each over every user at once
        va, vb = values[(a.run_id, name)], values[(b.run_id, name)]
        keep = ~(
            np.isnan(va) | np.isnan(vb)
        )  # diversity leaves users with < 2 categorised items out
        if not keep.any():
            continue
        [row] = stats.paired_comparison(va[keep], vb[keep], resamples=resamples, seed=seed)
        metrics[name] = {**row, "users": int(keep.sum())}
    hit = f"hit_rate@{mk}"
    changed = pl.DataFrame(schema={"user_id": pl.Utf8, "change": pl.Utf8})
    counts: dict[str, int | None] = {"hit_to_miss": None, "miss_to_hit": None}
    if (a.run_id, hit) in values and (b.run_id, hit) in values:
        ha, hb = values[(a.run_id, hit)] > 0, values[(b.run_id, hit)] > 0
        frame = pl.DataFrame({"user_id": users, "a": ha, "b": hb})
        # from B (the reference) to A: hit_to_miss are the users A lost, miss_to_hit those it won
        changed = frame.filter(pl.col("a") != pl.col("b")).select(
            "user_id",
            pl.when(pl.col("b"))
            .then(pl.lit("hit_to_miss"))
            .otherwise(pl.lit("miss_to_hit"))
            .alias("change"),
        )
        counts = {"hit_to_miss": int((hb & ~ha).sum()), "miss_to_hit": int((~hb & ha).sum())}
    overlap = _overlap(home, a, b, users, int(mk))
    return {
        "a": _describe(a),
        "b": _describe(b),
        "dataset": a.dataset,
        "split": a.split,
        "segment": segment,
        "users": len(users),
        "resamples": resamples,
        "seed": seed,
        "metrics": metrics,
        "overlap": overlap,
        **counts,
        "changed": changed,
    }


def _overlap(home: Path, a, b, users: pl.Series, k: int) -> dict[str, float | None]:
    from harness import stats
    from harness.recs import read_stored_lists

    lists = []
    for run in (a, b):
        path = Path(home) / run.recs_path if run.recs_path else None
        if path is None or not path.exists():
            return {f"jaccard@{k}": None, "rbo": None}
        lists.append(
            read_stored_lists(path, columns=["user_id", "item_id", "rank"])
            .with_columns(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))
            .filter(pl.col("user_id").is_in(users.implode()))
        )
    return stats.list_overlap(lists[0], lists[1], k=k)


def export_per_user(home: Path, run_id: str, out: Path) -> int:
    """Write one row per truth user of a run: user_id, cold, one column per name@k (.parquet or
    .csv); return the number of rows."""
    from harness.store.runs import get_run, user_metrics

    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"--out {out}: use a .parquet or .csv file name")
    run = get_run(home, run_id)
    if run.status != "ok":
        raise ConfigError(f"run {run.run_id} is {run.status}: it has no per-user metrics")
    frame = user_metrics(home, run.run_id)
    if frame.height == 0:
        raise ConfigError(f"run {run.run_id} stored no per-user metrics")
    frame = frame.select(
        pl.col("user_id"),
        (pl.col("segment") == "cold").alias("cold"),
        pl.exclude("user_id", "segment"),
    )
    frame = _typed_ids(home, run, frame).sort("user_id")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)
    return frame.height


def _typed_ids(home: Path, run, frame: pl.DataFrame) -> pl.DataFrame:
    """User ids back in the dataset's own type (the store keeps them as text)."""
    from harness.errors import NotFoundError
    from harness.store.splits import load_split

    try:
        split = load_split(home, run.dataset, run.split, parts=["test_users"])
    except NotFoundError:
        return frame
    if split.fingerprint != run.fingerprint or split.test_users is None:
        return frame
    dtype = split.test_users.schema["user_id"]
    if dtype == pl.Utf8:
        return frame
    cast = frame["user_id"].cast(dtype, strict=False)
    return frame.with_columns(cast) if cast.null_count() == 0 else frame
