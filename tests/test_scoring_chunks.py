"""Chunked scoring (harness.scoring, ListReader, Scorer): the numbers do not depend on how the
lists are cut into chunks, users split across read batches stay whole, rows in messages are
numbered in the whole file, and lists whose users are not grouped still score exactly."""

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import ValidationError
from harness.metrics import evaluate
from harness.recs import ListReader, read_stored_lists, validate_recommendations
from harness.scoring import score_lists

KS = (1, 2, 3, 5)


def _random_case(seed: int, n_users: int = 40, n_items: int = 30, as_str: bool = False):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for u in range(n_users):
        for r, i in enumerate(rng.permutation(n_items)[: rng.integers(0, 8)]):
            rows.append((u, int(i), float(10 - r)))
        for i in rng.permutation(n_items)[: rng.integers(1, 6)]:
            truth.append((u, int(i)))
    truth.append((n_users + 5, 0))  # a truth user without a list
    cast = str if as_str else int
    recs = pl.DataFrame(
        [(cast(u), cast(i), s) for u, i, s in rows],
        schema=["user_id", "item_id", "score"],
        orient="row",
    )
    tf = pl.DataFrame(
        [(cast(u), cast(i)) for u, i in truth], schema=["user_id", "item_id"], orient="row"
    )
    train = pl.DataFrame(
        {
            "user_id": [cast(u % 7) for u in range(n_items)],
            "item_id": [cast(i) for i in range(n_items)],
        }
    )
    cats = pl.DataFrame(
        {
            "item_id": [cast(i) for i in range(n_items)],
            "categories": [[f"c{i % 3}", f"c{i % 5}"] for i in range(n_items)],
        }
    )
    return recs, tf, train, cats


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 60), as_str=st.booleans())
def test_chunked_equals_unchunked_exactly(seed, chunk, as_str):
    """Every metric, every segment and every per-user value is bit-for-bit the same whatever
    the chunk size: chunks of a few rows split users across read batches, and coverage, gini,
    novelty and diversity (catalogue-wide or list-wide) are among them."""
    recs, truth, train, cats = _random_case(seed, as_str=as_str)
    cold = truth.get_column("user_id").head(3)
    options = dict(ks=KS, train=train, cold_users=cold, item_categories=cats)
    whole = score_lists(recs, truth, chunk_rows=10**9, **options)
    parts = score_lists(recs, truth, chunk_rows=chunk, **options)
    assert parts.evaluation.metrics == whole.evaluation.metrics
    assert parts.evaluation.per_user.equals(whole.evaluation.per_user)
    assert parts.report == whole.report
    assert {"coverage@5", "gini@5", "novelty@5", "diversity@5"} <= set(
        whole.evaluation.metrics["all"]
    )
    # and the in-memory API gives the same numbers as the file path
    normalised = validate_recommendations(recs, source="r")[0]
    assert (
        evaluate(normalised, truth, chunk_rows=chunk, **options).metrics == whole.evaluation.metrics
    )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), group=st.integers(1, 40), chunk=st.integers(1, 60))
def test_list_files_score_alike_whatever_their_row_groups(tmp_path_factory, seed, group, chunk):
    """A list file is read a row group or a few at a time where its groups are of about a chunk,
    else cut every chunk: either way users split across groups stay whole and every number is
    the one of the lists scored whole."""
    recs, truth, train, cats = _random_case(seed)
    path = tmp_path_factory.mktemp("groups") / "recs.parquet"
    recs.write_parquet(path, row_group_size=group)
    options = dict(ks=KS, train=train, item_categories=cats)
    whole = score_lists(recs, truth, chunk_rows=10**9, **options)
    parts = score_lists(path, truth, chunk_rows=chunk, **options)
    assert parts.evaluation.metrics == whole.evaluation.metrics
    assert parts.evaluation.per_user.equals(whole.evaluation.per_user)
    assert parts.report == whole.report


def test_users_split_across_batches_stay_whole(tmp_path):
    recs, truth, train, _ = _random_case(1)
    path = tmp_path / "recs.parquet"
    recs.write_parquet(path, row_group_size=3)
    reader = ListReader(path, chunk_rows=5)
    seen = []
    for chunk, starts in reader:
        users = chunk.get_column("user_id").gather(starts[:-1]).to_list()
        assert chunk.get_column("user_id").n_unique() == len(users)
        seen.extend(users)
    assert len(seen) == len(set(seen)) == recs.get_column("user_id").n_unique()
    assert reader.report == {"rows": recs.height, "users_with_lists": len(seen)}


def test_messages_number_rows_in_the_whole_file(tmp_path):
    frame = pl.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3, 3],
            "item_id": [1, 2, 1, 2, 5, 6, 5],
            "score": [3.0, 2.0, 3.0, 2.0, 3.0, 2.0, 1.0],
        }
    )
    path = tmp_path / "recs.parquet"
    frame.write_parquet(path)
    with pytest.raises(ValidationError, match=r"item listed twice for one user at row 5 .*row 7"):
        list(ListReader(path, chunk_rows=2))
    nan = frame.with_columns(
        pl.when(pl.int_range(7) == 5).then(float("nan")).otherwise(pl.col("score")).alias("score")
    )
    with pytest.raises(ValidationError, match=r"NaN score at row 6 "):
        list(ListReader(nan, chunk_rows=2))
    with pytest.raises(ValidationError, match=r"users not asked for at row 5 "):
        list(ListReader(frame.head(6), chunk_rows=2, users=pl.Series([1, 2])))


def test_partitioned_directory_and_ungrouped_users(tmp_path):
    recs, truth, train, cats = _random_case(2)
    expected = score_lists(recs, truth, ks=KS, train=train).evaluation.metrics
    parts = tmp_path / "recs"
    parts.mkdir()
    users = recs.get_column("user_id")
    recs.filter(users < 20).write_parquet(parts / "part-0.parquet")
    recs.filter(users >= 20).write_parquet(parts / "part-1.parquet")
    assert (
        score_lists(parts, truth, ks=KS, train=train, chunk_rows=7).evaluation.metrics == expected
    )
    # grouped users in descending order: each chunk's truth rows are looked up, not sliced
    descending = recs.sort("user_id", "score", descending=[True, True], maintain_order=True)
    assert (
        score_lists(descending, truth, ks=KS, train=train, chunk_rows=7).evaluation.metrics
        == expected
    )
    # a user's rows in two places (sorted by score, not by user): read whole, same numbers
    shuffled = recs.sort("score", "item_id")
    assert (
        score_lists(shuffled, truth, ks=KS, train=train, chunk_rows=7).evaluation.metrics
        == expected
    )
    # and a duplicate across the two places is still found
    dup = pl.concat([recs, recs.head(1)])
    with pytest.raises(ValidationError, match="item listed twice"):
        score_lists(dup, truth, ks=KS, chunk_rows=7)


def test_integer_ids_of_two_widths_are_compared_exactly():
    """Int64 lists against an Int32 truth: no cast of the lists, a user beyond Int32 is in no
    truth (not a wrapped-around one), the numbers equal those of lists of the truth's width."""
    truth = pl.DataFrame(
        {
            "user_id": pl.Series([1, 2], dtype=pl.Int32),
            "item_id": pl.Series([10, 20], dtype=pl.Int32),
        }
    )
    wide = pl.DataFrame({"user_id": [1, 2, 2**32 + 1], "item_id": [10, 21, 10], "rank": [1, 1, 1]})
    narrow = wide.head(2).with_columns(pl.col("user_id", "item_id").cast(pl.Int32))
    a = score_lists(wide, truth, ks=(1,)).evaluation.metrics
    b = score_lists(narrow, truth, ks=(1,)).evaluation.metrics
    assert a == b and a["all"]["hit_rate@1"] == 0.5


def test_worker_asks_for_lists_in_batches_and_appends_them(tmp_path, monkeypatch):
    from harness.runner import worker

    calls = []

    class Model:
        def recommend(self, users, k):
            calls.append(users.to_list())
            ids = users.to_list()
            return pl.DataFrame(
                {
                    "user_id": [u for u in ids for _ in range(k)],
                    "item_id": [i for _ in ids for i in range(k)],
                    "score": [float(k - i) for _ in ids for i in range(k)],
                }
            )

    monkeypatch.setattr(worker, "RECOMMEND_USERS", 3)
    monkeypatch.setattr("harness.recs.CHUNK_ROWS", 3)
    path = tmp_path / "recs.parquet"
    worker._recommend_in_batches(Model(), pl.Series("user_id", list(range(7))), 2, path)
    assert calls == [[0, 1, 2], [3, 4, 5], [6]]
    written = pl.read_parquet(path)
    assert written.height == 14 and written.get_column("user_id").to_list() == [
        u for u in range(7) for _ in range(2)
    ]
    # row groups of about 3 rows that end with a user's rows: 2 users (4 rows) each, and the
    # batch of users 0-2 (6 rows) in two groups
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [4, 2, 4, 2, 2]

    class Drifting(Model):
        def recommend(self, users, k):
            out = super().recommend(users, k)
            return out if users[0] == 0 else out.with_columns(pl.col("item_id").cast(pl.Utf8) + "x")

    with pytest.raises(TypeError, match="one batch of users"):
        worker._recommend_in_batches(Drifting(), pl.Series("user_id", list(range(7))), 2, path)


def _worker_file(path, recs: pl.DataFrame, batch_users: int = 7):
    """``recs`` as the worker writes a model's lists (in batches of users)."""
    from harness.runner import worker

    by_user = recs.partition_by("user_id", as_dict=True, maintain_order=True)

    class Model:
        def recommend(self, users, k):
            return pl.concat([by_user[(u,)] for u in users.to_list()])

    users = recs.get_column("user_id").unique(maintain_order=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "RECOMMEND_USERS", batch_users)
        worker._recommend_in_batches(Model(), users, 10, path)


def _scored_both_ways(tmp_path, lists, truth, chunk_rows=9):
    """score_lists with ``adopt`` and without, each writing to its own file; the stored lists
    of each as ``read_stored_lists`` gives them."""
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(lists.read_bytes())
    mine, theirs = tmp_path / "adopted.parquet", tmp_path / "written.parquet"
    adopted = score_lists(lists, truth, ks=KS, write_to=mine, adopt=True, chunk_rows=chunk_rows)
    written = score_lists(copy, truth, ks=KS, write_to=theirs, chunk_rows=chunk_rows)
    assert adopted.evaluation.metrics == written.evaluation.metrics
    assert adopted.report == written.report
    return read_stored_lists(mine), read_stored_lists(theirs), pl.read_parquet(theirs)


def test_a_workers_lists_in_order_are_kept_as_the_stored_lists(tmp_path):
    """Lists best first, as models return them: the worker's file is the normalised lists but
    for the ranks (each row's place in its list), so it becomes the stored lists (moved, not
    written again); read back, it has the rows and ranks validation gives."""
    recs, truth, _, _ = _random_case(3)
    lists = tmp_path / "recs.parquet"
    _worker_file(lists, recs)
    kept, written, raw = _scored_both_ways(tmp_path, lists, truth)
    assert not lists.exists()  # moved
    assert "rank" not in pl.read_parquet_schema(tmp_path / "adopted.parquet")
    assert kept.equals(written) and written.equals(raw)
    assert kept.equals(validate_recommendations(recs, source="r")[0])


@pytest.mark.parametrize("spoil", ["order", "ranks", "extra"])
def test_lists_that_validation_changes_are_written_not_kept(tmp_path, spoil):
    """A list file whose second half has lists worst first (so the chunks before it were kept
    and the lists are read again and written), one with ranks of its own, or one with another
    column: the stored lists are validation's, written out, and the file stays where it was."""
    recs, truth, _, _ = _random_case(4)
    lists = tmp_path / "recs.parquet"
    _worker_file(lists, recs)
    frame = pl.read_parquet(lists)
    if spoil == "order":
        late = pl.col("user_id") >= frame.get_column("user_id")[frame.height // 2]
        frame = pl.concat(
            [frame.filter(~late), frame.filter(late).sort("user_id", "score", maintain_order=True)]
        )
    elif spoil == "ranks":  # ranks that disagree with the scores (the scores decide)
        frame = frame.with_columns(pl.int_range(pl.len(), 0, -1).over("user_id").alias("rank"))
    else:
        frame = frame.with_columns(pl.lit("x").alias("note"))
    frame.write_parquet(lists)
    kept, written, raw = _scored_both_ways(tmp_path, lists, truth)
    assert lists.exists()
    assert kept.equals(written) and written.equals(raw)
    assert kept.equals(validate_recommendations(recs, source="r")[0])


def test_a_list_file_is_kept_only_when_the_caller_gives_it_up(tmp_path):
    """Without ``adopt`` (``harness score --dataset`` on a user's own file) the file stays."""
    recs, truth, _, _ = _random_case(5)
    lists = tmp_path / "recs.parquet"
    _worker_file(lists, recs)
    score_lists(lists, truth, ks=KS, write_to=tmp_path / "out.parquet")
    assert lists.exists() and (tmp_path / "out.parquet").exists()


def test_a_list_file_changed_while_read_is_refused(tmp_path, monkeypatch):
    """Something that rewrites the file between validation and the move (a process of the
    plugin that outlived it): the run fails instead of storing lists nobody validated."""
    import os

    from harness.errors import DataError
    from harness.metrics import Scorer

    recs, truth, _, _ = _random_case(6)
    lists = tmp_path / "recs.parquet"
    _worker_file(lists, recs)
    original = Scorer.add

    def add_and_touch(self, *args, **kwargs):
        info = os.stat(lists)
        os.utime(lists, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Scorer, "add", add_and_touch)
    with pytest.raises(DataError, match="changed while it was read"):
        score_lists(lists, truth, ks=KS, write_to=tmp_path / "out.parquet", adopt=True)
