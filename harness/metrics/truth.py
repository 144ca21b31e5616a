"""The truth as the scorer holds it while the lists stream past: distinct (user, item) pairs
grouped by user, without a user column.

A frame of the pairs repeats each user id once per relevant item, and holds item ids in 4 or 8
bytes: at 1M users x 15.5 pairs that is 124 MB that stays resident through the scoring, most of
what grew with the number of users (issue 12: 2M users may peak at 1.25x the 1M peak at most).
Here each user id is kept once (sorted), with the first row of its items, and the items in the
narrowest integer type that holds their range (2 bytes each for 20k items): about 43 MB per
million users. Frames are rebuilt only for one chunk's users (:meth:`Truth.rows`), and whole
only on paths that need every pair (ids compared as text, lists that match no truth id)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from harness.api import Columns
from harness.frames import as_int
from harness.pairs import PACKABLE, distinct_pairs, run_starts

USER, ITEM = Columns.USER, Columns.ITEM

# integer types from the narrowest: (type, bytes, lowest, highest value it holds)
_NARROW = (
    (pl.Int8, 1, -(2**7), 2**7 - 1),
    (pl.UInt8, 1, 0, 2**8 - 1),
    (pl.Int16, 2, -(2**15), 2**15 - 1),
    (pl.UInt16, 2, 0, 2**16 - 1),
    (pl.Int32, 4, -(2**31), 2**31 - 1),
    (pl.UInt32, 4, 0, 2**32 - 1),
)


@dataclass
class Truth:
    """``users``: the distinct truth users, ascending; ``starts``: the first row of each user's
    items and the row count at the end (int64); ``items``: the relevant items, user after user,
    stored in the narrowest integer type that holds them (the values are the ids);
    ``item_dtype``: the item ids' type, which frames made from the truth carry."""

    users: pl.Series
    starts: np.ndarray
    items: pl.Series
    item_dtype: pl.DataType

    @classmethod
    def of(cls, frame: pl.DataFrame, *, distinct: bool = False) -> Truth:
        """The truth of ``frame`` (``user_id, item_id``; a pair may repeat, unless ``distinct``:
        the caller checked, e.g. :func:`harness.recs.validate_truth`)."""
        frame = frame.select(USER, ITEM)
        if not frame.get_column(USER).is_sorted():
            frame = frame.sort(USER, maintain_order=True)
        # a repeated pair counts once: most truths have none (a full unique costs seconds)
        if not distinct and not distinct_pairs(frame):
            frame = frame.unique(maintain_order=True)
        user = frame.get_column(USER)
        starts = np.append(run_starts(user), frame.height).astype(np.int64)
        items = frame.get_column(ITEM)
        return cls(user.gather(starts[:-1]), starts, _narrow(items), items.dtype)

    @property
    def schema(self) -> dict[str, pl.DataType]:
        return {USER: self.users.dtype, ITEM: self.item_dtype}

    @property
    def packable(self) -> bool:
        """Integer ids whose comparison types (:func:`harness.ids.align_ids`) follow from their
        types alone: then aligning the lists needs :meth:`empty`, not the pairs."""
        return self.users.dtype in PACKABLE and self.item_dtype in PACKABLE

    def rows(self, pos: np.ndarray) -> pl.DataFrame:
        """The pairs of the users at ``pos``, grouped in that order (``user_id, item_id``)."""
        lengths = self.starts[pos + 1] - self.starts[pos]
        if len(pos) and consecutive(pos):  # one slice
            lo, hi = self.starts[pos[0]], self.starts[pos[-1] + 1]
            items = self.items.slice(lo, hi - lo)
        else:
            begin = self.starts[pos]
            offsets = np.cumsum(lengths) - lengths  # first position of each user's rows
            rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(
                begin - offsets, lengths
            )
            items = self.items.gather(rows)
        return pl.DataFrame(
            {
                USER: self.users.gather(np.repeat(pos, lengths)),
                ITEM: items.cast(self.item_dtype),
            }
        )

    def frame(self) -> pl.DataFrame:
        """Every pair, as a frame (for the paths that need them all)."""
        return self.rows(np.arange(self.users.len(), dtype=np.int64))

    def empty(self) -> pl.DataFrame:
        """No pairs, the truth's types."""
        return pl.DataFrame(
            {USER: self.users.head(0), ITEM: self.items.head(0).cast(self.item_dtype)}
        )

    def bounds(self) -> pl.DataFrame:
        """A frame that other tables align to (:func:`harness.ids.align_ids`) as to the truth:
        integer ids' types depend only on their range (the lowest and highest of each column),
        other ids on every value."""
        if not (self.users.dtype.is_integer() and self.item_dtype.is_integer()):
            return self.frame()
        if not self.users.len():
            return self.empty()
        return pl.DataFrame(
            {
                USER: self.users.gather([0, self.users.len() - 1]),
                ITEM: pl.Series([self.items.min(), self.items.max()]).cast(self.item_dtype),
            }
        )

    def cast(self, schema) -> Truth:
        """The truth with the id types of ``schema`` (what :func:`harness.ids.align_ids` made
        of :meth:`empty` or :meth:`frame`: always a cast of the columns)."""
        user, item = schema[USER], schema[ITEM]
        if user == self.users.dtype and item == self.item_dtype:
            return self
        ints = (user, item, self.users.dtype, self.item_dtype)
        if all(t.is_integer() for t in ints) and self.packable and item in PACKABLE:
            # a widening to Int64: order and values stay, only the types change
            return Truth(self.users.cast(user), self.starts, self.items, item)
        return Truth.of(self.frame().cast({USER: user, ITEM: item}))


def _narrow(items: pl.Series) -> pl.Series:
    """``items`` in the narrowest integer type that holds them, in one buffer."""
    if items.dtype in PACKABLE and items.len():
        lo, hi = as_int(items.min()), as_int(items.max())
        width = next((size for dtype, size, _, _ in _NARROW if dtype == items.dtype), 8)
        for dtype, size, low, high in _NARROW:
            if low <= lo and hi <= high:
                if size < width:
                    return items.cast(dtype)
                break
    return items.rechunk()


def consecutive(pos: np.ndarray) -> bool:
    """Whether ``pos`` is ``pos[0], pos[0] + 1, ..., pos[-1]``."""
    # Python ints: positions may be unsigned, and pos[-1] < pos[0] must not wrap around
    return bool(int(pos[-1]) - int(pos[0]) + 1 == len(pos) and np.all(pos[1:] > pos[:-1]))
