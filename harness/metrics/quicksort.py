"""numba's ``np.argsort(kind="quicksort")``, reproduced exactly over many lists at once in numpy.

ranx (0.3.21) orders each run by ``np.argsort(-scores)`` inside ``@njit``, which is numba's own
quicksort (numba/misc/quicksort.py, ``run_quicksort1``): an unstable sort, so the order it leaves
equal scores in is part of ranx's numbers. The algorithm, per list of n keys:

- a segment ``[low, high]`` (inclusive) with ``high - low >= 15`` is partitioned, a smaller one is
  insertion-sorted (stable);
- partition: median of three (swap ``low``/``mid`` if ``A[mid] < A[low]``, ``high``/``mid`` if
  ``A[high] < A[mid]``, ``low``/``mid`` again if ``A[mid] < A[low]``), pivot ``A[mid]`` stashed
  at ``high``; then Hoare's scan: ``i`` runs up over keys ``< pivot``, ``j`` down over keys
  ``> pivot``, the two are swapped while ``i < j``; the pivot goes back to ``i``, and
  ``[low, i - 1]`` and ``[i + 1, high]`` are sorted the same way.

Segments never overlap, so the order numba visits them in (its stack) does not change the result:
here every segment of every list is partitioned in the same round, breadth first, with array
operations (no loop over lists; about log2(n) rounds). One round's Hoare scan in closed form: with
``L`` the positions in ``[low, high - 1]`` of keys ``>= pivot`` in ascending order and ``Q`` those
of keys ``<= pivot`` in descending order, the scan swaps ``L[t]`` with ``Q[t]`` for every
``t < m``, m the number of t with ``L[t] < Q[t]`` (a prefix: L rises, Q falls), and stops at
``i = min(L[m], Q[m - 1])`` (``L[m] = high`` when there is none; ``Q[-1]`` is ``high``).

When every segment is below the threshold, each is insertion-sorted: the result is the stable sort
by (key, position), which is also how elements of different segments compare (a partition leaves
keys ``<= pivot`` left of it and ``>= pivot`` right of it).
"""

from __future__ import annotations

import numpy as np

SMALL = 15  # numba's SMALL_QUICKSORT: segments with high - low >= SMALL are partitioned


CHUNK_ROWS = 1 << 20  # lists are sorted about this many rows at a time (bounded memory)


def argsort(keys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For lists ``keys[starts[j]:starts[j + 1]]`` (``starts`` begins with 0 and ends with
    ``len(keys)``), the global indices in the order numba's ``np.argsort(list,
    kind="quicksort")`` returns them, list after list. NaN keys are not handled (harness rejects
    NaN scores)."""
    keys = np.asarray(keys, dtype=np.float64)
    starts = np.asarray(starts, dtype=np.int64)
    out = np.empty(keys.shape[0], dtype=np.int64)
    # whole lists of about CHUNK_ROWS rows at a time: the lists do not interact
    cuts = np.unique(np.searchsorted(starts, np.arange(0, keys.shape[0], CHUNK_ROWS)))
    cuts = np.append(cuts[cuts < starts.size - 1], starts.size - 1)
    for a, b in zip(cuts[:-1], cuts[1:]):
        lo, hi = starts[a], starts[b]
        out[lo:hi] = lo + _argsort(keys[lo:hi], starts[a : b + 1] - lo)
    return out


def _argsort(keys: np.ndarray, starts: np.ndarray) -> np.ndarray:
    n = keys.shape[0]
    order = np.arange(n, dtype=np.int64)  # order[p]: the element at position p (numba's R)
    lengths = np.diff(starts)
    big = lengths > SMALL
    low, high = starts[:-1][big], starts[1:][big] - 1
    while low.size:
        low, high = _partition(keys, order, low, high)
    list_of = np.repeat(np.arange(lengths.size), lengths)
    # insertion sort of what is left, and the order across segments: key, then position
    final = np.lexsort((keys[order], list_of))  # stable: equal keys keep their positions
    return order[final]


def _partition(
    keys: np.ndarray, order: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Partition the segments ``[low, high]`` of ``order`` in place (one numba ``partition``
    each); return the sub-segments that are partitioned again."""
    mid = (low + high) >> 1

    def key(pos):
        return keys[order[pos]]

    def swap(a, b, where):
        a, b = a[where], b[where]
        order[a], order[b] = order[b], order[a].copy()

    swap(low, mid, key(mid) < key(low))
    swap(high, mid, key(high) < key(mid))
    swap(low, mid, key(mid) < key(low))
    pivot = key(mid)
    swap(high, mid, np.ones(low.size, dtype=bool))
    # every position p in [low, high - 1] of every segment s, segments one after another
    size = high - low  # positions scanned per segment
    first = np.cumsum(size) - size  # where each segment starts in these arrays
    seg = np.repeat(np.arange(low.size), size)
    pos = np.arange(seg.size) + np.repeat(low - first, size)
    value = keys[order[pos]]
    piv = np.repeat(pivot, size)
    ge = ~(value < piv)  # where the i scan stops
    le = ~(piv < value)  # where the j scan stops
    del value, piv
    ge_before = np.cumsum(ge) - ge  # ge positions before p, from the start of all segments
    ge_rank = ge_before - np.repeat(ge_before[first], size)  # index t of p in L (if ge)
    del ge_before
    le_incl = np.cumsum(le)  # le positions up to p included, from the start of all segments
    le_start = le_incl[first] - le[first]  # ... before each segment
    le_total = np.append(le_start[1:], le_incl[-1]) - le_start  # ... in each segment
    # le positions after p inside its segment: the index t of p in Q (if le)
    le_after = np.repeat(le_total + le_start, size) - le_incl
    del le_incl
    swapped_ge = ge & (ge_rank < le_after)
    m = np.bincount(seg[swapped_ge], minlength=low.size)
    m_of = np.repeat(m, size)
    swapped_le = le & (le_after < m_of)
    # the t-th swap of a segment exchanges L[t] and Q[t]: pair them by slot (segment, t)
    slot0 = np.repeat(np.cumsum(m) - m, size)
    left = np.empty(int(m.sum()), dtype=pos.dtype)
    right = np.empty_like(left)
    left[(slot0 + ge_rank)[swapped_ge]] = pos[swapped_ge]
    right[(slot0 + le_after)[swapped_le]] = pos[swapped_le]
    order[left], order[right] = order[right], order[left].copy()
    # i = min(L[m], Q[m - 1]); L[m] is high where the segment has no (m+1)-th ge position
    i = high.copy()
    at_m = ge & (ge_rank == m_of)
    i[seg[at_m]] = pos[at_m]
    last_q = le & (le_after == m_of - 1)  # Q[m - 1], for segments with m > 0
    q = np.full(low.size, np.iinfo(np.int64).max)
    q[seg[last_q]] = pos[last_q]
    i = np.minimum(i, q)
    order[i], order[high] = order[high], order[i].copy()
    parts_low = np.concatenate([low, i + 1])
    parts_high = np.concatenate([i - 1, high])
    again = parts_high - parts_low >= SMALL
    return parts_low[again], parts_high[again]
