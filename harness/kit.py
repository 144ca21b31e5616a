"""Helpers every model needs: top-k selection, masking seen items, building the output frame,
formatting a progress report, and :class:`Bounds` for declaring the range of a parameter.

Plain numpy and polars on whole batches (no Python loops over users). Import them from
:mod:`harness.api`, which re-exports them as part of the plugin contract.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from harness.config import Columns

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = [
    "Bounds",
    "batches",
    "format_progress",
    "index_of",
    "mask_seen",
    "recommendations_frame",
    "top_k",
]


@dataclass(frozen=True)
class Bounds:
    """The range a numeric ``__init__`` parameter may take, declared in its annotation::

        def __init__(self, factors: Annotated[int, Bounds(ge=1)] = 64,
                     dropout: Annotated[float, Bounds(ge=0, lt=1)] = 0.1): ...

    ``ge``/``gt``: at least / greater than; ``le``/``lt``: at most / less than (numbers, given
    as literals so that harness can read them from the source without importing the plugin).
    ``harness submit -p`` checks a value against them before any worker starts and refuses one
    out of range with one ``error:`` line naming the parameter, the value and the bound (exit 2,
    no run stored); ``harness list`` shows them. ``None`` (for ``int | None``) is not checked.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __post_init__(self) -> None:
        for key in ("ge", "gt", "le", "lt"):
            value = getattr(self, key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value)
            ):
                raise TypeError(f"Bounds({key}=...) must be a number, got {value!r}")
        if self.ge is not None and self.gt is not None:
            raise TypeError("Bounds: give ge or gt, not both")
        if self.le is not None and self.lt is not None:
            raise TypeError("Bounds: give le or lt, not both")

    def __str__(self) -> str:
        """``>= 1``, ``> 0``, ``<= 10``, ``in [0, 1)``."""
        low = self.ge if self.ge is not None else self.gt
        high = self.le if self.le is not None else self.lt
        if low is not None and high is not None:
            left = "[" if self.ge is not None else "("
            right = "]" if self.le is not None else ")"
            return f"in {left}{_num(low)}, {_num(high)}{right}"
        if low is not None:
            return f"{'>=' if self.ge is not None else '>'} {_num(low)}"
        if high is not None:
            return f"{'<=' if self.le is not None else '<'} {_num(high)}"
        return "any value"

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is within the bounds; None and non-numbers are not checked (True)."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        if math.isnan(value):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )


def _num(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def index_of(ids: pl.Series, values: pl.Series) -> np.ndarray:
    """Positions of ``values`` in the sorted, distinct ``ids``; -1 where absent (vectorised)."""
    values = values.cast(ids.dtype, strict=False) if values.dtype != ids.dtype else values
    keys = ids.to_numpy()
    vals = values.to_numpy()
    if keys.dtype.kind in "iuf" and vals.dtype.kind in "iuf":
        pos = np.searchsorted(keys, vals)
        pos = np.clip(pos, 0, max(len(keys) - 1, 0))
        found = (len(keys) > 0) & (keys[pos] == vals) if len(keys) else np.zeros(len(vals), bool)
        return np.where(found, pos, -1).astype(np.int64)
    frame = pl.DataFrame({"id": ids, "pos": pl.int_range(ids.len(), dtype=pl.Int64, eager=True)})
    joined = pl.DataFrame({"id": values}).join(frame, on="id", how="left", maintain_order="left")
    return joined.get_column("pos").fill_null(-1).to_numpy()


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a dense (batch x items) score matrix, best first.

    Returns (indices, scores). Entries of -inf are never selected before finite ones; callers drop
    them with ``np.isfinite``. Ties keep the lower index first (stable).
    """
    k = min(k, scores.shape[1])
    if k <= 0:
        empty = np.empty((scores.shape[0], 0))
        return empty.astype(np.int64), empty.astype(scores.dtype)
    # The k-th largest score per row; everything above it is in, and ties at it are filled by
    # lowest index (argpartition alone would pick tied items arbitrarily).
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(axis=1, keepdims=True)
    chosen = above | tied
    # Only rows with more ties than room need the (slow) running count.
    crowded = np.flatnonzero(tied.sum(axis=1) > room[:, 0])
    if crowded.size:
        sub_tied = tied[crowded]
        keep = sub_tied & (np.cumsum(sub_tied, axis=1, dtype=np.int32) <= room[crowded])
        chosen[crowded] = above[crowded] | keep
    part = np.nonzero(chosen)[1].reshape(scores.shape[0], k)
    part_scores = np.take_along_axis(scores, part, axis=1)
    # lexsort: primary key descending score, secondary key ascending index (deterministic ties)
    order = np.lexsort((part, -part_scores), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_scores, order, axis=1)


def mask_seen(scores: np.ndarray, matrix: sp.csr_matrix, rows: np.ndarray) -> None:
    """Set to -inf, in place, the scores of items each row's user has in train.

    ``rows`` are matrix rows aligned with the score rows; -1 (cold users) masks nothing.
    """
    warm = np.flatnonzero(rows >= 0)
    if warm.size == 0:
        return
    sub = matrix[rows[warm]]
    batch_rows = np.repeat(warm, np.diff(sub.indptr))
    scores[batch_rows, sub.indices] = -np.inf


def recommendations_frame(
    users: pl.Series, item_idx: np.ndarray, scores: np.ndarray, item_ids: pl.Series
) -> pl.DataFrame:
    """Build the ``recommend`` output from a batch of top-k arrays (rows aligned with ``users``).

    Non-finite scores (masked items, padding) are dropped.
    """
    n, k = item_idx.shape
    flat_scores = scores.reshape(-1).astype(np.float64)
    keep = np.isfinite(flat_scores)
    user_pos = np.repeat(np.arange(n), k)[keep]
    return pl.DataFrame(
        {
            Columns.USER: users.gather(user_pos),
            Columns.ITEM: item_ids.gather(item_idx.reshape(-1)[keep]),
            Columns.SCORE: flat_scores[keep],
        }
    )


def batches(n: int, size: int) -> Iterator[slice]:
    """Slices ``[start, stop)`` covering ``range(n)`` in chunks of ``size``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def format_progress(fields: dict[str, Any]) -> str:
    """One line from a progress report: ``epoch 3/10 · loss 5.2 · valid_ndcg 0.08 · eta 40 s``."""
    parts: list[str] = []
    fields = dict(fields)
    if "epoch" in fields:
        epoch, epochs = fields.pop("epoch"), fields.pop("epochs", None)
        parts.append(f"epoch {epoch}" + (f"/{epochs}" if epochs else ""))
    eta = fields.pop("eta_seconds", None)
    for key, value in fields.items():
        if value is None:
            continue
        parts.append(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}")
    if eta is not None:
        parts.append(f"eta {eta:.0f} s")
    return " · ".join(p for p in parts if p)
