"""Metrics engine: every metric of DESIGN.md at every k, for segments all/warm/cold, in bounded
memory: :class:`Scorer` takes the lists a chunk of whole users at a time and keeps only per-user
values (one float per truth user and metric) and additive counts. Metric families live in one
module each and register themselves here through :func:`harness.metrics.registry.family`; each
formula is written once, in its function's docstring.

Every per-user value depends on that user's list alone and the means are taken over the per-user
values once all chunks are in, so the numbers do not depend on how the lists are chunked."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import polars as pl

from harness.api import Columns
from harness.config import SEGMENTS
from harness.frames import as_int
from harness.ids import align_ids, check_overlap

# the families register in import order, which is the report order
# isort: off
# isort: on

# the families register in import order, which is the report order
# isort: off
from harness.metrics import ranking  # noqa: F401
from harness.metrics import catalog, novelty, diversity  # noqa: F401

# isort: on
from harness.metrics.registry import REGISTRY, Context, Parts, PerUser, Totals, metric_id
from harness.metrics.relevant import Truth
from harness.metrics.relevant import consecutive as _consecutive
from harness.pairs import MAX_WIDTH, id_range, run_starts

DEFAULT_KS = (1, 5, 10, 20, 50, 100)
USER, ITEM, RANK = Columns.USER, Columns.ITEM, "rank"
CHUNK_ROWS = 2_000_000  # list rows per chunk: about 100 MB of working memory whatever the total
MARK_SLICE = 1 << 20  # truth items marked at a time in the table of _any_truth_item

__all__ = ["DEFAULT_KS", "REGISTRY", "Evaluation", "Scorer", "Truth", "evaluate", "metric_id"]


class Evaluation:
    """Metric values per segment, per-user values (for significance tests and slicing), notices.

    ``per_user`` (``user_id``, ``segment``, one column per metric id; null: no value) is built on
    first use from the scorer's arrays, so scoring that only prints means never copies them."""

    def __init__(
        self,
        metrics: dict[str, dict[str, float]],
        per_user: pl.DataFrame | None = None,
        notices: list[str] | None = None,
        *,
        users: pl.DataFrame | None = None,
        values: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.metrics = metrics
        self.notices = list(notices or [])
        self._per_user, self._users, self._values = per_user, users, values

    @property
    def per_user(self) -> pl.DataFrame:
        if self._per_user is None:
            assert self._users is not None and self._values is not None  # set when per_user is not
            self._per_user = self._users.select(USER, pl.col("segment").cast(pl.Utf8)).with_columns(
                pl.Series(c, v, nan_to_null=True) for c, v in self._values.items()
            )
            self._users = self._values = None
        return self._per_user

    def to_json(self) -> dict:
        """The ``--json`` shape of DESIGN.md: ``metrics`` for segment all, ``segments`` for each."""
        return {"metrics": self.metrics.get("all", {}), "segments": self.metrics}


def _segments(truth_users: pl.DataFrame, train, cold_users) -> pl.DataFrame:
    """Mark each truth user warm or cold: `cold_users` when given, else users absent from train."""
    if cold_users is not None:
        cold = pl.col(USER).is_in(cold_users.cast(truth_users.schema[USER]).implode())
    elif train is not None:
        cold = ~pl.col(USER).is_in(train.get_column(USER).unique().implode())
    else:
        cold = pl.lit(False)
    return truth_users.with_columns(
        pl.when(cold).then(pl.lit("cold")).otherwise(pl.lit("warm")).alias("segment")
    )


def _ks(ks) -> tuple[int, ...]:
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be positive integers, got {ks}")
    return ks


class Scorer:
    """Scores lists chunk by chunk against ``truth`` (``user_id, item_id``; a pair may repeat), or
    a :class:`Truth` made of it (then the caller may let go of the frame: the scorer keeps the
    compact form only).

    :meth:`add` takes normalised lists (``user_id, item_id, rank``) whose users are whole (a user's
    rows all in one call, contiguous, in rank order); :meth:`finish` returns the
    :class:`Evaluation`. Averages run over all truth users; a user without a list scores 0.
    Catalogue metrics (coverage, gini) and novelty need ``train``; diversity needs
    ``item_categories``. Memory: the truth, the per-user values and one chunk."""

    def __init__(
        self,
        truth: pl.DataFrame | Truth,
        *,
        ks=DEFAULT_KS,
        train: pl.DataFrame | None = None,
        cold_users: pl.Series | None = None,
        item_categories: pl.DataFrame | None = None,
        source: str = "recommendations",
        distinct: bool = False,
    ) -> None:
        self.ks = _ks(ks)
        self.source = source
        # A repeated pair counts once (n_u counts distinct items). ``distinct``: the caller has
        # checked already (validate_truth), the check is skipped.
        if not isinstance(truth, Truth):
            truth = Truth.of(truth, distinct=distinct)
        self.truth = truth
        users = pl.DataFrame({USER: truth.users, "n": np.diff(truth.starts).astype(np.int32)})
        # an enum, 4 bytes a user instead of a 16-byte string view (the per-user frame gets text)
        self.users = _segments(users, train, cold_users).with_columns(
            pl.col("segment").cast(pl.Enum(["warm", "cold"]))
        )
        self.user_ids = self.users.get_column(USER)
        self.train, self.item_categories = train, item_categories
        self.shared: dict = {}
        self.notices: list[str] = []
        self.values: dict[str, np.ndarray] = {}
        # family -> (positions of the users: an array or a slice, Parts)
        self.parts: dict[str, list[tuple[np.ndarray | slice, Parts]]] = {}
        self._truth_table: tuple[int, np.ndarray] | None = None  # see _any_truth_item
        self.totals: dict[str, Totals] = {}
        self.listed = 0  # truth users with a list
        # until a list user is a truth user and a listed item a truth item: what was seen instead
        self._outside: list[pl.Series] = []
        self._unmatched_items: list[pl.Series] | None = []

    def add(
        self, recs: pl.DataFrame, starts: np.ndarray | None = None, *, placed: bool = False
    ) -> None:
        """Score one chunk: ``recs`` as above; ``starts``: the first row of each user's block and
        the row count at the end, when the caller knows them; ``placed``: each rank is its row's
        place in its block (lists as :mod:`harness.recs` normalises them), so it is not checked."""
        recs = recs.select(USER, ITEM, RANK)
        # ids come aligned to the truth's comparison types (harness.ids); integer ids of two
        # widths are left as they are (the pair keys widen them)
        if recs.height and as_int(recs.get_column(RANK).max()) > self.ks[-1]:
            recs, starts = recs.filter(pl.col(RANK) <= self.ks[-1]), None
        if starts is None:
            starts = block_starts(recs)
        if len(starts) < 2:
            return
        block_users = recs.get_column(USER).gather(starts[:-1])
        if block_users.dtype != self.user_ids.dtype:  # integers of another width
            block_users = block_users.cast(self.user_ids.dtype, strict=False)  # null: no truth user
        found = block_users.is_not_null().to_numpy()
        pos = self.user_ids.search_sorted(block_users.fill_null(self.user_ids[0])).to_numpy()
        found &= pos < self.user_ids.len()
        found[found] = (self.user_ids.gather(pos[found]) == block_users.filter(found)).to_numpy()
        self._overlap(recs, block_users, found)
        if not found.all():  # lists of users outside the truth are not scored
            lengths = np.diff(starts)
            recs = recs.filter(pl.Series(np.repeat(found, lengths)))
            starts = np.append(0, np.cumsum(lengths[found])).astype(np.int64)
            pos = pos[found]
            if not len(pos):
                return
        self.listed += len(pos)
        ctx = Context(
            recs=recs,
            truth=self.truth.rows(pos),
            users=self.users[pos],
            ks=self.ks,
            train=self.train,
            item_categories=self.item_categories,
            notices=self.notices,
            starts=starts,
            shared=self.shared,
            placed=placed,
        )
        # users in truth order, one after another: a slice, not a scatter
        at = slice(pos[0], pos[-1] + 1) if _consecutive(pos) else pos
        for name, family in REGISTRY.items():
            result = family(ctx)
            if isinstance(result, PerUser):
                for col, values in result.columns.items():
                    if col not in self.values:
                        self.values[col] = np.full(self.user_ids.len(), result.missing)
                    self.values[col][at] = values
            elif isinstance(result, Parts):
                # the users' positions as a slice where they run on: nothing per user is kept
                self.parts.setdefault(name, []).append((at, result))
            elif isinstance(result, Totals):
                if name in self.totals:
                    self.totals[name].counts += result.counts
                else:
                    self.totals[name] = result

    def _overlap(self, recs: pl.DataFrame, block_users: pl.Series, found: np.ndarray) -> None:
        """Keep what :func:`harness.ids.check_overlap` needs, until lists and truth are seen to
        share a user and an item (usually in the first chunk)."""
        if not self.listed and not found.any():
            self._outside.append(block_users)
        if self._unmatched_items is not None:
            items = recs.get_column(ITEM).unique()
            if self._any_truth_item(items):
                self._unmatched_items = None
            else:
                self._unmatched_items.append(items)

    def _any_truth_item(self, items: pl.Series) -> bool:
        """Whether one of ``items`` is a truth item. Integer ids over a narrow range: a table
        of the truth's ids marked chunk by chunk of the column (a hash of 15M truth rows for
        their distinct items stayed resident in polars' allocator, more with more users)."""
        truth_items = self.truth.items  # in the narrowest integer type that holds them
        span = id_range(truth_items)
        if not (items.dtype.is_integer() and span and span[1] - span[0] < MAX_WIDTH):
            distinct = truth_items.unique().cast(self.truth.item_dtype)
            return bool(items.is_in(distinct.implode()).any())
        lo, hi = span
        if self._truth_table is None:  # marked once, read for every chunk until a match
            table = np.zeros(hi - lo + 1, dtype=bool)
            # a slice at a time: the int64 positions of the whole column would be 8 bytes a pair
            for start in range(0, truth_items.len(), MARK_SLICE):
                part = truth_items.slice(start, MARK_SLICE).to_numpy()
                table[part.astype(np.int64) - lo] = True
            self._truth_table = (lo, table)
        table = self._truth_table[1]
        listed = items.filter(items.is_between(lo, hi)).to_numpy().astype(np.int64) - lo
        return bool(table[listed].any())

    def _check_overlap(self) -> None:
        """Lists of no truth user are an error; lists of no truth item get a notice."""
        if not self.listed and self._outside:
            truth = self.truth.frame()  # every pair: this is an error path
            users = pl.concat(self._outside)
            check_overlap(
                pl.DataFrame(
                    {
                        USER: users,
                        ITEM: truth.get_column(ITEM).head(1).extend_constant(None, users.len() - 1),
                    }
                ),
                truth,
                source=self.source,
            )
        if self._unmatched_items:
            items = pl.concat(self._unmatched_items).unique()
            self.notices.extend(
                check_overlap(
                    pl.DataFrame(
                        {
                            USER: self.user_ids.head(1).extend_constant(
                                self.user_ids[0], items.len() - 1
                            ),
                            ITEM: items,
                        }
                    ),
                    self.truth.frame(),
                    source=self.source,
                )
            )

    def finish(self) -> Evaluation:
        """The metric values per segment (an empty segment is left out) and per user."""
        self._check_overlap()
        order = _metric_order(self.ks)
        if not self.values and not self.parts:  # no truth user has a list: the families still
            self._empty()  # report their values
        # the chunks' parts are joined into one array per part: the scorer lets go of them
        parts, self.parts = self.parts, {}
        columns = _Columns(order, self.values, parts, self.users)
        del parts
        segment = self.users.get_column("segment")
        metrics: dict[str, dict[str, float]] = {}
        for totals in self.totals.values():
            for seg, values in totals.finish(totals.counts).items():
                metrics.setdefault(seg, {}).update(values)
        present = set(segment.unique().to_list())
        segments = [s for s in SEGMENTS if s == "all" or s in present]
        for seg in SEGMENTS:
            if seg not in segments:
                metrics.pop(seg, None)
        masks = {
            seg: None if seg == "all" or present == {seg} else (segment == seg).to_numpy()
            for seg in segments
        }
        # a metric with no defined value in a segment (diversity without two categorised
        # items) is left out rather than reported as null
        means = columns.means(masks)
        for seg in segments:
            metrics[seg] = {**means[seg], **metrics.get(seg, {})}
        rank = {m: i for i, m in enumerate(order)}
        metrics = {
            s: dict(sorted(v.items(), key=lambda kv: rank.get(kv[0], len(rank))))
            for s, v in metrics.items()
            if s in SEGMENTS
        }
        return Evaluation(metrics, notices=self.notices, users=self.users, values=columns)

    def _empty(self) -> None:
        """Per-user values for a scoring where no truth user has a list: every family runs on one
        user's empty list, so that each reports what it reports for missing lists."""
        ctx = Context(
            recs=pl.DataFrame(
                {
                    USER: self.user_ids.head(0),
                    ITEM: self.truth.empty().get_column(ITEM),
                    RANK: pl.Series([], dtype=pl.Int32),
                }
            ),
            truth=self.truth.empty(),
            users=self.users.head(0),
            ks=self.ks,
            train=self.train,
            item_categories=self.item_categories,
            notices=self.notices,
            starts=np.zeros(1, dtype=np.int64),
            shared=self.shared,
        )
        for name, family in REGISTRY.items():
            result = family(ctx)
            if isinstance(result, PerUser):
                for col in result.columns:
                    self.values[col] = np.full(self.user_ids.len(), result.missing)
            elif isinstance(result, Parts):
                self.parts[name] = [(np.zeros(0, np.int64), result)]
            elif isinstance(result, Totals):
                self.totals[name] = result


def _in_user_order(
    chunks: list[tuple[np.ndarray | slice, Parts]], n_users: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One family's :class:`Parts` of every chunk (each with the positions of its users) as
    counts for all truth users (0 without a list) and parts with the users in truth order."""
    pos = np.concatenate(
        [np.arange(p.start, p.stop) if isinstance(p, slice) else p for p, _ in chunks]
    )
    counts = np.concatenate([part.counts for _, part in chunks])
    names = list(chunks[0][1].parts)
    arrays = {name: np.concatenate([part.parts[name] for _, part in chunks]) for name in names}
    all_counts = np.zeros(n_users, dtype=np.int32)
    all_counts[pos] = counts
    if len(pos) and not np.all(pos[1:] > pos[:-1]):  # chunks out of truth order: move the runs
        order = np.argsort(pos, kind="stable")
        counts = counts.astype(np.int64)
        begin = (np.cumsum(counts) - counts)[order]
        length = counts[order]
        rows = np.arange(int(length.sum())) + np.repeat(
            begin - (np.cumsum(length) - length), length
        )
        arrays = {name: values[rows] for name, values in arrays.items()}
    return all_counts, arrays


class _Columns(Mapping):
    """Metric id -> one value per truth user, in report order: stored values, or values derived
    from a family's :class:`Parts`. :meth:`means` derives them a slice of users at a time (small
    arrays that stay in cache: a fresh 1M-value column per metric cost about 0.15 s here);
    reading the mapping derives whole columns (the per-user frame)."""

    SLICE = 1 << 16  # users per slice of :meth:`means`

    def __init__(self, order, values, parts, users: pl.DataFrame) -> None:
        self.stored = values
        self.derive = {name: chunks[0][1].values for name, chunks in parts.items()}
        self.n = users.get_column("n").to_numpy()
        self.parts = {name: _in_user_order(chunks, len(self.n)) for name, chunks in parts.items()}
        # where each user's entries end (int32 while they fit: 4 bytes a user)
        self.ends = {
            name: np.cumsum(counts, dtype=np.int32 if counts.sum() < 2**31 else np.int64)
            for name, (counts, _) in self.parts.items()
        }
        self.source: dict[str, str | None] = dict.fromkeys(values)
        ids = set(order)
        for name, (counts, arrays) in self.parts.items():  # which family derives which ids
            probe = {p: v[:0] for p, v in arrays.items()}
            for c in self.derive[name](counts[:0], probe, self.n[:0], ids):
                self.source[c] = name
        self.order = [c for c in order if c in self.source]
        self._whole: dict[str, np.ndarray] = {}

    def _derived(self, u0: int, u1: int) -> dict[str, np.ndarray]:
        """Every derived column for the users u0..u1 (one call per family)."""
        out = {}
        for name, (counts, arrays) in self.parts.items():
            ends = self.ends[name]
            r0, r1 = (int(ends[u0 - 1]) if u0 else 0), (int(ends[u1 - 1]) if u1 else 0)
            ids = [c for c in self.order if self.source[c] == name]
            out.update(
                self.derive[name](
                    counts[u0:u1], {p: v[r0:r1] for p, v in arrays.items()}, self.n[u0:u1], ids
                )
            )
        return out

    def means(self, masks: dict[str, np.ndarray | None]) -> dict[str, dict[str, float]]:
        """segment -> metric id -> the mean over the segment's users (``masks``: None = all) of
        the values that are not NaN; a metric without any such value is left out. Sums run
        slice by slice in user order, so they do not depend on how the lists were chunked."""
        totals = {seg: dict.fromkeys(self.order, 0.0) for seg in masks}
        counts = {seg: dict.fromkeys(self.order, 0) for seg in masks}
        for u0 in range(0, len(self.n), self.SLICE):
            u1 = min(u0 + self.SLICE, len(self.n))
            derived = self._derived(u0, u1)
            for c in self.order:
                v = derived[c] if c in derived else self.stored[c][u0:u1]
                nan = np.isnan(v) if np.isnan(v).any() else None
                for seg, mask in masks.items():
                    where = None if mask is None else mask[u0:u1]
                    if nan is not None:
                        where = ~nan if where is None else where & ~nan
                    # the segment's values picked out, then summed: a reduce with where= takes
                    # numpy's generic masked loop, 3x slower (0.5 s of 0.7 at 957k users)
                    picked = v if where is None else v[where]
                    if len(picked):
                        totals[seg][c] += float(np.add.reduce(picked))
                        counts[seg][c] += len(picked)
        return {
            seg: {c: totals[seg][c] / counts[seg][c] for c in self.order if counts[seg][c]}
            for seg in masks
        }

    def __getitem__(self, c: str) -> np.ndarray:
        if self.source[c] is None:
            return self.stored[c]
        if not self._whole:  # every derived column at once: the per-user frame holds them all
            self._whole = self._derived(0, len(self.n))
        return self._whole[c]

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def block_starts(recs: pl.DataFrame) -> np.ndarray:
    """First row of each run of one user's rows, plus the row count at the end (int64)."""
    return np.append(run_starts(recs.get_column(USER)), recs.height).astype(np.int64)


def chunks(
    recs: pl.DataFrame, chunk_rows: int = CHUNK_ROWS
) -> Iterator[tuple[pl.DataFrame, np.ndarray]]:
    """``recs`` as chunks of whole users for :meth:`Scorer.add`: sorted by user and rank first
    unless each user's rows are already contiguous and in rank order."""
    recs = recs.select(USER, ITEM, RANK)
    starts = block_starts(recs)
    users = recs.get_column(USER).gather(starts[:-1])
    in_order = recs.select(
        (
            pl.col(USER).ne_missing(pl.col(USER).shift(1)) | (pl.col(RANK) >= pl.col(RANK).shift(1))
        ).all()
    ).item()
    if not in_order or users.n_unique() != users.len():
        recs = recs.sort(USER, RANK, maintain_order=True)
        starts = block_starts(recs)
    yield from split(recs, starts, chunk_rows)


def split(
    recs: pl.DataFrame, starts: np.ndarray, chunk_rows: int
) -> Iterator[tuple[pl.DataFrame, np.ndarray]]:
    """Slices of ``recs`` of about ``chunk_rows`` rows, cut at block boundaries (no copies)."""
    n_blocks = len(starts) - 1
    cuts = np.unique(
        np.append(np.searchsorted(starts, np.arange(0, recs.height, max(1, chunk_rows))), n_blocks)
    )
    for b0, b1 in zip(cuts[:-1], cuts[1:]):
        r0, r1 = starts[b0], starts[b1]
        yield recs.slice(r0, r1 - r0), starts[b0 : b1 + 1] - r0


def evaluate(
    recs: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    ks=DEFAULT_KS,
    train: pl.DataFrame | None = None,
    cold_users: pl.Series | None = None,
    item_categories: pl.DataFrame | None = None,
    source: str = "recommendations",
    dialect: str = "harness",
    chunk_rows: int = CHUNK_ROWS,
) -> Evaluation:
    """Score lists (``user_id, item_id, rank``) in memory against ``truth`` (``user_id,
    item_id``): :class:`Scorer` over ``recs`` cut into chunks of whole users.

    ``dialect`` other than ``harness`` reproduces another library's definitions
    (:mod:`harness.metrics.dialects`; there ``truth`` keeps repeated pairs and lists of users
    outside the truth matter)."""
    if dialect != "harness":
        from harness.metrics.dialects import evaluate_dialect

        return evaluate_dialect(
            recs,
            truth,
            ks=ks,
            dialect=dialect,
            train=train,
            cold_users=cold_users,
            item_categories=item_categories,
            source=source,
        )
    # ids compared exactly (harness.ids): a no-op when the caller aligned them already
    recs, truth = align_ids(recs.select(USER, ITEM, RANK), truth, source=source)
    train, item_categories = align_catalogue(train, item_categories, truth)
    scorer = Scorer(
        truth,
        ks=ks,
        train=train,
        cold_users=cold_users,
        item_categories=item_categories,
        source=source,
    )
    for chunk, starts in chunks(recs, chunk_rows):
        scorer.add(chunk, starts)
    return scorer.finish()


def align_catalogue(
    train: pl.DataFrame | None, item_categories: pl.DataFrame | None, truth: pl.DataFrame
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """The catalogue and the item categories with the id types of the (aligned) truth."""
    # Integer truth ids: the types chosen (harness.ids) depend on their range alone, so the
    # catalogue is aligned to a frame of the truth's lowest and highest ids, not to a cast copy
    # of the truth (124 MB at 1M users, that stayed resident through the scoring).
    if all(truth.schema[c].is_integer() for c in (USER, ITEM)) and truth.height:
        truth = pl.concat([truth.select(pl.all().min()), truth.select(pl.all().max())])
    if train is not None:
        train, _ = align_ids(train, truth, source="the catalogue")
    if item_categories is not None:
        item_categories, _ = align_ids(
            item_categories, truth, source="the item categories", columns=(ITEM,)
        )
    return train, item_categories


def _metric_order(ks) -> list[str]:
    return [metric_id(name, k) for name in REGISTRY.names() for k in ks]
