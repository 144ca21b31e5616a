"""The Spark engine (``harness score --engine spark``) on ``local[2]``: equal to the local engine to
1e-9 on every metric, k, segment and per-user value, on seeded random cases and edge cases (score
and rank ties, shuffled rows, short lists, users without lists, cold users, string ids, k larger
than every list); the same validation messages; one-line errors without pyspark or Java.

One Spark session for the whole run (a JVM start costs seconds): pytest runs a test file on one
worker (``--dist loadfile`` in pyproject.toml), so only one worker starts it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from harness.errors import ConfigError, ValidationError

pytest.importorskip("pyspark", reason="the spark extra is not installed: pip install -e '.[spark]'")
spark_engine = pytest.importorskip("harness.engines.spark")
if spark_engine._java() is None:  # CI installs Java (.ci/run); a dev machine may lack it
    pytest.skip("no Java: the Spark engine needs a JVM", allow_module_level=True)

TOL = 1e-9


def _score_files(recs, truth, ks, catalog, categories):
    """The local engine, as `harness score` calls it."""
    from harness.scoring import score_files

    return score_files(
        Path(recs),
        Path(truth),
        ks=ks,
        catalog=catalog and Path(catalog),
        categories=categories and Path(categories),
    ).evaluation


# Tiny data and a JVM that lives a minute: tuned for the tests, not for production (these settings
# change how Spark plans and runs a query, never what it computes).
# C1 only (C2 compiles cost more than they save); no bytecode verification of the classes Spark
# loads from its own jars (some thousands: about 3 CPU-s)
_JVM = (
    "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
    "-XX:+UnlockDiagnosticVMOptions -XX:-BytecodeVerificationRemote"
)
_STATIC = {"spark.ui.enabled": "false"}  # no web UI (Jetty) to start
_SQL = {
    "spark.sql.shuffle.partitions": "1",  # one task per shuffle
    "spark.sql.adaptive.enabled": "false",  # its re-planning doubles the jobs of an evaluation
    "spark.sql.autoBroadcastJoinThreshold": "-1",  # no broadcast jobs: sort-merge joins
    "spark.sql.codegen.wholeStage": "false",  # interpreted: compiling costs more than it saves
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",  # expressions too (Spark's own tests run both)
}


@pytest.fixture(scope="session")
def spark():
    """One session for the file (pytest runs a file on one worker); the JVM options and static
    settings travel through the environment spark-submit reads at launch, restored after."""
    saved = {v: os.environ.get(v) for v in ("SPARK_SUBMIT_OPTS", "PYSPARK_SUBMIT_ARGS")}
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["SPARK_SUBMIT_OPTS"] = _JVM
    os.environ["PYSPARK_SUBMIT_ARGS"] = (
        " ".join(f"--conf {k}={v}" for k, v in _STATIC.items()) + " pyspark-shell"
    )
    try:
        session = spark_engine.session("local[2]")
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    for key, value in _SQL.items():
        session.conf.set(key, value)
    yield session
    session.stop()


def _both(spark, recs, truth, ks, catalog=None, categories=None):
    local = _score_files(
        Path(recs), Path(truth), ks, catalog and str(catalog), categories and str(categories)
    )
    remote = spark_engine.score_files(
        str(recs),
        str(truth),
        ks=ks,
        catalog=catalog and str(catalog),
        categories=categories and str(categories),
        spark=spark,
    ).evaluation
    return local, remote


def assert_same(local, remote):
    """Same segments, same metric names in the same order, values within 1e-9; same per-user
    values (nulls where the local engine has nulls)."""
    assert list(remote.metrics) == list(local.metrics)
    for segment, values in local.metrics.items():
        assert list(remote.metrics[segment]) == list(values), segment
        for name, value in values.items():
            assert remote.metrics[segment][name] == pytest.approx(value, abs=TOL, rel=TOL), (
                segment,
                name,
            )
    assert remote.notices == local.notices
    # ids as text: CSV ids that are all integers are integers locally and strings in Spark
    theirs = pl.from_arrow(remote.per_user.toArrow()).with_columns(pl.col("user_id").cast(pl.Utf8))
    mine = local.per_user.with_columns(pl.col("user_id").cast(pl.Utf8))
    assert sorted(theirs.columns) == sorted(mine.columns)
    assert theirs.height == mine.height
    joined = mine.join(theirs, on="user_id", how="left", suffix="_spark")
    for col in mine.columns:
        if col == "user_id":
            continue
        mine, other = joined.get_column(col), joined.get_column(f"{col}_spark")
        assert (mine.is_null() == other.is_null()).all(), col
        if mine.dtype.is_float():
            diff = (mine - other).abs().drop_nulls()
            assert diff.len() == 0 or diff.max() <= TOL, col
        else:
            assert (mine == other).all(), col


def _random_case(seed: int, tmp: Path):
    """Truth, lists (score with many ties, or rank with ties and gaps; rows shuffled or grouped),
    a catalogue whose users leave some truth users cold, item categories (some items without)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(3, 40)), int(rng.integers(5, 60))
    as_str = seed % 3 == 0
    truth_users = rng.choice(n_users + 5, size=n_users, replace=False)  # some ids beyond the lists'
    truth = pl.DataFrame(
        {"user_id": np.repeat(truth_users, rng.integers(1, 6, n_users)), "item_id": 0}
    )
    truth = truth.with_columns(pl.Series("item_id", rng.integers(0, n_items, truth.height)))
    list_users = rng.choice(n_users + 5, size=n_users, replace=False)  # some truth users have none
    lengths = rng.integers(1, 12, n_users)
    rows = []
    for u, n in zip(list_users, lengths):
        rows += [
            (int(u), int(i))
            for i in rng.choice(n_items + 5, size=min(int(n), n_items), replace=False)
        ]
    recs = pl.DataFrame(rows, schema={"user_id": pl.Int64, "item_id": pl.Int64}, orient="row")
    if seed % 2:
        recs = recs.with_columns(
            pl.Series("score", rng.integers(0, 4, recs.height).astype(np.float64))
        )
    else:
        recs = recs.with_columns(
            pl.Series("rank", rng.integers(1, 9, recs.height).astype(np.int32))
        )
    if seed % 4 < 2:
        recs = recs.sample(fraction=1.0, shuffle=True, seed=seed)
    train_users = rng.choice(n_users + 5, size=n_users // 2 + 1, replace=False)
    train = pl.DataFrame(
        {
            "user_id": rng.choice(train_users, 3 * n_items),
            "item_id": rng.integers(0, n_items, 3 * n_items),
        }
    )
    tags = ["a", "b", "c", "d"]
    cats = pl.DataFrame(
        {
            "item_id": np.arange(n_items + 3),
            "categories": [
                list(rng.choice(tags, int(rng.integers(0, 4)))) for _ in range(n_items + 3)
            ],
        },
        schema_overrides={"categories": pl.List(pl.Utf8)},
    )
    if as_str:
        recs, truth, train, cats = (
            f.with_columns(
                pl.col(c).cast(pl.Utf8) for c in ("user_id", "item_id") if c in f.columns
            )
            for f in (recs, truth, train, cats)
        )
    paths = []
    for name, frame in (("recs", recs), ("truth", truth), ("train", train), ("cats", cats)):
        path = tmp / f"{name}{seed}.parquet"
        frame.write_parquet(path)
        paths.append(path)
    return paths


def _as_directory(recs: Path) -> Path:
    """The lists of ``recs`` as a directory of two parquet files (each user's list in one)."""
    frame = pl.read_parquet(recs)
    parts = recs.parent / f"{recs.stem}-parts"
    parts.mkdir()
    users = frame.get_column("user_id").unique().sort()
    half = users.len() // 2
    for i, group in enumerate((users[:half], users[half:])):
        frame.filter(pl.col("user_id").is_in(group.implode())).write_parquet(
            parts / f"part-{i}.parquet"
        )
    return parts


# Each Spark evaluation costs seconds even on tiny data, so the random cases share out the
# combinations of id type x score or rank x row order (seed s: string ids when s % 3 == 0, a score
# when s is odd, shuffled rows when s % 4 < 2) instead of running every seed everywhere:
# 0 here (string, rank, shuffled), 1 here (integer, score, shuffled; a directory), 2 without a
# catalogue (integer, rank, grouped), 3 through the command line (string, score, grouped).


@pytest.mark.parametrize("seed", [0, 1])
def test_random_cases_equal_the_local_engine(spark, tmp_path, seed):
    """Seed 0: string ids, ranks, shuffled rows; seed 1: integer ids, scores, shuffled rows, and the
    lists reach Spark as a directory of parquet files (a partitioned data set)."""
    recs, truth, train, cats = _random_case(seed, tmp_path)
    ks = (1, 3, 5, 20)  # 20: longer than every list
    local = _score_files(recs, truth, ks, str(train), str(cats))
    remote = spark_engine.score_files(
        str(_as_directory(recs) if seed == 1 else recs),
        str(truth),
        ks=ks,
        catalog=str(train),
        categories=str(cats),
        spark=spark,
    ).evaluation
    assert_same(local, remote)


def test_without_catalog_every_user_is_warm_and_skips_are_noticed(spark, tmp_path):
    recs, truth, _, _ = _random_case(2, tmp_path)
    local, remote = _both(spark, recs, truth, (2, 10))
    assert list(remote.metrics) == ["all", "warm"]
    assert_same(local, remote)


def test_hand_computed_ties_catalogue_and_categories(spark, tmp_path):
    # user 1: list a, b, z (z outside the catalogue), relevant {b}; user 2 (cold: not among the
    # catalogue's users): list a, relevant {c}; user 3: relevant {a}, no list. CSV, string ids.
    recs = tmp_path / "recs.csv"
    recs.write_text(
        "user_id,item_id,score\n2,a,0.5\n1,a,1.0\n1,z,0.2\n1,b,1.0\n"
    )  # a before b: tie
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,b\n2,c\n3,a\n1,b\n")  # a repeated pair counts once
    catalog = tmp_path / "train.csv"
    catalog.write_text("user_id,item_id\n1,a\n3,a\n4,b\n4,c\n")
    cats = tmp_path / "cats.csv"
    cats.write_text("item_id,categories\na,x\nb,x|y\n")
    local, remote = _both(spark, recs, truth, (1, 3), catalog, cats)
    assert_same(local, remote)
    a = remote.metrics["all"]
    assert a["mrr@3"] == pytest.approx((1 / 2 + 0 + 0) / 3)  # b second: the tie keeps file order
    assert a["precision@1"] == 0.0
    assert a["coverage@3"] == pytest.approx(2 / 3) and a["gini@3"] == pytest.approx(4 / 9)
    nov = lambda c: -math.log2((c + 1) / 4)  # noqa: E731  (N = 3 train users)
    assert a["novelty@1"] == pytest.approx((nov(2) + nov(2) + 0) / 3)
    assert a["diversity@3"] == pytest.approx(1 - 1 / math.sqrt(2))
    assert "diversity@1" not in a
    assert remote.metrics["cold"]["hit_rate@3"] == 0.0


def test_csv_ids_are_compared_exactly(spark, tmp_path):
    # "007" is not "7" (CSV ids are strings); integer-like strings on both sides match as integers
    recs = tmp_path / "recs.csv"
    recs.write_text("user_id,item_id,score\n1,007,0.9\n1,7,0.8\n2,08,0.5\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,7\n2,8\n")
    local, remote = _both(spark, recs, truth, (1, 2))
    assert_same(local, remote)
    assert remote.metrics["all"]["hit_rate@2"] == 0.5 and remote.metrics["all"]["mrr@2"] == 0.25


@pytest.mark.parametrize(
    "body, words",
    [
        ("user_id,item_id,score\n1,5,1.0\n1,6,0.5\n1,5,0.2\n", "item listed twice"),
        ("user_id,item_id,score\n1,5,1.0\n,6,0.5\n", "null user_id"),
        ("user_id,item_id,score\n1,5,1.0\n1,,0.5\n", "null item_id"),
        ("user_id,item_id,score\n1,5,1.0\n1,6,NaN\n", "null or NaN score"),
        ("user_id,item_id,rank\n1,5,1\n1,6,\n", "null or NaN rank"),
        ("user_id,item_id\n1,5\n", "needs a 'score' or a 'rank' column"),
        ("user,item_id,score\n1,5,1.0\n", "missing column(s) user_id"),
        ("user_id,item_id,score\n", "no rows (the recommendation list is empty)"),
        (
            "user_id,item_id,score\n9,5,1.0\n7,5,1.0\n",
            "none of the 2 users with lists is a truth user",
        ),
    ],
)
def test_validation_messages_match_the_local_engine(spark, tmp_path, body, words):
    recs = tmp_path / "recs.csv"
    recs.write_text(body)
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,5\n")
    with pytest.raises(ValidationError) as local:
        _score_files(recs, truth, (5,), None, None)
    with pytest.raises(ValidationError) as remote:
        spark_engine.score_files(str(recs), str(truth), ks=(5,), spark=spark)
    assert words in str(remote.value)
    # the same message; CSV ids show as the strings Spark read ('1') where the local engine has
    # already aligned them to the truth's integers (1)
    assert str(remote.value).replace("'", "") == str(local.value).replace("'", "")


def test_non_numeric_score_and_null_truth_and_missing_file(spark, tmp_path):
    recs = tmp_path / "recs.csv"
    recs.write_text("user_id,item_id,score\n1,5,high\n")
    truth = tmp_path / "truth.csv"
    truth.write_text("user_id,item_id\n1,5\n2,\n")
    with pytest.raises(ValidationError, match="truth.csv: null item_id at row 2 "):
        spark_engine.score_files(str(recs), str(truth), ks=(5,), spark=spark)
    truth.write_text("user_id,item_id\n1,5\n")
    with pytest.raises(ValidationError, match="column score must be numeric"):
        spark_engine.score_files(str(recs), str(truth), ks=(5,), spark=spark)
    from harness.errors import DataError

    with pytest.raises(DataError, match="nowhere.parquet: no such file"):
        spark_engine.score_files(
            str(tmp_path / "nowhere.parquet"), str(truth), ks=(5,), spark=spark
        )


def test_cli_engine_spark_prints_the_local_json(spark, cli, tmp_path):
    recs, truth, train, cats = _random_case(3, tmp_path)
    args = [
        "score",
        "--recs",
        str(recs),
        "--truth",
        str(truth),
        "--k",
        "1",
        "--k",
        "10",
        "--catalog",
        str(train),
        "--item-categories",
        str(cats),
        "--json",
    ]
    local = json.loads(cli(*args).stdout)
    remote = json.loads(cli(*args, "--engine", "spark", "--spark-master", "local[2]").stdout)
    assert list(remote["segments"]) == list(local["segments"])
    for segment, values in local["segments"].items():
        assert remote["segments"][segment] == pytest.approx(values, abs=TOL, rel=TOL)
    r = cli(
        "score", "--recs", str(recs), "--spark-master", "local[2]", "--truth", str(truth), expect=1
    )
    assert r.stderr.startswith("error: ") and "--engine spark" in r.stderr


def test_missing_pyspark_and_missing_java_are_one_line_errors(monkeypatch):
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    monkeypatch.setattr(spark_engine, "_java", lambda: None)
    with pytest.raises(ConfigError, match=r"needs Java .*JAVA_HOME") as err:
        spark_engine.session("local[1]")
    assert "\n" not in str(err.value)
    monkeypatch.setitem(__import__("sys").modules, "pyspark.sql", None)  # import fails as if absent
    with pytest.raises(ConfigError, match=r"pip install 'harness\[spark\]'"):
        spark_engine.session("local[1]")
