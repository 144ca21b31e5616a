"""Statistics of runs on one split: is a difference real, or noise of the users drawn?

Per-user values are the unit of every statistic (a user without a list counts as 0, as in the
means). Everything here works on a matrix ``values`` of shape (users, columns), one column per
run (or per run and metric), all on the same users; nothing here reads the store.

- **Bootstrap** (:func:`resample`): B "double-or-nothing" resamples of the users (Owen and
  Eckles 2012): each user is kept with weight 2 or dropped with probability 1/2, and a resample's
  mean is sum(w x) / sum(w). The weights have mean 1 and variance 1, as the Poisson(1) counts of
  the classical bootstrap at scale do, so the resampled means have the spread of the usual
  bootstrap; they cost one random bit per (resample, user) and no count table. One weight matrix
  serves every column, so the resampled means of two runs are *paired*: the percentile CI of
  the difference of two runs is the 2.5/97.5 percentiles of the difference of their resampled
  means.
- **Randomization test**: under "no difference", the two values of a user are exchangeable, so
  the sign of the user's difference d_u is a coin flip. With B random sign vectors s,
  T_b = mean(s d) and p = (1 + #{|T_b| >= |T|}) / (B + 1). Because sum(s (x_a - x_b)) =
  sum(s x_a) - sum(s x_b), one product of the sign matrix with ``values`` serves every pair.
  The signs are s = 2 bit - 1 of the same random bits as the bootstrap weights w = 2 bit (each
  procedure needs its bits to be fair coins, not to be independent of the other's), so one
  product bits @ values yields both. When no flip reaches the observed difference, p falls below
  what B flips resolve; it is then taken from the normal limit of the sign-flip distribution
  (mean 0, variance sum(d^2) / n^2), capped at 1 / (B + 1), so Holm's correction over many pairs
  can still decide.
- **Rank bands** (:func:`rank_bands`): for each pair of runs the two-sided p-value, Holm's
  correction over all pairs at ``alpha``; a run's band is [1 + runs significantly better,
  N - runs significantly worse].

The bits are drawn and used a chunk of users at a time (B x chunk float32, 64 MiB), on a thread
per core: memory does not grow with the number of users, and results depend on the seed and the
number of resamples only (chunk c draws from the generator seeded (seed, c)). On large boards a
compiled kernel (:func:`harness.kernels.bit_sums`) sums the same bits from per-byte tables in
float64 instead of the float32 product, about 3 times faster.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 1000
ALPHA = 0.05
RBO_P = 0.9
_CHUNK_CELLS = 1 << 24  # resamples x users per chunk: 64 MiB of float32 weights


@dataclass
class Resampled:
    """B resampled means of every column, and B sign-flip sums (see the module docstring)."""

    means: np.ndarray  # (B, columns): bootstrap means
    flips: np.ndarray  # (B, columns): sum over users of s_u x_u, s = +-1
    observed: np.ndarray  # (columns,): plain means
    users: int


def _chunk_pass(
    values: np.ndarray,
    resamples: int,
    seed: int,
    start: int,
    stop: int,
    index: int,
    compiled: bool = False,
):
    """(bits @ values[start:stop], bits per resample) for chunk ``index`` of the users;
    ``compiled``: summed by a compiled kernel, in float64 (the product is float32)."""
    width = stop - start
    padded = -(-width // 64) * 64
    raw = np.random.default_rng([seed, index]).bit_generator.random_raw(resamples * padded // 64)
    raw = raw.reshape(resamples, padded // 64)
    if compiled:  # the same bits, summed from tables of bytes (harness.kernels.bit_sums)
        from harness.kernels import bit_sums

        # a column of ones for the real users counts each resample's kept users
        table = np.zeros((padded, values.shape[1] + 1), dtype=np.float32)
        table[:width, :-1] = values[start:stop]
        table[:width, -1] = 1.0
        sums = np.zeros((resamples, table.shape[1]))
        bit_sums(raw.view(np.uint8), table, sums)
        return sums[:, :-1], sums[:, -1].astype(np.int64)
    bits = np.unpackbits(raw.view(np.uint8), axis=1, count=width)
    weights = np.empty((resamples, width), dtype=np.float32)
    np.copyto(weights, bits)
    kept = (
        np.bitwise_count(raw).sum(axis=1, dtype=np.int64)
        if padded == width
        else bits.sum(axis=1, dtype=np.int64)
    )
    return (weights @ values[start:stop]).astype(np.float64), kept


def resample(
    values: np.ndarray,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    threads: int | None = None,
) -> Resampled:
    """Bootstrap means and sign-flip sums of each column of ``values`` (users x columns)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    n, cols = values.shape
    if n == 0:
        raise ValueError("no users to resample")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    chunk = max(1024, _CHUNK_CELLS // resamples // 64 * 64)
    bounds = [(s, min(n, s + chunk)) for s in range(0, n, chunk)]
    threads = min(threads or os.cpu_count() or 1, len(bounds), 8)
    bx = np.zeros((resamples, cols))
    kept = np.zeros(resamples)
    # numba for large boards (1000 resamples x 957k users x 3 runs: 2.3-2.5 -> 0.7 CPU-s), or
    # where it is loaded already
    compiled = _compiled(n * resamples)
    job = lambda i: _chunk_pass(values, resamples, seed, *bounds[i], i, compiled)  # noqa: E731
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(job, range(len(bounds))))
    else:
        parts = [job(i) for i in range(len(bounds))]
    for a, b in parts:
        bx += a
        kept += b
    total = values.sum(axis=0, dtype=np.float64)
    means = bx / np.maximum(kept, 1.0)[:, None]  # sum(2 b x) / sum(2 b)
    # a resample that kept nobody (probability 2^-n, only for a handful of users) has no mean:
    # it stands for the observed one rather than for 0
    means[kept == 0] = total / n
    flips = 2.0 * bx - total[None, :]  # sum(s x) with s = 2 b - 1
    return Resampled(means=means, flips=flips, observed=total / n, users=n)


COMPILED_FROM_CELLS: int | None = 100_000_000  # resamples x users; None: never


def _compiled(cells: int) -> bool:
    """Whether the compiled kernel sums the resamples: for enough cells to pay for loading numba
    (about 1 s), or when it is loaded already."""
    if COMPILED_FROM_CELLS is None:
        return False
    return cells >= COMPILED_FROM_CELLS or "harness.kernels" in sys.modules


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> np.ndarray:
    """(lo, hi) per column of ``samples`` (resamples x columns): the percentile interval."""
    tail = (1 - level) / 2 * 100
    return np.percentile(samples, [tail, 100 - tail], axis=0).T


def flip_p_values(values: np.ndarray, res: Resampled, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Two-sided paired randomization p-value of column a vs column b for each pair."""
    n = values.shape[0]
    out = np.empty(len(pairs))
    B = res.flips.shape[0]
    for i, (a, b) in enumerate(pairs):  # pairs of runs, not users
        observed = abs(res.observed[a] - res.observed[b])
        flipped = np.abs(res.flips[:, a] - res.flips[:, b]) / n
        # float32 products: a flip that equals the observed difference may differ in the 7th digit
        tol = 1e-5 * (abs(res.observed[a]) + abs(res.observed[b])) + 1e-12
        exceed = int(np.count_nonzero(flipped >= observed - tol))
        if exceed:
            out[i] = (1 + exceed) / (B + 1)
        else:
            d = values[:, a].astype(np.float64) - values[:, b]
            sd = math.sqrt(float(d @ d)) / n
            z = observed / sd if sd > 0 else math.inf
            out[i] = min(1 / (B + 1), math.erfc(z / math.sqrt(2)))
    return out


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def rank_bands(means: np.ndarray, significant: np.ndarray) -> np.ndarray:
    """(lo, hi) per run: [1 + runs significantly better, N - runs significantly worse].

    ``significant`` is a symmetric boolean matrix (pair differs at the chosen level)."""
    means = np.asarray(means, dtype=float)
    n = len(means)
    better = (significant & (means[None, :] > means[:, None])).sum(axis=1)
    worse = (significant & (means[None, :] < means[:, None])).sum(axis=1)
    return np.stack([1 + better, n - worse], axis=1)


def board_statistics(
    values: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
    level: float = 0.95,
) -> dict:
    """CI of each run's mean and rank bands for a board (``values``: users x runs).

    Returns plain data: ``mean`` (runs,), ``ci`` (runs, 2), ``rank_band`` (runs, 2),
    ``p_values`` and ``p_holm`` (runs, runs; 1 on the diagonal), ``significant`` (runs, runs)."""
    values = np.asarray(values, dtype=np.float64)
    runs = values.shape[1]
    res = resample(values, resamples, seed)
    pairs = [(a, b) for a in range(runs) for b in range(a + 1, runs)]
    p = flip_p_values(values, res, pairs)
    adjusted = holm(p)
    p_mat = np.ones((runs, runs))
    h_mat = np.ones((runs, runs))
    for (a, b), raw, adj in zip(pairs, p, adjusted):
        p_mat[a, b] = p_mat[b, a] = raw
        h_mat[a, b] = h_mat[b, a] = adj
    significant = h_mat < alpha
    np.fill_diagonal(significant, False)
    mean = values.mean(axis=0)
    return {
        "mean": mean,
        "ci": percentile_ci(res.means, level),
        "rank_band": rank_bands(mean, significant),
        "p_values": p_mat,
        "p_holm": h_mat,
        "significant": significant,
        "resamples": resamples,
        "seed": seed,
        "alpha": alpha,
        "users": values.shape[0],
    }


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict]:
    """Per column of ``a`` and ``b`` (users x metrics, the same users and metrics): both means,
    delta = a - b, the paired-bootstrap CI of delta, the randomization p-value, wins/ties/losses."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    m = a.shape[1]
    values = np.concatenate([a, b], axis=1)
    res = resample(values, resamples, seed)
    pairs = [(i, m + i) for i in range(m)]
    p = flip_p_values(values, res, pairs)
    ci = percentile_ci(res.means[:, :m] - res.means[:, m:], level)
    d = a - b
    out = []
    for i in range(m):
        out.append(
            {
                "a": float(a[:, i].mean()),
                "b": float(b[:, i].mean()),
                "delta": float(a[:, i].mean() - b[:, i].mean()),
                "ci": [float(ci[i, 0]), float(ci[i, 1])],
                "p_value": float(p[i]),
                "wins": int((d[:, i] > 0).sum()),
                "ties": int((d[:, i] == 0).sum()),
                "losses": int((d[:, i] < 0).sum()),
            }
        )
    return out


def minimal_detectable_difference(
    values: np.ndarray, alpha: float = ALPHA, power: float = 0.8
) -> float:
    """Smallest difference of means a two-sided paired test detects with ``power``, for a run
    whose per-user values have the spread of ``values`` and a rival as good, correlated 0.5 with
    it (so the per-user differences have that spread too): (z_{1-alpha/2} + z_power) s / sqrt(n).
    Rivals more alike than that detect less, independent ones sqrt(2) times more."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * values.std(ddof=1) / math.sqrt(len(values)))


# -- list overlap --------------------------------------------------------------------------
def list_overlap(a, b, k: int, p: float = RBO_P) -> dict:
    """Mean Jaccard@k and rank-biased overlap of two runs' lists, over users in either.

    ``a`` and ``b`` are polars frames with user_id, item_id, rank (1-based). Jaccard@k per user:
    |A_k & B_k| / |A_k | B_k|. RBO (Webber, Moffat and Zobel 2010, extrapolated, eq. 32) at depth
    D = the shorter of the two longest lists: X_d = |A_d & B_d|,
    RBO = X_D / D p^D + (1 - p) / p sum_{d<=D} X_d / d p^d (1 for identical lists). A common item
    at ranks r_a, r_b counts in every X_d with d >= max(r_a, r_b), so the sum is a per-item
    suffix sum: no loop over users or depths."""
    import polars as pl

    depth = int(min(a["rank"].max() or 0, b["rank"].max() or 0))
    users = pl.concat([a.select("user_id"), b.select("user_id")]).unique()
    n_users = users.height
    if n_users == 0:
        return {f"jaccard@{k}": math.nan, "rbo": math.nan}
    ak = a.filter(pl.col("rank") <= k)
    bk = b.filter(pl.col("rank") <= k)
    inter = ak.join(bk, on=["user_id", "item_id"]).group_by("user_id").len("common")
    sizes = (
        users.join(ak.group_by("user_id").len("na"), on="user_id", how="left")
        .join(bk.group_by("user_id").len("nb"), on="user_id", how="left")
        .join(inter, on="user_id", how="left")
        .fill_null(0)
    )
    union = sizes["na"] + sizes["nb"] - sizes["common"]
    jac = (sizes["common"] / union.cast(pl.Float64)).fill_nan(1.0).fill_null(1.0)
    jaccard = float(jac.sum()) / n_users
    if depth == 0:
        return {f"jaccard@{k}": jaccard, "rbo": math.nan}
    d = np.arange(1, depth + 1)
    suffix = np.cumsum((p**d / d)[::-1])[::-1]  # G(m) = sum_{d=m..D} p^d / d
    common = (
        a.filter(pl.col("rank") <= depth)
        .join(b.filter(pl.col("rank") <= depth), on=["user_id", "item_id"])
        .select("user_id", pl.max_horizontal("rank", "rank_right").alias("m"))
    )
    m = common["m"].to_numpy().astype(np.int64)
    per_item = (1 - p) / p * suffix[m - 1] + (p**depth) / depth
    total = float(per_item.sum())
    return {f"jaccard@{k}": jaccard, "rbo": total / n_users}
