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
    the hashed lookup: the same rows either way, for blocks of the users of any order."""
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
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pairs, "TABLE", table)
        got = block_hits(pl.Series(items), starts, pl.Series(truth_items), truth_starts)
    assert np.array_equal(got, expected)


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


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 200), uniform=st.booleans())
def test_exposure_by_item_id_equals_exposure_by_code(seed, chunk, uniform):
    """Coverage and gini per segment, with cold users and listed items outside the catalogue:
    the same counts whether the chunk counts by item id or by catalogue code."""
    recs, truth = _lists(seed, 30, 8 if uniform else None, 40, lo=-3)
    train = pl.DataFrame({"item_id": list(range(-3, 25))})  # items 25..36 are outside
    cold = truth.get_column("user_id").head(10)
    options = dict(ks=(1, 3, 8), train=train, cold_users=cold, chunk_rows=chunk)
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
