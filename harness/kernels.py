"""Compiled loops (numba) over list rows, for the passes that numpy can only write with
whole-column temporaries.

At 1M users x top-100 every numpy step over the 100M list rows allocates and fills a fresh
column (about 2 s per fresh GiB on the reference machine), and finding each user's hits took a
packed key per row, a table and several gathers. One loop over the rows does the same reading
each row once and writing one value per user. Each kernel is the equivalent of the numpy
code it replaces, exact for counts and hits; the sums of novelty, diversity and the bootstrap add
in another order (or in float64 where the product was float32), equal to rounding (the callers
keep that code for ids these kernels do not take: strings, or
integer ids over a range wider than :data:`harness.pairs.MAX_WIDTH`, and inputs too small to pay
for loading numba: :func:`harness.pairs.compiled` decides). Compiled code is cached on disk
(``cache=True``), so only the first run of a new numba pays for compilation; loading it costs
about 1 s per process (import and the first call).

The kernels release the GIL (``nogil``): the reader validates one chunk while the scorer's
thread scores the previous one (:func:`harness.scoring.score_lists`)."""

from __future__ import annotations

import numpy as np
from numba import njit


def _compiled(fn):
    """``fn`` compiled without the GIL, its machine code cached on disk; where numba finds no
    writable cache directory (a read-only install and no writable home) it would refuse to
    define the function, so it is then compiled once per process instead."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)


@_compiled
def list_blocks(users, key, descending, items, lo, seen):  # pragma: no cover - compiled
    """(starts, first row out of order, first repeated row) of lists in row order.

    ``starts``: the first row of each run of one user (a block) and the row count at the end.
    Out of order: ``key`` rises within a block (``descending``: scores) or falls (ranks).
    Repeated: an item seen before in its block. Rows are numbered from 0; -1 means none.
    ``seen``: zeros, one per item id from ``lo`` to the highest (the caller allocates it:
    numpy's zeros map fresh pages lazily, numba's would write every one)."""
    n = len(users)
    starts = np.empty(n + 1, np.int64)
    blocks, out_of_order, repeated = 0, -1, -1
    for r in range(n):
        if r == 0 or users[r] != users[r - 1]:
            starts[blocks] = r
            blocks += 1
        elif out_of_order < 0 and (key[r] > key[r - 1] if descending else key[r] < key[r - 1]):
            out_of_order = r
        cell = items[r] - lo
        if seen[cell] == blocks:
            if repeated < 0:
                repeated = r
        else:
            seen[cell] = blocks
    starts[blocks] = n
    return starts[: blocks + 1].copy(), out_of_order, repeated


@_compiled
def repeated_in_blocks(items, starts, lo, seen, tag):  # pragma: no cover - compiled
    """The first row whose item its block (``starts``) listed before, or -1 (``seen``: as in
    :func:`list_blocks`). Block b marks its items with ``tag + b``: a block that goes on in
    the next call (the next chunk of a column) keeps its tag there."""
    for b in range(len(starts) - 1):
        for r in range(starts[b], starts[b + 1]):
            cell = items[r] - lo
            if seen[cell] == tag + b:
                return r
            seen[cell] = tag + b
    return -1


@_compiled
def block_hits(items, starts, truth_items, truth_starts, lo, mark):  # pragma: no cover - compiled
    """The rows whose item is among their block's relevant items, ascending (what
    :func:`harness.pairs.block_hits` returns).

    Block b's relevant items are ``truth_items[truth_starts[b]:truth_starts[b + 1]]``.
    ``mark``: zeros, one per item id from ``lo`` to the highest relevant one (block b marks its
    items with b + 1: no clearing between blocks)."""
    width = len(mark)
    rows = np.empty(len(items), np.int64)  # pages are touched only where written
    found = 0
    for b in range(len(starts) - 1):
        for t in range(truth_starts[b], truth_starts[b + 1]):
            mark[truth_items[t] - lo] = b + 1
        for r in range(starts[b], starts[b + 1]):
            cell = items[r] - lo
            if 0 <= cell < width and mark[cell] == b + 1:
                rows[found] = r
                found += 1
    return rows[:found].copy()


@_compiled
def exposure(items, ranks, starts, cold, first_k, lo, counts):  # pragma: no cover - compiled
    """counts[segment, j, item - lo] += 1 for each row, j = first_k[rank] (the smallest cut-off
    that includes the rank), segment 1 for the rows of a block that ``cold`` marks, else 0."""
    for b in range(len(starts) - 1):
        segment = 1 if cold[b] else 0
        for r in range(starts[b], starts[b + 1]):
            counts[segment, first_k[ranks[r]], items[r] - lo] += 1


@_compiled
def list_sums(items, ranks, starts, ks, lo, values, out):  # pragma: no cover - compiled
    """out[b, j] = the sum of ``values[item - lo]`` over block b's rows with rank <= ks[j]
    (ranks ascend within a block; ``ks`` ascending): what :func:`harness.metrics.lists.prefix_sums`
    gives for one value per item, summed row after row."""
    nk = len(ks)
    for b in range(len(starts) - 1):
        total, j = 0.0, 0
        for r in range(starts[b], starts[b + 1]):
            while j < nk and ranks[r] > ks[j]:
                out[b, j] = total
                j += 1
            if j == nk:
                break
            total += values[items[r] - lo]
        while j < nk:
            out[b, j] = total
            j += 1


@_compiled
def category_sums(
    items, ranks, starts, ks, lo, categories, weights, acc, squared, listed
):  # pragma: no cover - compiled
    """For block b and cut-off ks[j], over the rows with rank <= ks[j]: ``squared[b, j]``, the
    squared length of the sum of their items' unit category vectors, and ``listed[b, j]``, how
    many of those items have categories (what diversity takes from the prefix sums).

    Item ``lo + i`` has the categories ``categories[i]`` up to the first -1, each of weight
    ``weights[i]`` (0: no categories); ``acc``: zeros, one per category (the running sum,
    cleared after each block). Adding w to a sum s of one category adds w * (2 s + w) to the
    squared length: no pass over every category."""
    nk, width = len(ks), categories.shape[1]
    for b in range(len(starts) - 1):
        sq, m, j, end = 0.0, 0.0, 0, starts[b + 1]
        for r in range(starts[b], starts[b + 1]):
            while j < nk and ranks[r] > ks[j]:
                squared[b, j] = sq
                listed[b, j] = m
                j += 1
            if j == nk:
                end = r
                break
            i = items[r] - lo
            w = weights[i]
            if w > 0.0:
                m += 1.0
                for q in range(width):
                    cat = categories[i, q]
                    if cat < 0:
                        break
                    s = acc[cat]
                    sq += w * (2.0 * s + w)
                    acc[cat] = s + w
        while j < nk:
            squared[b, j] = sq
            listed[b, j] = m
            j += 1
        for r in range(starts[b], end):
            i = items[r] - lo
            for q in range(width):
                cat = categories[i, q]
                if cat < 0:
                    break
                acc[cat] = 0.0


@_compiled
def bit_sums(data, values, out):  # pragma: no cover - compiled
    """out[r] += the sum of ``values[j]`` over the users j whose bit is set in row r of ``data``
    (bytes; user j is bit 7 - j % 8 of byte j // 8, the order of ``np.unpackbits``), in float64.

    ``values``: (8 x bytes per row, columns), zero rows for padding. Byte by byte, the sums of
    all 256 subsets of its 8 users are tabled (256 additions per column, a table that stays in
    the first-level cache), then every row adds the entry of its byte: an eighth of the
    additions of adding user by user, and no weight matrix of resamples x users."""
    rows, n_bytes = data.shape
    cols = values.shape[1]
    table = np.zeros((256, cols))
    offset = np.zeros(256, np.int64)  # a lowest set bit -> its user within the byte
    for b in range(8):
        offset[1 << b] = 7 - b
    for g in range(n_bytes):
        for v in range(1, 256):
            low = v & -v
            user = 8 * g + offset[low]
            for c in range(cols):
                table[v, c] = table[v ^ low, c] + values[user, c]
        for r in range(rows):
            v = data[r, g]
            for c in range(cols):
                out[r, c] += table[v, c]
