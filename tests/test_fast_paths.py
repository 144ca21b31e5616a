"""The fast paths of the scoring engine give exactly what their general versions give: hits from
the per-slice table (:func:`harness.pairs.block_hits`) versus the hashed pair lookup, exposure
counts by item id versus by catalogue code, lists of one length versus ragged ones, and the
distinct-pair checks; and a long last user of a batch stays whole."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ValidationError
from harness.metrics import catalog as catalog_module
from harness.pairs import block_hits, distinct_pairs, hit_mask
from harness.recs import ListReader, _trailing_run
from harness.scoring import score_lists


def _blocks(rng, n_blocks: int, n_items: int, lo: int, longest: int):
    """Random lists (distinct items per block) and truths over ``n_blocks`` blocks."""
    lengths = rng.integers(1, longest + 1, n_blocks)
    truth_lengths = rng.integers(1, 6, n_blocks)
    items = [rng.choice(n_items, size=min(n, n_items), replace=False) + lo for n in lengths]
    truth = [rng.choice(n_items, size=min(n, n_items), replace=False) + lo for n in truth_lengths]
    lengths = np.array([len(x) for x in items])
    truth_lengths = np.array([len(x) for x in truth])
    return (
        np.concatenate(items),
        np.append(0, np.cumsum(lengths)),
        np.concatenate(truth),
        np.append(0, np.cumsum(truth_lengths)),
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_blocks=st.integers(1, 300),
    n_items=st.sampled_from([3, 50, 2_000]),
    lo=st.sampled_from([0, -7, 10**6, 2**40]),
    wide=st.booleans(),
)
def test_block_hits_equal_the_pair_lookup(seed, n_blocks, n_items, lo, wide):
    """Narrow id ranges use the table (slices of a few blocks when TABLE is small), wide ones
    the hashed lookup, many rows the compiled pass: the same rows every way, for blocks of the
    users of any order."""
    import harness.pairs as pairs

    rng = np.random.default_rng(seed)
    # ranges over 4 ids take the hashed path when wide; else slices of a few blocks or many
    table = 16 * 4 if wide else max(16 * n_items, int(rng.integers(n_items, 5_000)))
    items, starts, truth_items, truth_starts = _blocks(rng, n_blocks, n_items, lo, 40)
    users = rng.permutation(n_blocks) * 3 - 5  # any ids, in any order: blocks are what count
    frame = pl.DataFrame({"user_id": np.repeat(users, np.diff(starts)), "item_id": items})
    pairs_frame = pl.DataFrame(
        {"user_id": np.repeat(users, np.diff(truth_starts)), "item_id": truth_items}
    )
    expected = np.flatnonzero(hit_mask(frame, pairs_frame))
    for way in ("numpy", "compiled"):
        with pytest.MonkeyPatch.context() as patch:
            _ways(patch, way)
            patch.setattr(pairs, "TABLE", table)
            got = block_hits(pl.Series(items), starts, pl.Series(truth_items), truth_starts)
        assert np.array_equal(got, expected), way


def test_block_hits_with_string_ids():
    """Block 0 lists a, b, c and its truth is c; block 1 lists a and its truth is b, a."""
    items = pl.Series(["a", "b", "c", "a"])
    got = block_hits(items, np.array([0, 3, 4]), pl.Series(["c", "b", "a"]), np.array([0, 1, 3]))
    assert got.tolist() == [2, 3]


def _lists(seed: int, n_users: int, length: int | None, n_items: int, lo: int = 0):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for u in range(n_users):
        n = length if length is not None else int(rng.integers(1, 9))
        for r, i in enumerate(rng.permutation(n_items)[:n]):
            rows.append((u, int(i) + lo, float(100 - r)))
        for i in rng.permutation(n_items)[: rng.integers(1, 6)]:
            truth.append((u, int(i) + lo))
    truth.append((n_users + 3, lo))  # a truth user without a list
    recs = pl.DataFrame(rows, schema=["user_id", "item_id", "score"], orient="row")
    return recs, pl.DataFrame(truth, schema=["user_id", "item_id"], orient="row")


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 200), uniform=st.booleans())
def test_exposure_by_item_id_equals_exposure_by_code(seed, chunk, uniform):
    """Coverage and gini per segment, with cold users and listed items outside the catalogue:
    the same counts whether the chunk counts by item id or by catalogue code."""
    recs, truth = _lists(seed, 30, 8 if uniform else None, 40, lo=-3)
    train = pl.DataFrame({"item_id": list(range(-3, 25))})  # items 25..36 are outside
    cold = truth.get_column("user_id").head(10)
    options = dict(ks=(1, 3, 8), train=train, cold_users=cold, chunk_rows=chunk)
    with pytest.MonkeyPatch.context() as patch:
        _ways(patch, "compiled")
        dense = score_lists(recs, truth, **options).evaluation.metrics
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(catalog_module, "DENSE_CELLS", 0)
        by_code = score_lists(recs, truth, **options).evaluation.metrics
    assert dense == by_code
    assert {"all", "warm", "cold"} <= set(dense) and dense["all"]["coverage@8"] > 0


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 200))
def test_lists_of_one_length_score_as_ragged_lists_do(seed, chunk):
    """Lists of one length take the matrix paths (ranks, duplicates, hits): every value and
    per-user value equals the same lists scored whole, and equals the lists with one extra
    row appended and removed again by a filter (ragged)."""
    recs, truth = _lists(seed, 25, 6, 30)
    whole = score_lists(recs, truth, ks=(1, 2, 6), chunk_rows=10**9).evaluation
    parts = score_lists(recs, truth, ks=(1, 2, 6), chunk_rows=chunk).evaluation
    assert parts.metrics == whole.metrics and parts.per_user.equals(whole.per_user)
    # one user one item short: the ragged paths, the same values for every other user
    ragged = recs.filter(~((pl.col("user_id") == 0) & (pl.col("score") == 95.0)))
    other = score_lists(ragged, truth, ks=(1, 2, 6), chunk_rows=chunk).evaluation.per_user
    keep = pl.col("user_id") != 0
    assert other.filter(keep).equals(whole.per_user.filter(keep))


def test_duplicates_in_lists_of_one_length_are_named_by_row():
    recs = pl.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2],
            "item_id": [5, 6, 7, 8, 9, 8],
            "score": [3.0, 2.0, 1.0, 3.0, 2.0, 1.0],
        }
    )
    truth = pl.DataFrame({"user_id": [1, 2], "item_id": [5, 8]})
    with pytest.raises(ValidationError, match=r"item listed twice for one user at row 4 .*row 6"):
        score_lists(recs, truth, ks=(3,), chunk_rows=3)


def test_distinct_pairs():
    one_length = pl.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [5, 6, 5, 6]})
    assert distinct_pairs(one_length)
    assert not distinct_pairs(one_length.with_columns(pl.Series("item_id", [5, 6, 6, 6])))
    ragged = pl.DataFrame({"user_id": [1, 2, 2, 2], "item_id": [5, 6, 7, 6]})
    assert not distinct_pairs(ragged)
    assert distinct_pairs(ragged.head(3))
    unsorted = pl.DataFrame({"user_id": [2, 1, 2], "item_id": ["a", "a", "a"]})
    assert not distinct_pairs(unsorted) and distinct_pairs(unsorted.head(2))


def test_a_long_last_user_stays_whole(tmp_path):
    """The last user of a batch runs over more rows than the look-back window."""
    frame = pl.DataFrame({"user_id": [1] * 3 + [2] * 5000, "item_id": range(5003)})
    assert _trailing_run(frame) == 5000
    assert _trailing_run(frame.tail(4000)) == 4000
    recs = frame.with_columns(pl.Series("rank", list(range(1, 4)) + list(range(1, 5001))))
    path = tmp_path / "recs.parquet"
    recs.write_parquet(path, row_group_size=1000)
    reader = ListReader(path, chunk_rows=1000)
    sizes = [np.diff(starts).tolist() for _, starts in reader]
    assert sorted(n for s in sizes for n in s) == [3, 5000]


def test_an_error_in_a_later_chunk_stops_the_scoring_thread(tmp_path):
    """Chunks are scored on a second thread while the next is validated: a bad row far into
    the file is still the one error reported, numbered in the whole file."""
    recs, truth = _lists(5, 40, 4, 30)
    bad = recs.with_columns(
        pl.when(pl.int_range(recs.height) == 150)
        .then(float("nan"))
        .otherwise(pl.col("score"))
        .alias("score")
    )
    path = tmp_path / "recs.parquet"
    bad.write_parquet(path)
    with pytest.raises(ValidationError, match=r"NaN score at row 151 "):
        score_lists(path, truth, ks=(1, 4), chunk_rows=8)


def _ways(patch: pytest.MonkeyPatch, way: str) -> None:
    """Compiled kernels for every pass (``compiled``) or never (``numpy``)."""
    import harness.pairs as pairs

    patch.setattr(pairs, "COMPILED_FROM_ROWS", 0 if way == "compiled" else None)


def _spy(patch: pytest.MonkeyPatch, module, names) -> dict[str, int]:
    """Count the calls of ``module``'s functions ``names`` (they still run)."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(module, name)

        def counted(*args, _name=name, _original=original):
            calls[_name] += 1
            return _original(*args)

        patch.setattr(module, name, counted)
    return calls


def _random_lists(seed: int, n_users: int, n_items: int, lo: int, gaps: bool):
    """Ragged lists (0-12 distinct items, ranks with gaps when ``gaps``), a truth with users
    without lists, and cold users."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 13, n_users)
    lengths[0] = max(lengths[0], 1)  # an empty list file is an error of its own
    users = np.repeat(np.arange(n_users) * 7 - 20, lengths)
    items = np.concatenate([rng.permutation(n_items)[:n] for n in lengths]) + lo
    steps = rng.integers(1, 4 if gaps else 2, len(items))
    recs = pl.DataFrame({"user_id": users, "item_id": items, "rank": steps.astype(np.int32)})
    recs = recs.with_columns(pl.col("rank").cum_sum().over("user_id"))
    n_truth = rng.integers(1, 7, n_users + 5)
    truth = pl.DataFrame(
        {
            "user_id": np.repeat((np.arange(n_users + 5) * 7 - 20)[::-1], n_truth),
            "item_id": np.concatenate([rng.permutation(n_items)[:n] for n in n_truth]) + lo,
        }
    )
    return recs, truth, truth.get_column("user_id").unique().head(n_users // 3)


@settings(max_examples=12, deadline=None)  # each example scores twice, in chunks of 7 rows too
@given(
    seed=st.integers(0, 10_000),
    n_users=st.integers(1, 120),
    n_items=st.sampled_from([15, 300]),
    lo=st.sampled_from([0, -40, 10**9]),
    gaps=st.booleans(),
    chunk=st.sampled_from([7, 100, 10**6]),
)
def test_compiled_kernels_score_as_numpy_does(seed, n_users, n_items, lo, gaps, chunk):
    """Every metric, segment and per-user value is the same whether the compiled kernels
    (harness.kernels) or the numpy code they replace run: hits, sums and first hits at ranks
    with gaps and cut-offs between them, exposure counts, and list validation."""
    recs, truth, cold = _random_lists(seed, n_users, n_items, lo, gaps)
    rng = np.random.default_rng(seed)
    # train users and items (novelty), items with 0-3 of 4 categories (diversity)
    train = pl.DataFrame(
        {
            "user_id": rng.integers(0, 30, 3 * n_items),
            "item_id": rng.integers(0, n_items // 2, 3 * n_items) + lo,
        }
    )
    categories = pl.DataFrame(
        {
            "item_id": np.arange(n_items) + lo,
            "categories": [
                list(rng.choice(4, rng.integers(0, 4), replace=False)) for _ in range(n_items)
            ],
        }
    )
    import harness.kernels as kernels

    results, calls = {}, {}
    names = ("list_blocks", "block_hits", "exposure", "list_sums", "category_sums")
    for way in ("compiled", "numpy"):
        with pytest.MonkeyPatch.context() as patch:
            _ways(patch, way)
            calls[way] = _spy(patch, kernels, names)
            results[way] = score_lists(
                recs,
                truth,
                ks=(1, 2, 5, 20),
                train=train,
                cold_users=cold,
                item_categories=categories,
                chunk_rows=chunk,
            ).evaluation
    assert min(calls["compiled"].values()) > 0 and max(calls["numpy"].values()) == 0
    compiled, numpy_ = results["compiled"], results["numpy"]
    assert compiled.metrics.keys() == numpy_.metrics.keys()
    assert "novelty@5" in numpy_.metrics["all"]
    # sums of novelty and diversity are added in another order: equal to rounding
    for segment, values in numpy_.metrics.items():
        assert compiled.metrics[segment] == pytest.approx(values, rel=1e-12, abs=1e-14)
    a, b = compiled.per_user, numpy_.per_user
    assert a.columns == b.columns and a.height == b.height == truth["user_id"].n_unique()
    for column in a.columns[2:]:
        exact = not column.startswith(("novelty", "diversity"))
        assert np.allclose(
            a[column].to_numpy(),
            b[column].to_numpy(),
            rtol=1e-12,
            atol=0 if exact else 1e-14,
            equal_nan=True,
        ), column


@pytest.mark.parametrize("way", ["compiled", "numpy"])
@pytest.mark.parametrize(
    "rows, message",
    [
        # user 1 lists item 6 twice (rows 2 and 4), between its other items
        (
            [(1, 5, 9.0), (1, 6, 8.0), (1, 7, 7.0), (1, 6, 6.0), (2, 6, 5.0)],
            r"item listed twice for one user at row 2 \(user_id=1, item_id=6, score=8.0\), "
            r"row 4 \(user_id=1, item_id=6, score=6.0\)$",
        ),
        # scores out of order within a user: sorted, then valid; user 2 in two places too
        (
            [(1, 5, 1.0), (2, 5, 3.0), (1, 6, 2.0), (1, 5, 0.5)],
            r"item listed twice for one user at row 1 \(user_id=1, item_id=5, score=1.0\), "
            r"row 4 \(user_id=1, item_id=5, score=0.5\)$",
        ),
    ],
)
def test_compiled_validation_names_the_same_rows(way, rows, message):
    recs = pl.DataFrame(rows, schema=["user_id", "item_id", "score"], orient="row")
    truth = pl.DataFrame({"user_id": [1, 2], "item_id": [5, 6]})
    with pytest.MonkeyPatch.context() as patch:
        _ways(patch, way)
        with pytest.raises(ValidationError, match=message):
            score_lists(recs, truth, ks=(3,))


@pytest.mark.parametrize("way", ["compiled", "numpy"])
def test_out_of_order_and_split_users_score_as_sorted(way):
    """Lists not in rank order, or a user in two places, are sorted first: the same values as
    the sorted file, by either way."""
    recs = pl.DataFrame(
        {
            "user_id": [1, 2, 1, 1, 2],
            "item_id": [5, 8, 6, 7, 9],
            "score": [1.0, 3.0, 2.0, 0.5, 4.0],
        }
    )
    truth = pl.DataFrame({"user_id": [1, 2], "item_id": [6, 8]})
    with pytest.MonkeyPatch.context() as patch:
        _ways(patch, way)
        got = score_lists(recs, truth, ks=(1, 3)).evaluation.metrics["all"]
    # user 1: 6, 5, 7 (hit at 1); user 2: 9, 8 (hit at 2)
    assert got["precision@1"] == pytest.approx(0.5)
    assert got["mrr@3"] == pytest.approx((1 + 1 / 2) / 2)
    assert got["ndcg@3"] == pytest.approx((1 + 1 / np.log2(3)) / 2)


@pytest.mark.parametrize("way", ["compiled", "numpy"])
def test_distinct_pairs_both_ways(way):
    with pytest.MonkeyPatch.context() as patch:
        _ways(patch, way)
        test_distinct_pairs()


def test_kernels_work_where_numba_cannot_cache(monkeypatch):
    """A read-only install without a writable home: numba refuses ``cache=True``; the kernels
    are then compiled in each process and still run."""
    import importlib.util

    import numba

    import harness.kernels

    real = numba.njit

    def refusing(*args, cache=False, **kwargs):
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **kwargs)

    monkeypatch.setattr(numba, "njit", refusing)
    spec = importlib.util.spec_from_file_location("kernels_uncached", harness.kernels.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    items = np.array([3, 4, 3, 5], dtype=np.int32)
    seen = np.zeros(3, np.int32)
    assert module.repeated_in_blocks(items, np.array([0, 2, 4]), 3, seen, 1) == -1
    assert module.repeated_in_blocks(items, np.array([0, 4]), 3, np.zeros(3, np.int32), 1) == 2


def test_numba_is_loaded_ahead_only_for_large_list_files(tmp_path, monkeypatch):
    """score_files starts loading numba on a second thread while it reads the truth when the
    list file is large enough for the compiled passes, and not for small files or frames."""
    import sys
    import types

    import harness.scoring as scoring

    started: list[str] = []
    monkeypatch.setattr(
        scoring.threading,
        "Thread",
        lambda **kw: types.SimpleNamespace(start=lambda: started.append(kw["name"])),
    )
    monkeypatch.delitem(sys.modules, "harness.kernels", raising=False)
    recs, truth = _lists(1, 5, 3, 10)
    path = tmp_path / "recs.parquet"
    recs.write_parquet(path)
    scoring._preload_kernels(path)
    scoring._preload_kernels(recs)
    assert started == []
    monkeypatch.setattr(scoring, "PRELOAD_BYTES", path.stat().st_size)
    scoring._preload_kernels(path)
    scoring._preload_kernels(tmp_path)  # a directory of parquet files
    assert started == ["harness-numba", "harness-numba"]


def test_submit_warms_up_only_for_lists_that_take_the_compiled_passes(monkeypatch):
    """The runner calls scoring.warm_up with the rows it asked for: a thread loads numba from
    COMPILED_FROM_ROWS rows on, never below it nor when the compiled passes are off."""
    import types

    import harness.pairs as pairs
    import harness.scoring as scoring

    started: list[str] = []
    monkeypatch.setattr(
        scoring.threading,
        "Thread",
        lambda **kw: types.SimpleNamespace(start=lambda: started.append(kw["name"])),
    )
    monkeypatch.setattr(pairs, "COMPILED_FROM_ROWS", 1000)
    scoring.warm_up(999)
    assert started == []
    scoring.warm_up(1000)
    assert started == ["harness-warm-up"]
    monkeypatch.setattr(pairs, "COMPILED_FROM_ROWS", None)
    scoring.warm_up(10**9)
    assert started == ["harness-warm-up"]


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), lo=st.sampled_from([0, -50, 10**9]))
def test_novelty_item_values_from_packed_keys_equal_the_pair_unique(seed, lo):
    """Train popularity for novelty (distinct users per item, repeated pairs once): the packed
    integer keys sorted in numpy give what polars' unique of the pairs gives (string ids)."""
    from harness.metrics.novelty import _item_values

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    train = pl.DataFrame(
        {"user_id": rng.integers(0, 30, n) * 3 + lo, "item_id": rng.integers(0, 25, n) + lo}
    )
    got_items, got = _item_values(train)
    want_items, want = _item_values(train.cast(pl.Utf8))
    assert dict(zip(got_items.cast(pl.Utf8).to_list(), got[:-1, 0])) == pytest.approx(
        dict(zip(want_items.to_list(), want[:-1, 0])), rel=0, abs=0
    )
    assert got[-1, 0] == want[-1, 0]
