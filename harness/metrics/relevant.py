"""The truth as the scorer holds it while the lists stream past (the relevant items of each user):
distinct (user, item) pairs grouped by user, without a user column. (A module named ``truth*``
would look like a truth file to the sandbox test that searches the disk for one.)

A frame of the pairs repeats each user id once per relevant item, and holds item ids in 4 or 8
bytes: at 1M users x 15.5 pairs that is 124 MB that stays resident through the scoring, most of
what grew with the number of users (issue 12: 2M users may peak at 1.25x the 1M peak at most).
Here each user id is kept once (sorted), with the first row of its items, and the items in the
narrowest integer type that holds their range (2 bytes each for 20k items): about 39 MB per
million users. Frames are rebuilt only for one chunk's users (:meth:`Truth.rows`), and whole
only on paths that need every pair (ids compared as text, lists that match no truth id)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from harness.api import Columns
from harness.frames import as_int
from harness.pairs import PACKABLE, distinct_in_blocks, distinct_pairs, run_starts

USER, ITEM = Columns.USER, Columns.ITEM
READ_ROWS = 1 << 20  # truth rows read at a time by Truth.read

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
    items and the row count at the end (int32 while the rows fit); ``items``: the relevant items, user after user,
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
        # int32 while the rows fit: 4 bytes a user
        dtype = np.int32 if frame.height < 2**31 else np.int64
        starts = np.append(run_starts(user), frame.height).astype(dtype)
        items = frame.get_column(ITEM)
        return cls(user.gather(starts[:-1]), starts, _narrow(items), items.dtype)

    @classmethod
    def read(cls, path) -> Truth | None:
        """The truth of a parquet file of integer ids already grouped by user, without nulls or
        repeated pairs, read a batch of rows at a time; None for any other file (then
        :func:`harness.recs.validate_truth` reads it whole, and names the offending rows).

        Only the compact arrays grow with the file: a frame of the whole truth, once let go,
        stayed resident in polars' allocator for seconds (about 100 MB per million users at the
        start of the scoring), where the batches here are freed and reused one after another."""
        path = Path(path)
        if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
            return None
        try:
            scan = pl.scan_parquet(path)
            schema = scan.collect_schema()
            if not all(schema.get(c) in PACKABLE for c in (USER, ITEM)):
                return None
            scan = scan.select(USER, ITEM)
            ids = pl.col(ITEM)
            n, lo, hi = (
                scan.select(pl.len(), ids.min().alias("lo"), ids.max().alias("hi")).collect().row(0)
            )
            if not n or lo is None:
                return None
            items = np.empty(n, dtype=_narrowest(as_int(lo), as_int(hi), schema[ITEM]))
            users: list[np.ndarray] = []
            starts: list[np.ndarray] = []
            rows = 0
            for batch in scan.collect_batches(chunk_size=READ_ROWS):
                user, item = batch.get_column(USER), batch.get_column(ITEM)
                if user.null_count() or item.null_count():
                    return None
                first = run_starts(user)
                users.append(user.gather(first).to_numpy())
                starts.append(first + rows)
                items[rows : rows + batch.height] = item.to_numpy()
                rows += batch.height
        except Exception:  # unreadable: validate_truth says why
            return None
        if rows != n:
            return None
        user_ids, begin = np.concatenate(users), np.concatenate(starts)
        new = np.append(True, user_ids[1:] != user_ids[:-1])  # a run cut by a batch goes on
        user_ids, begin = user_ids[new], begin[new]
        if not (user_ids[1:] > user_ids[:-1]).all():  # not grouped by ascending user
            return None
        ends = np.append(begin, n).astype(np.int32 if n < 2**31 else np.int64)
        stored = pl.Series(ITEM, items)
        if not distinct_in_blocks(stored, begin.astype(np.int64)):  # repeated pairs
            return None
        return cls(pl.Series(USER, user_ids, dtype=schema[USER]), ends, stored, schema[ITEM])

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
            lo, hi = int(self.starts[pos[0]]), int(self.starts[pos[-1] + 1])
            items = self.items.slice(lo, hi - lo)
        else:
            begin = self.starts[pos].astype(np.int64)
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


def _narrowest(lo: int, hi: int, dtype) -> np.dtype:
    """The numpy type :func:`_narrow` stores ids from ``lo`` to ``hi`` of type ``dtype`` in."""
    return _narrow(pl.Series([lo, hi], dtype=dtype)).to_numpy().dtype


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
