"""Fast exact (user_id, item_id) pair lookups over large frames.

A two-column join of 100M list rows against the truth costs about 19 s and 6 GiB here; one
UInt64 key per pair and a hash-set membership test cost about 2 s and 0.6 GiB. Integer ids get an
exact packed key; other ids (strings) get a hash prefilter followed by an exact semi-join on the
few candidates, so results never depend on hash collisions."""

from __future__ import annotations

import sys

import numpy as np
import polars as pl

from harness.api import Columns
from harness.frames import as_int

USER, ITEM = Columns.USER, Columns.ITEM


# rows from which a compiled kernel pays for loading numba (about 1 s); None: never (the tests
# compare both ways)
COMPILED_FROM_ROWS: int | None = 1_000_000
MAX_WIDTH = 1 << 24  # item id range the kernels index directly (a 64 MB int32 table at most)
TABLE = 1 << 22  # cells of the per-slice lookup table of block_hits (4 MB: stays in cache)

PACKABLE = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32)


def compiled(rows: int, lo: int, hi: int) -> bool:
    """Whether a compiled kernel (:mod:`harness.kernels`) runs a pass over ``rows`` rows whose item
    ids span ``lo..hi``: when the range fits a table and the rows are many enough to pay for
    loading numba, or numba is loaded already. Otherwise the numpy code they replace runs: it
    gives the same values (tests/test_fast_paths.py)."""
    if hi - lo >= MAX_WIDTH or COMPILED_FROM_ROWS is None:
        return False
    return rows >= COMPILED_FROM_ROWS or "harness.kernels" in sys.modules


def packing(*frames: pl.DataFrame) -> tuple[int, int, int] | None:
    """(lowest user id, lowest item id, item id range) valid in every frame of `frames`, when both
    ids are signed or small unsigned integers whose ranges pack into 63 bits; else None."""
    if not all(f.schema[c] in PACKABLE for f in frames for c in (USER, ITEM)):
        return None
    bounds = [
        f.select(
            *(
                getattr(pl.col(c), fn)().alias(f"{c}{fn}")
                for c in (USER, ITEM)
                for fn in ("min", "max")
            )
        ).row(0, named=True)
        for f in frames
        if f.height
    ]
    if not bounds:
        return None
    lo = {c: int(min(b[f"{c}min"] for b in bounds)) for c in (USER, ITEM)}
    hi = {c: int(max(b[f"{c}max"] for b in bounds)) for c in (USER, ITEM)}
    width = hi[ITEM] - lo[ITEM] + 1
    if (hi[USER] - lo[USER] + 1) * width >= 2**63:
        return None
    return lo[USER], lo[ITEM], width


def packed_pairs(frame: pl.DataFrame) -> pl.Series | None:
    """(user - lowest user) * item range + (item - lowest item) for one frame, an exact UInt64-range
    key in an Int64 Series; None when ids do not pack (see :func:`packing`)."""
    packed = packing(frame)
    return None if packed is None else _packed(frame, packed)


def _packed(frame: pl.DataFrame, packed: tuple[int, int, int]) -> pl.Series:
    lo_user, lo_item, width = packed
    # numpy in place: every fresh 100M-row temporary costs about 1.5 s on these machines
    key = frame.get_column(USER).to_numpy().astype(np.int64)
    key -= lo_user
    key *= width
    key += frame.get_column(ITEM).to_numpy()
    key -= lo_item
    return pl.Series(key)


def hit_mask(frame: pl.DataFrame, pairs: pl.DataFrame) -> np.ndarray:
    """Boolean array over the rows of `frame`: whether its (user_id, item_id) occurs in `pairs`.

    Integer ids: the packed key of both, built in place in numpy, and one hash-set membership test
    (a polars expression for the key costs about twice as much). Other ids: a hash prefilter and
    an exact semi-join on the candidates, so results never depend on hash collisions."""
    packed = packing(frame, pairs)
    if packed is not None:
        keys = _packed(frame, packed)
        return keys.is_in(_packed(pairs, packed).implode()).to_numpy()
    hashed = pl.struct(USER, ITEM).hash(0)
    candidates = frame.select(hashed.is_in(pairs.select(hashed).to_series().implode())).to_series()
    mask = np.zeros(frame.height, dtype=bool)
    rows = (
        frame.select(USER, ITEM)
        .with_row_index("_row")
        .filter(candidates)
        .join(pairs.select(USER, ITEM), on=[USER, ITEM], how="semi")
        .get_column("_row")
        .to_numpy()
    )
    mask[rows] = True
    return mask


def block_hits(
    items: pl.Series, starts: np.ndarray, truth_items: pl.Series, truth_starts: np.ndarray
) -> np.ndarray:
    """Rows of ``items`` (blocks ``starts``) whose item is among the truth items of their block
    (blocks ``truth_starts`` of ``truth_items``, in the same order), ascending.

    Integer ids from 1M rows on: one compiled pass (:func:`harness.kernels.block_hits`). Fewer
    rows over a range of up to TABLE / 16: a slice of blocks at a time marks its truth
    pairs in a (blocks x item range) table that stays in cache and reads each row's cell: no
    key per row and no hash. Other ids: :func:`hit_mask` on (block, item) pairs."""
    n_blocks = len(starts) - 1
    span = id_range(items, truth_items)
    if (
        span is not None
        and items.dtype in PACKABLE  # UInt64 and a signed lowest id would mix into floats
        and truth_items.dtype in PACKABLE
        and compiled(items.len(), *span)
    ):
        from harness.kernels import block_hits as compiled_block_hits

        return compiled_block_hits(
            items.to_numpy(),
            starts.astype(np.int64),
            truth_items.to_numpy(),
            truth_starts.astype(np.int64),
            span[0],
            np.zeros(span[1] - span[0] + 1, np.int32),
        )
    if span is None or span[1] - span[0] + 1 > TABLE // 16:
        block = pl.Series(np.repeat(np.arange(n_blocks), np.diff(starts)))
        truth_block = pl.Series(np.repeat(np.arange(n_blocks), np.diff(truth_starts)))
        return np.flatnonzero(
            hit_mask(
                pl.DataFrame({USER: block, ITEM: items}),
                pl.DataFrame({USER: truth_block, ITEM: truth_items}),
            )
        )
    lo, width = span[0], span[1] - span[0] + 1
    per_slice = TABLE // width
    table = np.zeros(per_slice * width, dtype=np.bool_)
    values, truth_values = items.to_numpy(), truth_items.to_numpy()
    found = []
    for b0 in range(0, n_blocks, per_slice):
        b1 = min(n_blocks, b0 + per_slice)
        cell = np.arange(b1 - b0, dtype=np.int64) * width - lo  # each block's row of the table
        t0, t1 = truth_starts[b0], truth_starts[b1]
        marked = np.repeat(cell, np.diff(truth_starts[b0 : b1 + 1]))
        marked += truth_values[t0:t1]
        table[marked] = True
        r0, r1 = starts[b0], starts[b1]
        read = np.repeat(cell, np.diff(starts[b0 : b1 + 1]))
        read += values[r0:r1]
        found.append(np.flatnonzero(table[read]) + r0)
        table[marked] = False
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


def run_starts(values: pl.Series) -> np.ndarray:
    """The first row of each run of equal values (nulls equal each other), int64. Integer values
    without nulls compare in numpy: one byte a row of temporaries, where polars' shifted copy
    (four or eight bytes a row) would stay resident in its allocator for seconds."""
    if values.dtype.is_integer() and not values.null_count():
        found, offset, last = [], 0, None
        for chunk in values.get_chunks():  # numpy views, no copy of the column
            a = chunk.to_numpy()
            if len(a):
                new = np.empty(len(a), dtype=bool)
                new[0] = last is None or a[0] != last
                np.not_equal(a[1:], a[:-1], out=new[1:])
                found.append(np.flatnonzero(new) + offset)
                offset, last = offset + len(a), a[-1]
        return np.concatenate(found) if found else np.zeros(0, np.int64)
    return values.ne_missing(values.shift(1)).arg_true().to_numpy().astype(np.int64)


def id_range(*series: pl.Series) -> tuple[int, int] | None:
    """(lowest, highest) over integer series with at least one value, or None."""
    if not all(s.dtype.is_integer() for s in series):
        return None
    present = [s for s in series if s.len()]
    if not present:
        return None
    return min(as_int(s.min()) for s in present), max(as_int(s.max()) for s in present)


def distinct_in_blocks(items: pl.Series, starts: np.ndarray) -> bool:
    """True when no block of ``items`` (first rows ``starts``) repeats an item, from one compiled
    pass (:func:`harness.kernels.repeated_in_blocks`); False when one does, or may (ids that
    are not integers, or over a range too wide to index), for the exact check to decide."""
    n = items.len()
    if not n or items.dtype not in PACKABLE or items.null_count():
        return n == 0
    lo, hi = as_int(items.min()), as_int(items.max())
    if not compiled(n, lo, hi):
        return _distinct_in_matrix(items, starts, lo, hi)
    from harness.kernels import repeated_in_blocks

    starts = np.asarray(starts, dtype=np.int64)
    seen = np.zeros(hi - lo + 1, np.int32)
    offset = 0
    # chunk by chunk (numpy views, no copy of the column): a block cut by a chunk's end goes on
    # in the next chunk with its tag
    for chunk in items.get_chunks():
        end = offset + chunk.len()
        inside = starts[(starts > offset) & (starts < end)]
        block = int(np.searchsorted(starts, offset, side="right")) - 1  # block at the chunk start
        local = np.concatenate(([offset], inside, [end])) - offset
        if repeated_in_blocks(chunk.to_numpy(), local, lo, seen, block + 1) >= 0:
            return False
        offset = end
    return True


def _distinct_in_matrix(items: pl.Series, starts: np.ndarray, lo: int, hi: int) -> bool:
    """:func:`distinct_in_blocks` in numpy: each block's items sorted within their row of a
    (blocks x longest block) matrix and compared with their neighbour; False (undecided) when the
    blocks are too uneven for a matrix."""
    n = items.len()
    lengths = np.diff(np.append(starts, n))
    width = int(lengths.max())
    if hi - lo >= 2**31 - width - 1 or len(lengths) * width > 2 * n:
        return False
    values = items.to_numpy()
    # 16-bit values sort faster where the id range allows
    dtype = np.int16 if hi - lo < 2**15 - width - 1 else np.int32
    if (lengths == width).all():  # top-k lists of one length: the matrix is the column
        matrix = (values - lo).astype(dtype).reshape(len(lengths), width)
    else:  # pad each row with distinct negative values
        matrix = np.repeat(-np.arange(1, width + 1, dtype=dtype)[None, :], len(lengths), 0)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        matrix[rows, np.arange(n) - np.repeat(starts, lengths)] = values - lo
    matrix.sort(axis=1)
    return not (matrix[:, 1:] == matrix[:, :-1]).any()


def distinct_pairs(frame: pl.DataFrame) -> bool:
    """Whether no (user_id, item_id) pair of ``frame`` repeats (null ids compare equal). A frame
    sorted by user with integer items is checked block by block (:func:`distinct_in_blocks`);
    otherwise the packed keys, or the pairs, are counted."""
    user = frame.get_column(USER)
    if frame.height and user.null_count() == 0 and user.is_sorted():
        starts = run_starts(user)
        if distinct_in_blocks(frame.get_column(ITEM), starts):
            return True
    key = packed_pairs(frame)
    distinct = key.n_unique() if key is not None else frame.select(USER, ITEM).n_unique()
    return distinct == frame.height
