"""Torch helpers shared by the neural baselines (``dssm``, ``sasrec``).

Everything here is vectorised: histories are padded with numpy index arithmetic, feature tables
are encoded with polars joins, and nothing loops over users or interactions in Python.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import torch
from torch import nn

from harness.api import Columns, TrainData

U, I, T = Columns.USER, Columns.ITEM, Columns.TIMESTAMP


#: torch threads by default. OpenMP threads spin while they wait: on the shared 2-core machine
#: (load 8-15) two threads had not finished one sasrec epoch on synthetic-kion after 3 minutes,
#: one thread does it in 16 s (the small matrices of these models gain little from a second core)
THREADS = 1


def setup(data: TrainData, device: str | None = None, threads: int = THREADS) -> torch.device:
    """Seed torch and numpy from ``data.seed``; use ``threads`` cores (0: every core the run
    allows, ``data.n_threads``; never more than that); pick the device (CUDA when present unless
    ``device`` says otherwise)."""
    torch.manual_seed(data.seed)
    allowed = max(1, int(data.n_threads))
    torch.set_num_threads(min(threads, allowed) if threads > 0 else allowed)
    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device=cuda, but torch sees no GPU here (use device=auto or cpu)")
    return torch.device(device)


def ordered_interactions(data: TrainData) -> tuple[np.ndarray, np.ndarray]:
    """(user rows, item columns) of every interaction, sorted by user, then time, then item.

    Item columns are shifted by one so that 0 can mean padding. Missing timestamps sort first."""
    frame = data.interactions.select(U, I, T).with_columns(
        _u=pl.Series(data.user_index(data.interactions.get_column(U))),
        _i=pl.Series(data.item_index(data.interactions.get_column(I)) + 1),
    )
    frame = frame.sort(["_u", T, "_i"], nulls_last=False, maintain_order=True)
    return frame.get_column("_u").to_numpy().copy(), frame.get_column("_i").to_numpy().copy()


def positions(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """For row ids sorted ascending: (position of each entry within its row, row lengths)."""
    counts = np.bincount(rows, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(len(rows)) - starts[rows], counts


def padded_history(rows: np.ndarray, items: np.ndarray, n_rows: int, max_len: int) -> np.ndarray:
    """(n_rows x max_len) matrix of each row's last ``max_len`` items, right-aligned, 0-padded.

    ``rows`` must be sorted ascending and ``items`` in time order within each row."""
    pos, counts = positions(rows, n_rows)
    from_end = counts[rows] - 1 - pos  # 0 for the latest item
    keep = from_end < max_len
    out = np.zeros((n_rows, max_len), dtype=np.int64)
    out[rows[keep], max_len - 1 - from_end[keep]] = items[keep]
    return out


# -- feature tables -----------------------------------------------------------------------------

#: numeric columns become up to this many quantile buckets (a year turns into decade-ish bins)
NUMERIC_BUCKETS = 10
#: values of a list column beyond this many per row are dropped
LIST_WIDTH = 16


class FeatureCodes:
    """Categorical codes for a feature table (users or items), learned once, applied to any ids.

    Each usable column becomes a field: strings, categoricals and booleans map to their values;
    numeric columns map to quantile buckets; list columns (e.g. ``categories``) map each element.
    Near-unique columns (titles, free text) carry no shareable signal and are left out. Code 0 means
    unknown, missing or padding. ``encode(ids)`` gives an (n x width) int64 matrix per field.
    """

    def __init__(self, table: pl.DataFrame | None, key: str) -> None:
        self.key = key
        self.table = None
        self.fields: list[tuple[str, str, object, int]] = []  # name, kind, vocab/edges, levels
        if table is None or table.height == 0 or key not in table.columns:
            return
        self.table = table.unique(key, keep="first", maintain_order=True)
        n = self.table.height
        for name, dtype in self.table.schema.items():
            if name == key:
                continue
            col = self.table.get_column(name)
            if isinstance(dtype, pl.List):
                values = col.explode().drop_nulls().cast(pl.Utf8).unique().sort()
                if 0 < values.len():
                    self.fields.append((name, "list", values, values.len() + 1))
            elif dtype.is_numeric():
                vals = col.drop_nulls().cast(pl.Float64).to_numpy()
                if len(np.unique(vals)) <= NUMERIC_BUCKETS:
                    edges = np.unique(vals)
                else:
                    edges = np.unique(
                        np.quantile(vals, np.linspace(0, 1, NUMERIC_BUCKETS + 1)[1:-1])
                    )
                if len(vals):
                    self.fields.append((name, "numeric", edges, len(edges) + 2))
            elif dtype in (pl.Utf8, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
                values = col.drop_nulls().cast(pl.Utf8).unique().sort()
                if 0 < values.len() <= max(2, n // 2):
                    self.fields.append((name, "scalar", values, values.len() + 1))

    @property
    def levels(self) -> list[int]:
        return [f[3] for f in self.fields]

    def encode(self, ids: pl.Series) -> list[np.ndarray]:
        """One (len(ids) x width) int64 code matrix per field; 0 where an id has no row."""
        if not self.fields:
            return []
        ids = pl.Series(self.key, ids).cast(self.table.schema[self.key], strict=False)
        rows = pl.DataFrame({self.key: ids}).join(
            self.table, on=self.key, how="left", maintain_order="left"
        )
        out = []
        for name, kind, vocab, _ in self.fields:
            col = rows.get_column(name)
            if kind == "numeric":
                vals = col.cast(pl.Float64).to_numpy()
                codes = np.where(np.isnan(vals), 0, np.searchsorted(vocab, vals, side="right") + 1)
                out.append(codes.astype(np.int64)[:, None])
                continue
            lookup = pl.DataFrame({"v": vocab, "c": pl.int_range(1, vocab.len() + 1, eager=True)})
            if kind == "scalar":
                codes = (
                    pl.DataFrame({"v": col.cast(pl.Utf8)})
                    .join(lookup, on="v", how="left", maintain_order="left")
                    .get_column("c")
                    .fill_null(0)
                    .to_numpy()
                )
                out.append(codes.astype(np.int64)[:, None])
                continue
            flat = (
                pl.DataFrame({"v": col.cast(pl.List(pl.Utf8))})
                .with_row_index("r")
                .explode("v")
                .drop_nulls("v")
                .join(lookup, on="v", how="inner", maintain_order="left")
            )
            r = flat.get_column("r").to_numpy().astype(np.int64)
            pos, _ = positions(r, len(ids))
            keep = pos < LIST_WIDTH
            width = int(min(LIST_WIDTH, pos.max() + 1)) if len(pos) else 1
            codes = np.zeros((len(ids), width), dtype=np.int64)
            codes[r[keep], pos[keep]] = flat.get_column("c").to_numpy()[keep]
            out.append(codes)
        return out


class FieldEmbedding(nn.Module):
    """Sum over fields of the mean embedding of each field's non-zero codes."""

    def __init__(self, levels: list[int], dim: int) -> None:
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(n, dim, padding_idx=0) for n in levels)

    def forward(self, codes: list[torch.Tensor]) -> torch.Tensor:
        total = None
        for table, c in zip(self.tables, codes):
            present = (c > 0).float()
            pooled = (table(c) * present.unsqueeze(-1)).sum(1) / present.sum(1, keepdim=True).clamp(
                min=1
            )
            total = pooled if total is None else total + pooled
        return total


def to_tensors(codes: list[np.ndarray], device: torch.device) -> list[torch.Tensor]:
    return [torch.as_tensor(c, device=device) for c in codes]


def gather(codes: list[torch.Tensor], index: torch.Tensor) -> list[torch.Tensor]:
    return [c[index] for c in codes]


# -- inner validation (early stopping) ---------------------------------------------------------


def inner_validation(
    rows: np.ndarray, items: np.ndarray, n_rows: int, valid_users: int, ratio: float, seed: int
):
    """Hold out the latest ``ratio`` (at least one) of the items of up to ``valid_users`` seeded
    users with three or more interactions: a per-user temporal validation carved from train.

    ``rows``/``items`` as from :func:`ordered_interactions` (1-based items). Returns
    (fit rows, fit items, valid) where valid = (user rows, truth, seen): ``truth`` and ``seen``
    are CSR matrices (one row per validation user, 0-based item columns) of the held-out items
    not already in the user's fit part, and of the fit part's items; valid is None when no user
    qualifies or ``valid_users`` is 0."""
    import scipy.sparse as sp

    pos, counts = positions(rows, n_rows)
    eligible = np.flatnonzero(counts >= 3)
    if valid_users <= 0 or eligible.size == 0:
        return rows, items, None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(eligible, min(valid_users, eligible.size), replace=False))
    n_out = np.zeros(n_rows, dtype=np.int64)
    n_out[chosen] = np.maximum(1, np.floor(counts[chosen] * ratio)).astype(np.int64)
    held = pos >= counts[rows] - n_out[rows]
    slot = np.full(n_rows, -1, dtype=np.int64)
    slot[chosen] = np.arange(chosen.size)
    n_items = int(items.max()) if len(items) else 0
    shape = (chosen.size, n_items)

    def matrix(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix(
            (np.ones(int(mask.sum()), np.float32), (slot[rows[mask]], items[mask] - 1)), shape=shape
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    seen = matrix(~held & (slot[rows] >= 0))
    truth = matrix(held)
    truth = truth - truth.multiply(seen)
    truth.eliminate_zeros()
    return rows[~held], items[~held], (chosen, truth.tocsr(), seen)


def valid_ndcg(score, history: np.ndarray, truth, seen, k: int = 10, batch: int = 256) -> float:
    """Mean NDCG@k over the validation users with a non-empty truth. ``score(history_rows)`` gives
    a (batch x items) score matrix; items in ``seen`` are masked as the leaderboard's lists do."""
    from harness.api import top_k

    n_truth = np.diff(truth.indptr)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])
    total, users = 0.0, 0
    for start in range(0, history.shape[0], batch):
        stop = min(start + batch, history.shape[0])
        scores = np.asarray(score(history[start:stop]), dtype=np.float32)
        width = scores.shape[1]
        s = seen[start:stop]
        scores[np.repeat(np.arange(stop - start), np.diff(s.indptr)), s.indices] = -np.inf
        idx, _ = top_k(scores, k)
        t = truth[start:stop][:, :width]
        hits = np.asarray(t[np.arange(stop - start)[:, None], idx].todense()) > 0
        has = n_truth[start:stop] > 0
        dcg = (hits * discount[: idx.shape[1]]).sum(1)
        total += float((dcg[has] / ideal[np.minimum(n_truth[start:stop][has], k)]).sum())
        users += int(has.sum())
    return total / max(users, 1)
