"""Reading and validating recommendation and truth files (DESIGN.md, "Recommendation and truth
files"). Everything downstream (metrics, storage) relies on the normalised frame made here:
``user_id, item_id, rank`` with rank 1-based and consecutive per user, no duplicates, no nulls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from harness.api import Columns
from harness.errors import DataError, HarnessError, ValidationError, found_columns, without_content
from harness.frames import as_int
from harness.ids import CSV_ID_SCHEMA, align_ids, normalise_ids, require_rows
from harness.pairs import (
    PACKABLE,
    compiled,
    distinct_in_blocks,
    distinct_pairs,
    packed_pairs,
    run_starts,
)

USER, ITEM, RANK, SCORE = Columns.USER, Columns.ITEM, "rank", Columns.SCORE
_SHOW = 3  # offending rows named in a message
CHUNK_ROWS = 2_000_000  # list rows read and validated at a time
# lists with scores, rows in rank order: the normalised lists but for the rank, which is then
# each row's place in its list (a worker's file the submit path keeps as the run's lists)
IN_RANK_ORDER = [USER, ITEM, SCORE]


def read_table(path: Path) -> pl.DataFrame:
    """Read a parquet or CSV file by its extension; DataError naming the file otherwise.

    CSV ids are read as strings (:mod:`harness.ids` decides later whether both files agree on
    integers), so "007" keeps its zeros."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pl.read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pl.read_csv(
                path, separator="\t" if suffix == ".tsv" else ",", schema_overrides=CSV_ID_SCHEMA
            )
    except Exception as exc:  # polars raises many kinds; the message is what matters to the user
        raise DataError(f"{path}: cannot read: {without_content(str(exc))}") from None
    raise DataError(f"{path}: unknown format {suffix!r} (use .parquet or .csv)")


def _rows(frame: pl.DataFrame, mask: pl.Series, offset: int = 0) -> str:
    """The first offending rows, numbered from 1 in the input (``offset`` rows precede ``frame``)."""
    idx = frame.with_row_index("_row").filter(mask).head(_SHOW)
    return ", ".join(
        f"row {offset + r['_row'] + 1} ({', '.join(f'{k}={r[k]!r}' for k in r if k != '_row')})"
        for r in idx.iter_rows(named=True)
    )


def _require(frame: pl.DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{source}: missing column(s) {', '.join(missing)} ({found_columns(frame.columns)})"
        )


def _check_ids(frame: pl.DataFrame, source: str, offset: int = 0) -> None:
    for col in (USER, ITEM):
        if frame.get_column(col).null_count():
            nulls = frame.get_column(col).is_null()
            raise ValidationError(
                f"{source}: null {col} at {_rows(frame.select(USER, ITEM), nulls, offset)}"
            )


def validate_recommendations(
    recs: pl.DataFrame, *, source: str, k: int | None = None, users: pl.Series | None = None
) -> tuple[pl.DataFrame, dict]:
    """Check a recommendation table and normalise it to ``user_id, item_id, rank[, score]``.

    ``score``: higher first, ties keep input order; else ``rank`` (ties keep input order too).
    Each user's rows come out contiguous, in rank order. Raises ValidationError naming ``source``
    and the first offending rows. (:class:`ListReader` does the same a chunk at a time.)"""
    _require(recs, (USER, ITEM), source)
    if SCORE not in recs.columns and RANK not in recs.columns:
        raise ValidationError(f"{source}: needs a 'score' or a 'rank' column")
    require_rows(recs, source=source, what="the recommendation list")
    _check_ids(recs, source)
    recs = normalise_ids(recs, source=source)
    if users is not None:
        recs, users = align_ids(recs, users, source=source, against="the users asked for")
    asked = _Asked(users) if users is not None else None
    out, lengths, _ = _normalise(recs, source=source, k=k, asked=asked)
    report = {"rows": out.height, "users_with_lists": lengths.height}
    if asked is not None:
        report["users_missing"] = asked.count - lengths.height
    if k is not None:
        report["short_lists"] = int((lengths.get_column("len") < k).sum())
    return out, report


class _Asked:
    """The users a list may name (sorted once; looked up by binary search, chunk after chunk)."""

    def __init__(self, users: pl.Series) -> None:
        self.users = users.drop_nulls().unique().sort()
        self.count = self.users.len()

    def unknown(self, list_users: pl.Series) -> pl.Series:
        list_users = list_users.cast(self.users.dtype, strict=False)
        pos = self.users.search_sorted(list_users).to_numpy()
        inside = pos < self.count
        found = np.zeros(list_users.len(), dtype=bool)
        found[inside] = (
            (self.users.gather(pos[inside]) == list_users.filter(pl.Series(inside)))
            .fill_null(False)
            .to_numpy()
        )
        return pl.Series(~found)


def _normalise(
    recs: pl.DataFrame, *, source: str, k: int | None, asked: _Asked | None, offset: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """Validate ``recs`` (whole users; ``offset`` input rows before it, for messages) and return
    the normalised lists, ``user_id, len`` per list, in list order, and whether the rows had to
    be sorted (they were not in lists, best first)."""
    _check_ids(recs, source, offset)
    by = SCORE if SCORE in recs.columns else RANK
    frame = _columns(recs, USER, ITEM, by)
    if not frame.schema[by].is_numeric():
        raise ValidationError(f"{source}: column {by} must be numeric, not {frame.schema[by]}")
    bad = frame.get_column(by).is_null()
    if frame.schema[by].is_float():
        bad = bad | frame.get_column(by).is_nan()
    if bad.any():
        raise ValidationError(f"{source}: null or NaN {by} at {_rows(frame, bad, offset)}")
    del bad
    # Models usually return each user's list contiguous and best first: then ranks, lengths and
    # the checks come from the block boundaries, without sorting 100M rows (32 s -> 6 s at 1M users).
    shown = frame
    checked = _compiled_blocks(frame, by)
    blocks = checked[:2] if checked is not None else _ordered_blocks(frame, by)
    if blocks is None:  # "_order" keeps the input row of each sorted row, for the messages
        frame = frame.with_row_index("_order").sort(
            [USER, by, "_order"], descending=[False, by == SCORE, False]
        )
        blocks = _ordered_blocks(frame, by)
        if blocks is None:  # sorted by user and rank: contiguous and ordered
            raise RuntimeError(f"{source}: lists not in blocks after sorting")
    starts, list_users = blocks
    # the compiled pass found no repeated item: nothing to look for
    dup = None if checked is not None and not checked[2] else _duplicates(frame, starts)
    if dup is not None:
        raise ValidationError(
            f"{source}: item listed twice for one user at "
            f"{_rows(shown, _input_rows(frame, dup), offset)}"
        )
    if asked is not None:
        unknown = asked.unknown(list_users)
        if unknown.any():
            rows = _input_rows(frame, _in_blocks(frame, unknown))
            raise ValidationError(f"{source}: users not asked for at {_rows(shown, rows, offset)}")
    lengths = pl.DataFrame({USER: list_users, "len": _block_lengths(starts, frame.height)})
    if k is not None:
        long = lengths.filter(pl.col("len") > k)
        if long.height:
            users = ", ".join(f"{u!r} ({n} items)" for u, n in long.head(_SHOW).iter_rows())
            raise ValidationError(f"{source}: more than k={k} items for user(s) {users}")
    out = _columns(
        frame.with_columns(_ranks(starts, lengths.get_column("len"), frame.height)),
        USER,
        ITEM,
        RANK,
        *([SCORE] if by == SCORE else []),
    )
    return out, lengths, "_order" in frame.columns


class NotGrouped(Exception):
    """A user's rows are in two places of a list file read in chunks (see :class:`ListReader`)."""


class ListReader:
    """Reads, validates and normalises lists a chunk of whole users at a time, so that memory does
    not grow with the file: iterating yields ``(lists, starts)`` as :meth:`Scorer.add
    <harness.metrics.Scorer.add>` takes them; ``report`` is complete once iteration ends.

    ``source``: a parquet file, a directory of parquet files (a partitioned data set), a CSV file,
    or a frame. The checks are those of :func:`validate_recommendations`, with rows numbered in
    the whole input. Each user's rows must be contiguous for a chunk to hold a whole user (models
    and harness write lists that way; a list sorted by score alone is not): otherwise iteration
    raises :class:`NotGrouped` at the end, and the caller reads the lists whole instead."""

    def __init__(
        self,
        source,
        *,
        name: str | None = None,
        k: int | None = None,
        users: pl.Series | None = None,
        truth: pl.DataFrame | None = None,
        against: str = "the truth",
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        self.source, self.k, self.chunk_rows = source, k, chunk_rows
        self.name = name or ("recommendations" if isinstance(source, pl.DataFrame) else str(source))
        self.users = users
        self.asked: _Asked | None = None
        self.truth, self.against = truth, against
        self.report: dict = {}
        # the input is a parquet file of the normalised lists but for their ranks (columns
        # IN_RANK_ORDER, and every chunk came out of validation in its own order and types):
        # then the file can be kept instead of written again (harness.scoring.score_lists)
        self.verbatim = False
        self._stored_schema: pl.Schema | None = None

    def _align(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Ids in the truth's and the asked users' comparison types (:mod:`harness.ids`); the
        truth and the users take the types of the first batch's alignment."""
        if self.truth is not None and not _both_integers(frame, self.truth):
            frame, self.truth = align_ids(frame, self.truth, source=self.name, against=self.against)
        else:
            frame = normalise_ids(frame, source=self.name)
        if self.users is not None:
            frame, self.users = align_ids(
                frame, self.users, source=self.name, against="the users asked for"
            )
            if self.asked is None:
                self.asked = _Asked(self.users)
        return frame

    def _scan(self) -> pl.LazyFrame:
        path = Path(self.source)
        if path.is_dir():
            if not any(path.rglob("*.parquet")):
                raise DataError(f"{path}: a directory without parquet files")
            return pl.scan_parquet(path / "**" / "*.parquet")
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            return pl.scan_parquet(path)
        if suffix in (".csv", ".tsv"):
            return pl.scan_csv(
                path, separator="\t" if suffix == ".tsv" else ",", schema_overrides=CSV_ID_SCHEMA
            )
        raise DataError(f"{path}: unknown format {suffix!r} (use .parquet or .csv)")

    def read(self) -> pl.DataFrame:
        """The whole input at once (the lists' columns only)."""
        return (
            pl.concat(list(self.batches()))
            if not isinstance(self.source, pl.DataFrame)
            else self.source
        )

    def batches(self) -> Iterator[pl.DataFrame]:
        """The input in batches of about ``chunk_rows`` rows, only the columns the lists use.

        Only integer ids are read a batch at a time: whether other ids compare as integers or as
        strings depends on every value (:mod:`harness.ids`), and their messages name rows of the
        whole file, so such a file is read whole (and a CSV file always is)."""
        if isinstance(self.source, pl.DataFrame):
            frame = self.source
            self._check_columns(frame.columns)
            require_rows(frame, source=self.name, what="the recommendation list")
            frame = frame.select(self.columns)
            _check_ids(frame, self.name)
            frame = self._align(frame)
            for start in range(0, max(frame.height, 1), self.chunk_rows):
                yield frame.slice(start, self.chunk_rows)
            return
        try:
            scan = self._scan()
            schema = scan.collect_schema()
            self._check_columns(schema.names())
            streamed = all(schema[c] in PACKABLE for c in (USER, ITEM)) and Path(
                self.source
            ).suffix.lower() not in (".csv", ".tsv")
            self.verbatim = (
                streamed and schema.names() == IN_RANK_ORDER and Path(self.source).is_file()
            )
            self._stored_schema = schema
            scan = scan.select(self.columns)
            if not streamed:
                whole = ListReader(
                    scan.collect(),
                    name=self.name,
                    k=self.k,
                    truth=self.truth,
                    users=self.users,
                    against=self.against,
                    chunk_rows=self.chunk_rows,
                )
                yield from whole.batches()
                self.truth, self.users, self.asked = whole.truth, whole.users, whole.asked
                return
            rows = 0
            for batch in self._read_batches(scan):
                rows += batch.height
                _check_ids(batch, self.name, rows - batch.height)
                yield self._align(batch)
        except HarnessError:
            raise
        except Exception as exc:  # polars raises many kinds; the message is what matters
            raise DataError(f"{self.source}: cannot read: {without_content(str(exc))}") from None
        if rows == 0:
            require_rows(pl.DataFrame(), source=self.name, what="the recommendation list")

    def _read_batches(self, scan: pl.LazyFrame) -> Iterator[pl.DataFrame]:
        """``scan`` in batches of about ``chunk_rows`` rows. A parquet file whose row groups are
        of about that size (half of it or more on average; the worker writes its lists so, each
        group ending with a user's rows) is read a group at a time (small ones joined): one
        buffer per column that needs no copy, and no user in two batches. Other inputs are cut
        every ``chunk_rows`` rows."""
        sizes = _row_group_sizes(self.source)
        # groups too large to hold, or small ones (each read of a slice parses the footer)
        if (
            not sizes
            or max(sizes) > 2 * self.chunk_rows
            or sum(sizes) < len(sizes) * (self.chunk_rows // 2)
        ):
            yield from scan.collect_batches(chunk_size=self.chunk_rows)
            return
        start = taken = 0
        for n in sizes:  # groups joined until half a chunk: small groups make few batches
            taken += n
            if taken >= self.chunk_rows // 2:
                yield scan.slice(start, taken).collect()
                start, taken = start + taken, 0
        if taken:
            yield scan.slice(start, taken).collect()

    def _check_columns(self, names) -> None:
        _require(pl.DataFrame(schema={n: pl.Null for n in names}), (USER, ITEM), self.name)
        if SCORE not in names and RANK not in names:
            raise ValidationError(f"{self.name}: needs a 'score' or a 'rank' column")
        self.columns = [USER, ITEM, SCORE if SCORE in names else RANK]

    def __iter__(self) -> Iterator[tuple[pl.DataFrame, np.ndarray]]:
        offset, pending = 0, None
        seen: list[pl.Series] = []
        rows = listed = short = 0
        batches = self.batches()
        batch = next(batches, None)
        while batch is not None:
            following = next(batches, None)
            frame = batch if pending is None else pl.concat([pending, batch], rechunk=False)
            batch = following
            if frame.height == 0:
                continue
            # the last user's rows may go on in the next batch: keep them for it
            last = (
                frame.height
                if following is None or _starts_another_user(following, frame)
                else frame.height - _trailing_run(frame)
            )
            pending = frame.slice(last) if last else frame
            if last == 0:
                continue
            # one contiguous buffer per column: every later numpy view of it is then free
            out, lengths = self._chunk(frame.slice(0, last).rechunk(), offset)
            offset += last
            seen.append(lengths.get_column(USER))
            rows, listed = rows + out.height, listed + lengths.height
            short += int((lengths.get_column("len") < self.k).sum()) if self.k else 0
            yield out, _starts(lengths)
        if len(seen) > 1 and _repeats(pl.concat(seen)):
            raise NotGrouped(self.name)
        self.report = {"rows": rows, "users_with_lists": listed}
        if self.asked is not None:
            self.report["users_missing"] = self.asked.count - listed
        if self.k is not None:
            self.report["short_lists"] = short

    def _chunk(self, frame: pl.DataFrame, offset: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        out, lengths, reordered = _normalise(
            frame, source=self.name, k=self.k, asked=self.asked, offset=offset
        )
        if self.verbatim:  # rows in their order (so ranks are places in a list), types kept
            self.verbatim = not reordered and out.drop(RANK).schema == self._stored_schema
        return out, lengths


def _repeats(users: pl.Series) -> bool:
    """Whether a user id occurs twice: integer ids sorted in numpy (4 bytes a user; a hash of
    the distinct ids costs several times that at the end of a long file)."""
    if users.dtype.is_integer() and not users.null_count():
        ids = np.sort(users.to_numpy())
        return bool((ids[1:] == ids[:-1]).any())
    return users.n_unique() != users.len()


def _both_integers(frame: pl.DataFrame, truth: pl.DataFrame) -> bool:
    """Integer ids on both sides (not UInt64) compare exactly as they are: no cast to Int64 of
    every batch (the pair keys of :mod:`harness.pairs` widen them on the fly)."""
    return all(frame.schema[c] in PACKABLE and truth.schema[c] in PACKABLE for c in (USER, ITEM))


def _starts_another_user(following: pl.DataFrame, frame: pl.DataFrame) -> bool:
    """Whether the next batch begins with a user other than ``frame``'s last one (null ids
    compare as the same user: they are kept together and named by the checks)."""
    if not following.height:
        return False
    first, last = following.get_column(USER)[0], frame.get_column(USER)[-1]
    return first is not None and last is not None and first != last


def _row_group_sizes(source) -> list[int]:
    """The row counts of the row groups of a parquet file; empty for other inputs."""
    path = Path(source) if not isinstance(source, pl.DataFrame) else None
    if path is None or not path.is_file() or path.suffix.lower() not in (".parquet", ".pq"):
        return []
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _trailing_run(frame: pl.DataFrame) -> int:
    """Rows at the end of ``frame`` that hold its last user."""
    user = frame.get_column(USER)
    last = user[-1]
    if last is None:
        return 1
    window = 1024  # look back over a growing tail, not the whole batch
    while True:
        tail = user.slice(max(0, user.len() - window))
        idx = (tail != last).fill_null(True).arg_true()
        if idx.len():
            return tail.len() - (as_int(idx[-1]) + 1)
        if tail.len() == user.len():
            return user.len()
        window *= 16


def _starts(lengths: pl.DataFrame) -> np.ndarray:
    return np.append(0, np.cumsum(lengths.get_column("len").to_numpy())).astype(np.int64)


def _compiled_blocks(frame: pl.DataFrame, by: str) -> tuple[pl.Series, pl.Series, bool] | None:
    """What :func:`_ordered_blocks` returns, plus whether a block repeats an item, from one
    compiled pass over the rows (:func:`harness.kernels.list_blocks`), for integer ids (items over
    a range it indexes) and numeric ``by``; None otherwise or when the lists are not in order."""
    user, item, key = frame.get_column(USER), frame.get_column(ITEM), frame.get_column(by)
    # UInt64 items would mix with the signed lowest id into floats inside the kernel
    numeric_key = key.dtype.is_integer() or key.dtype.is_float()
    if not (user.dtype.is_integer() and item.dtype in PACKABLE and numeric_key):
        return None
    if not item.len() or key.null_count():
        return None
    items = item.to_numpy()
    lo, hi = int(items.min()), int(items.max())  # numpy on the buffer: no second pass of polars
    if not compiled(len(items), lo, hi):
        return None
    from harness.kernels import list_blocks

    starts, out_of_order, repeated = list_blocks(
        user.to_numpy(), key.to_numpy(), by == SCORE, items, lo, np.zeros(hi - lo + 1, np.int32)
    )
    if out_of_order >= 0:
        return None
    first = pl.Series(starts[:-1], dtype=pl.UInt32 if len(starts) <= 2**32 else pl.UInt64)
    list_users = user.gather(first)
    if list_users.n_unique() != list_users.len():  # a user in two places
        return None
    return first, list_users, repeated >= 0


def _ordered_blocks(frame: pl.DataFrame, by: str) -> tuple[pl.Series, pl.Series] | None:
    """(first row of each user's block, its user) when every user's rows are contiguous and in
    rank order (score not increasing, rank not decreasing); else None."""
    user, key = frame.get_column(USER), frame.get_column(by)
    fast = user.dtype.is_integer() and (key.dtype.is_integer() or key.dtype.is_float())
    if not fast or user.null_count() or key.null_count():
        first = user.ne_missing(user.shift(1))
        in_order = (key <= key.shift(1)) if by == SCORE else (key >= key.shift(1))
        if not (first | in_order).all():
            return None
        starts = first.arg_true()
    else:  # numbers: numpy on the columns, a few passes over bytes and no shifted copies
        ids, values = user.to_numpy(), key.to_numpy()
        new = ids[1:] != ids[:-1]
        ordered = (values[1:] <= values[:-1]) if by == SCORE else (values[1:] >= values[:-1])
        ordered |= new
        if not ordered.all():
            return None
        starts = pl.Series(
            np.append(0, np.flatnonzero(new) + 1) if len(ids) else [], dtype=pl.UInt32
        )
    list_users = user.gather(starts)
    if list_users.n_unique() != list_users.len():  # a user in two places
        return None
    return starts, list_users


def _columns(frame: pl.DataFrame, *names: str) -> pl.DataFrame:
    """The named columns as a frame, without copying (a select of 100M rows took 1.3 s here)."""
    return pl.DataFrame([frame.get_column(n) for n in names])


def _ranks(starts: pl.Series, lengths: pl.Series, height: int) -> pl.Series:
    """1, 2, ... within each block: ones with a reset at each block start, cumulated in place."""
    width = lengths.max() if lengths.len() else 0
    if height and lengths.min() == width:  # lists of one length
        return pl.Series(
            RANK, np.tile(np.arange(1, as_int(width) + 1, dtype=np.int32), lengths.len())
        )
    rank = np.ones(height, dtype=np.int32)
    if height:
        rank[starts.to_numpy()[1:]] = 1 - lengths.to_numpy()[:-1]
        np.cumsum(rank, out=rank)
    return pl.Series(RANK, rank)


def _block_lengths(starts: pl.Series, height: int) -> pl.Series:
    ends = pl.concat([starts.slice(1), pl.Series([height], dtype=starts.dtype)])
    return (ends - starts).cast(pl.Int64)


def _input_rows(frame: pl.DataFrame, mask: pl.Series) -> pl.Series:
    """``mask`` over ``frame`` as a mask over the input rows (``frame`` may be the sorted copy)."""
    if "_order" not in frame.columns:
        return mask
    hit = frame.get_column("_order").filter(mask)
    return pl.Series([False] * frame.height).scatter(hit, True)


def _in_blocks(frame: pl.DataFrame, block_mask: pl.Series) -> pl.Series:
    """Row mask: the rows of the blocks where ``block_mask`` is true."""
    block = frame.select((pl.col(USER).ne_missing(pl.col(USER).shift(1))).cum_sum() - 1).to_series()
    return block.is_in(block_mask.arg_true().implode())


def _duplicates(frame: pl.DataFrame, starts: pl.Series) -> pl.Series | None:
    """Row mask of (user, item) pairs listed twice, or None when there are none.

    ``frame`` is in blocks (one per user, first rows ``starts``). With integer item ids, each
    block's items are sorted within their row of a (users x longest list) matrix and compared
    with their neighbour: small sorts that stay in cache, about 6 times cheaper than counting the
    distinct (user, item) keys of 100M rows. Other ids count (user, item) keys or struct hashes:
    distinct keys prove distinct pairs, and only a shortfall pays for the exact check."""
    if not distinct_in_blocks(frame.get_column(ITEM), starts.to_numpy().astype(np.int64)):
        key = packed_pairs(frame)
        distinct = (
            key.n_unique()
            if key is not None
            else frame.select(pl.struct(USER, ITEM).hash(0).n_unique()).item()
        )
        del key
        if distinct == frame.height:
            return None
        dup = frame.select(pl.struct(USER, ITEM).is_duplicated()).to_series()
        return dup if dup.any() else None  # a hash collision, not a duplicate
    return None


def read_stored_lists(path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """A run's stored lists (``HOME/runs/RUN_ID.parquet``): ``user_id, item_id, rank[, score]``,
    each user's rows in rank order. A worker's file kept as it was (:data:`IN_RANK_ORDER`) has
    no rank column: each row's place in its list is its rank, added here."""
    if RANK in pl.read_parquet_schema(path):
        return pl.read_parquet(path, columns=columns)
    lists = pl.read_parquet(path, columns=[c for c in columns if c != RANK] if columns else None)
    lists = lists.with_columns(_positions(lists).alias(RANK))
    return lists.select(columns or [USER, ITEM, RANK, *lists.columns[2:-1]])


def _positions(lists: pl.DataFrame) -> pl.Series:
    """1, 2, ... within each run of one user's rows."""
    starts = run_starts(lists.get_column(USER))
    starts = np.append(0, starts[starts > 0]) if lists.height else starts
    lengths = np.diff(np.append(starts, lists.height))
    return _ranks(pl.Series(starts), pl.Series(lengths), lists.height)


def validate_truth(truth: pl.DataFrame, *, source: str, keep_repeats: bool = False) -> pl.DataFrame:
    """Check a truth table (``user_id, item_id``); duplicates collapse (unless ``keep_repeats``:
    some metric dialects count a repeated pair twice), null ids are rejected."""
    _require(truth, (USER, ITEM), source)
    require_rows(truth, source=source, what="the truth")
    _check_ids(truth, source)
    truth = normalise_ids(truth.select(USER, ITEM), source=source)
    if keep_repeats:
        return truth
    # A truth without duplicates (the usual case) skips the full unique (6 s, 3 GiB at 15M rows).
    if distinct_pairs(truth):
        return truth
    return truth.unique(maintain_order=True)
