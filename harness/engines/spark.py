"""The Spark engine: ``harness score --engine spark``, the metrics of DESIGN.md as Spark SQL.

For list files larger than one machine: the lists are read by Spark (a parquet file, a partitioned
directory or any URI Spark reads: ``hdfs://``, ``s3a://``...), validated, ranked and scored with
DataFrame operations only (window functions, joins, group-bys; no Python UDF and no collect of
lists). Only the final aggregates (a few rows per segment) and the sizes of the catalogue come
back to the driver. The definitions are those of :mod:`harness.metrics`, term for term; the tests
prove both engines equal to 1e-9 on every metric and k.

What differs from the local engine (see docs/metrics.md, "The Spark engine"):
- "File order" (ties in score or rank keep it) is the order Spark reads: exact within one file;
  across the files of a directory, Spark's partition order (a user's list normally lives in one
  file, where it is exact).
- Messages name rows by their position in their file (and the file, for a directory).
- CSV is read with Spark's schema inference (``inferSchema``); parquet keeps its types.

pyspark is imported only here (the ``harness[spark]`` extra)."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.api import Columns
from harness.errors import ConfigError, DataError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

USER, ITEM, RANK, SCORE = Columns.USER, Columns.ITEM, "rank", Columns.SCORE
SEGMENTS = ("all", "warm", "cold")
DEFAULT_MASTER = "local[*]"
_SHOW = 3  # offending rows named in a message
_LOG4J = Path(__file__).with_name("log4j2-quiet.properties")

__all__ = [
    "DEFAULT_MASTER",
    "SparkEvaluation",
    "evaluate",
    "read",
    "score_files",
    "session",
    "validate_recommendations",
    "validate_truth",
]


@dataclass
class SparkEvaluation:
    """Metric values per segment (plain floats), per-user values (a Spark DataFrame: user_id,
    segment, one column per ``name@k``, as :class:`harness.metrics.Evaluation`), notices."""

    metrics: dict[str, dict[str, float]]
    per_user: Any
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"metrics": self.metrics.get("all", {}), "segments": self.metrics}


# ---------------------------------------------------------------------------------------------
# session


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and os.access(Path(home) / "bin" / "java", os.X_OK):
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def session(master: str | None = None) -> SparkSession:
    """A Spark session on ``master`` (default: the one spark-submit gave, else ``local[*]``).

    ConfigError naming the extra when pyspark is missing, and naming Java when no JVM is found."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "--engine spark needs pyspark, which is not installed: pip install 'harness[spark]'"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None and master is None:
        return active
    launched = "PYSPARK_GATEWAY_PORT" in os.environ  # inside spark-submit: the JVM exists
    if not launched and _java() is None:
        raise ConfigError(
            "--engine spark needs Java (a JVM, version 17 or later) and none was "
            "found: install it (e.g. apt-get install openjdk-17-jre-headless) or set "
            "JAVA_HOME"
        )
    if master is None and not launched:
        master = DEFAULT_MASTER
    builder = SparkSession.builder.appName("harness score")
    if master:
        builder = builder.master(master)
    builder = builder.config("spark.ui.showConsoleProgress", "false").config(
        "spark.sql.session.timeZone", "UTC"
    )
    if not launched:  # quiet the JVM's INFO/WARN lines on the user's terminal
        builder = builder.config(
            "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={_LOG4J.as_uri()}"
        )
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: the reason is the first line
        raise ConfigError(f"cannot start Spark on master {master!r}: {_first_line(exc)}") from None
    spark.sparkContext.setLogLevel(os.environ.get("HARNESS_SPARK_LOG_LEVEL", "FATAL"))
    return spark


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# reading and validation (mirrors harness.recs)


def read(spark: SparkSession, path: str | os.PathLike) -> DataFrame:
    """A parquet file, a directory of parquet files, or a CSV/TSV file (by extension), at any URI
    Spark reads. DataError naming the path when it is missing or unreadable."""
    path = str(path)
    if "://" not in path and not os.path.exists(path):
        raise DataError(f"{path}: no such file or directory")
    name = path.rstrip("/").lower()
    try:
        if name.endswith((".csv", ".tsv")):
            # ids are strings ("007" is not "7", as harness.ids reads CSV); other columns inferred
            from pyspark.sql.types import StringType, StructField, StructType

            sep = "\t" if name.endswith(".tsv") else ","
            inferred = spark.read.csv(path, inferSchema=True, header=True, sep=sep).schema
            schema = StructType(
                [
                    StructField(f.name, StringType()) if f.name in (USER, ITEM) else f
                    for f in inferred.fields
                ]
            )
            return spark.read.csv(path, schema=schema, header=True, sep=sep)
        return spark.read.parquet(path)
    except Exception as exc:  # AnalysisException and friends: unreadable input
        raise DataError(f"{path}: cannot read: {_first_line(exc)}") from None


def _require(frame: DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValidationError(
            f"{source}: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(frame.columns) or 'none'})"
        )


def _with_order(frame: DataFrame) -> DataFrame:
    """``_order``: increasing in the order Spark reads (file order within a file), and ``_file``."""
    from pyspark.sql import functions as F

    return frame.select(
        "*",
        F.monotonically_increasing_id().alias("_order"),
        F.col("_metadata.file_name").alias("_file"),
    )


def _rows(frame: DataFrame, mask, columns, many_files: bool) -> str:
    """The first offending rows, as ``row N (col=value, ...)``: N their 1-based row in their file.
    Runs only on the error path (one small filter and one count)."""
    from pyspark.sql import functions as F

    hits = frame.filter(mask).orderBy("_order").limit(_SHOW).collect()
    counts = frame.agg(
        *(
            F.count_if((F.col("_file") == h["_file"]) & (F.col("_order") < h["_order"])).alias(
                f"c{i}"
            )
            for i, h in enumerate(hits)
        )
    ).collect()[0]
    out = []
    for i, h in enumerate(hits):
        where = f" of {h['_file']}" if many_files else ""
        out.append(
            f"row {counts[f'c{i}'] + 1}{where} ({', '.join(f'{c}={h[c]!r}' for c in columns)})"
        )
    return ", ".join(out)


def validate_recommendations(recs: DataFrame, *, source: str) -> DataFrame:
    """Check a recommendation table and rank it: ``user_id, item_id, rank`` (1-based, consecutive;
    plus ``_dup``, false on every row).

    ``score``: higher first; else ``rank``; ties keep file order. Null ids, a null or NaN score or
    rank, a non-numeric one and an item listed twice for one user are ValidationErrors naming
    ``source`` and the first offending rows, as in :func:`harness.recs.validate_recommendations`.
    Two passes over the lists: one aggregate (nulls), one shuffle by user (ranks and duplicates),
    whose result is cached for :func:`evaluate` (which releases it)."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import FractionalType, NumericType

    _require(recs, (USER, ITEM), source)
    if SCORE not in recs.columns and RANK not in recs.columns:
        raise ValidationError(f"{source}: needs a 'score' or a 'rank' column")
    by = SCORE if SCORE in recs.columns else RANK
    dtype = recs.schema[by].dataType
    many_files = len(recs.inputFiles()) > 1
    frame = _with_order(recs.select(USER, ITEM, by))
    bad_by = F.col(by).isNull()
    if isinstance(dtype, FractionalType):
        bad_by = bad_by | F.isnan(by)
    checks = frame.agg(
        F.count_if(F.col(USER).isNull()).alias(USER),
        F.count_if(F.col(ITEM).isNull()).alias(ITEM),
        (F.count_if(bad_by) if isinstance(dtype, NumericType) else F.lit(0)).alias(by),
        F.count(F.lit(1)).alias("_rows"),
    ).collect()[0]
    if not checks["_rows"]:
        raise ValidationError(f"{source}: no rows (the recommendation list is empty)")
    for col in (USER, ITEM):
        if checks[col]:
            raise ValidationError(
                f"{source}: null {col} at "
                f"{_rows(frame, F.col(col).isNull(), (USER, ITEM), many_files)}"
            )
    if not isinstance(dtype, NumericType):
        raise ValidationError(f"{source}: column {by} must be numeric, not {dtype.simpleString()}")
    if checks[by]:
        raise ValidationError(
            f"{source}: null or NaN {by} at {_rows(frame, bad_by, (USER, ITEM, by), many_files)}"
        )
    # one shuffle by user serves the ranking and the duplicate check (a second sort of each
    # user's rows, by item: a pair listed twice sits on adjacent rows), and the ranked lists stay
    # cached, partitioned by user, for every metric family
    order = F.col(by).desc() if by == SCORE else F.col(by).asc()
    by_rank = Window.partitionBy(USER).orderBy(order, F.col("_order"))
    by_item = Window.partitionBy(USER).orderBy(ITEM)
    ranked = frame.select(
        USER,
        ITEM,
        F.row_number().over(by_rank).alias(RANK),
        (F.col(ITEM) == F.lag(ITEM).over(by_item)).alias("_dup"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    if ranked.agg(F.count_if("_dup")).collect()[0][0]:
        pairs = ranked.filter("_dup").select(USER, ITEM).distinct()
        message = _rows_dup(frame, pairs, by, many_files)
        ranked.unpersist()
        raise ValidationError(f"{source}: item listed twice for one user at {message}")
    return ranked  # the cached frame itself (a projection of it could not be unpersisted)


def _rows_dup(frame: DataFrame, pairs: DataFrame, by: str, many_files: bool) -> str:
    """The first rows (in file order) of pairs listed twice; their row numbers count all rows."""
    from pyspark.sql import functions as F

    marked = frame.join(
        pairs.select(USER, ITEM).withColumn("_dup", F.lit(True)), [USER, ITEM], "left"
    )
    return _rows(marked, F.col("_dup").isNotNull(), (USER, ITEM, by), many_files)


_INT = r"^-?(0|[1-9][0-9]*)$"  # a canonical integer (harness.ids)


def validate_truth(truth: DataFrame, *, source: str) -> tuple[DataFrame, set[str]]:
    """Check a truth table (``user_id, item_id``): no rows and null ids are rejected; repeats are
    harmless (the metrics count distinct relevant items). Returns it with the string id columns
    that hold canonical integers only (harness.ids: integer lists are compared with them as
    integers)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    _require(truth, (USER, ITEM), source)
    many_files = len(truth.inputFiles()) > 1
    frame = _with_order(truth.select(USER, ITEM))
    text = [c for c in (USER, ITEM) if isinstance(truth.schema[c].dataType, StringType)]
    checks = frame.agg(
        *(F.count_if(F.col(c).isNull()).alias(c) for c in (USER, ITEM)),
        *(
            F.count_if(~F.col(c).rlike(_INT) | F.col(c).try_cast("bigint").isNull()).alias(
                f"_text_{c}"
            )
            for c in text
        ),
        F.count(F.lit(1)).alias("_rows"),
    ).collect()[0]
    if not checks["_rows"]:
        raise ValidationError(f"{source}: no rows (the truth is empty)")
    for col in (USER, ITEM):
        if checks[col]:
            raise ValidationError(
                f"{source}: null {col} at "
                f"{_rows(frame, F.col(col).isNull(), (USER, ITEM), many_files)}"
            )
    return truth.select(USER, ITEM), {c for c in text if not checks[f"_text_{c}"]}


# ---------------------------------------------------------------------------------------------
# metrics (the formulas of harness.metrics.ranking, catalog, novelty and diversity)


def _within(k: int):
    from pyspark.sql import functions as F

    return F.col(RANK) <= k


def _ideal_dcg(k: int) -> list[float]:
    """sum(1 / log2(i + 1), i <= m) for m = 0..k, accumulated as harness.metrics.ranking does."""
    ideal = [0.0]
    for i in range(1, k + 1):
        ideal.append(ideal[-1] + 1.0 / math.log2(i + 1))
    return ideal


def _ranking(lists: DataFrame, truth: DataFrame, users: DataFrame, ks) -> DataFrame:
    """precision, recall, map, ndcg, mrr, hit_rate at every k, per truth user (0 without a hit),
    from one group-by over the hit rows (a listed item not in the truth contributes nothing)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    hits = lists.join(truth.distinct(), [USER, ITEM], "left_semi").select(USER, RANK)
    hits = hits.withColumn(
        "hits_so_far", F.row_number().over(Window.partitionBy(USER).orderBy(RANK))
    )
    rank = F.col(RANK).cast("double")
    one = F.lit(1.0)
    aggs = []
    for k in ks:
        within = _within(k)
        aggs += [
            F.sum(F.when(within, one).otherwise(0.0)).alias(f"s{k}"),
            F.sum(F.when(within, F.col("hits_so_far") / rank).otherwise(0.0)).alias(f"ap{k}"),
            F.sum(F.when(within, one / F.log2(rank + 1)).otherwise(0.0)).alias(f"dcg{k}"),
            F.max(F.when(within, one / rank).otherwise(0.0)).alias(f"rr{k}"),
            F.max(F.when(within, one).otherwise(0.0)).alias(f"hit{k}"),
        ]
    per_user = (
        users.select(USER, "n")
        .join(hits.groupBy(USER).agg(*aggs), USER, "left")
        .fillna(0.0, subset=[f"{a}{k}" for k in ks for a in ("s", "ap", "dcg", "rr", "hit")])
    )
    n = F.col("n").cast("double")
    columns = {}
    for name, final in (
        ("precision", lambda k: F.col(f"s{k}") / F.lit(float(k))),
        ("recall", lambda k: F.col(f"s{k}") / n),
        ("map", lambda k: F.col(f"ap{k}") / F.least(n, F.lit(float(k)))),
        (
            "ndcg",
            lambda k: (
                F.col(f"dcg{k}")
                / F.element_at(
                    F.array(*(F.lit(v) for v in _ideal_dcg(k))),
                    (F.least(F.col("n"), F.lit(k)) + 1).cast("int"),
                )
            ),
        ),
        ("mrr", lambda k: F.col(f"rr{k}")),
        ("hit_rate", lambda k: F.col(f"hit{k}")),
    ):
        for k in ks:
            columns[f"{name}@{k}"] = final(k).cast("double")
    return per_user.select(USER, *(v.alias(c) for c, v in columns.items()))


def _novelty(
    lists: DataFrame, train: DataFrame, n_users: int, users: DataFrame, ks, item_type
) -> DataFrame:
    """novelty@k = mean over L_u of -log2((c_i + 1) / (N + 1)); c_i train users of item i, N train
    users; 0 for a user without a list."""
    from pyspark.sql import functions as F

    pairs = train.select(USER, ITEM).distinct()
    pop = (
        pairs.groupBy(ITEM)
        .agg(F.count(F.lit(1)).alias("c"))
        .select(F.col(ITEM).try_cast(item_type).alias(ITEM), "c")
    )
    value = -F.log2((F.coalesce(F.col("c"), F.lit(0)) + 1) / F.lit(float(n_users + 1)))
    rows = lists.join(pop, ITEM, "left").select(USER, RANK, value.alias("v"))
    aggs = []
    for k in ks:
        aggs.append(
            (F.sum(F.when(_within(k), F.col("v")).otherwise(0.0)) / F.count_if(_within(k))).alias(
                f"novelty@{k}"
            )
        )
    per_user = rows.groupBy(USER).agg(*aggs)
    return (
        users.select(USER)
        .join(per_user, USER, "left")
        .fillna(0.0, subset=[f"novelty@{k}" for k in ks])
    )


def _diversity(
    lists: DataFrame, categories: DataFrame, users: DataFrame, ks, item_type
) -> DataFrame:
    """diversity@k = 1 - mean pairwise cosine of the unit multi-hot category vectors of the items
    of L_u that have categories; null below two such items. With S = sum of the unit vectors and
    m items, the pairwise sum is (|S|^2 - m) / 2: one explode of (row, category) and two group-bys."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    cats = F.col("categories")
    if isinstance(categories.schema["categories"].dataType, StringType):  # CSV: "a|b|c"
        cats = F.split(cats, r"\|")
    first = Window.partitionBy(ITEM).orderBy("_order")
    items = (
        _with_order(categories.select(ITEM, "categories"))
        .select(ITEM, F.array_distinct(cats).alias("cat"), "_order")
        .filter(F.size("cat") > 0)
        .withColumn("_first", F.row_number().over(first))
        .filter("_first = 1")
        .select(
            F.col(ITEM).try_cast(item_type).alias(ITEM),
            (1.0 / F.sqrt(F.size("cat").cast("double"))).alias("w"),
            F.explode("cat").alias("cat"),
        )
    )
    rows = lists.join(items, ITEM, "inner").select(USER, RANK, "cat", "w")
    by_cat = rows.groupBy(USER, "cat").agg(
        *(
            agg
            for k in ks
            for agg in (
                F.sum(F.when(_within(k), F.col("w")).otherwise(0.0)).alias(f"s{k}"),
                F.sum(F.when(_within(k), F.col("w") * F.col("w")).otherwise(0.0)).alias(f"q{k}"),
            )
        )
    )
    # each item's squared weights sum to 1 over its categories: m = round(sum of w^2)
    by_user = by_cat.groupBy(USER).agg(
        *(
            agg
            for k in ks
            for agg in (
                F.sum(F.col(f"s{k}") * F.col(f"s{k}")).alias(f"sq{k}"),
                F.round(F.sum(f"q{k}")).alias(f"m{k}"),
            )
        )
    )
    columns = []
    for k in ks:
        m, sq = F.col(f"m{k}"), F.col(f"sq{k}")
        columns.append(F.when(m >= 2, 1.0 - (sq - m) / (m * (m - 1))).alias(f"diversity@{k}"))
    return users.select(USER).join(by_user.select(USER, *columns), USER, "left")


def _catalog_items(train: DataFrame, item_type) -> DataFrame:
    from pyspark.sql import functions as F

    return train.select(F.col(ITEM).try_cast(item_type).alias(ITEM)).dropna().distinct()


def _catalog(
    lists: DataFrame, train: DataFrame, n_items: int, ks, item_type
) -> dict[str, dict[str, float]]:
    """coverage@k and gini@k for segments all/warm/cold, from how often each train item appears
    within the first k places of that segment's lists.

    Gini over the n train items with exposure x sorted ascending is sum_i (2i - n - 1) x_i /
    (n sum x); the items sharing one value v take consecutive places c+1..c+m, so they contribute
    v m (2c + m - n): a histogram of exposure values and a running count replace the global sort."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    items = _catalog_items(train, item_type)
    exposure = (
        lists.join(items, ITEM, "left_semi")
        .groupBy("segment", ITEM)
        .agg(*(F.count_if(_within(k)).alias(f"x{k}") for k in ks))
    )
    exposure = exposure.unionByName(
        exposure.groupBy(ITEM)
        .agg(*(F.sum(f"x{k}").alias(f"x{k}") for k in ks))
        .withColumn("segment", F.lit("all"))
    )
    long = exposure.select(
        "segment",
        F.explode(
            F.array(*(F.struct(F.lit(k).alias("k"), F.col(f"x{k}").alias("x")) for k in ks))
        ).alias("e"),
    )
    hist = (
        long.select("segment", "e.k", "e.x")
        .filter("x > 0")
        .groupBy("segment", "k", "x")
        .agg(F.count(F.lit(1)).alias("m"))
    )
    below = (
        Window.partitionBy("segment", "k").orderBy("x").rowsBetween(Window.unboundedPreceding, -1)
    )
    listed = Window.partitionBy("segment", "k")
    n = F.lit(n_items)
    c = (n - F.sum("m").over(listed)) + F.coalesce(F.sum("m").over(below), F.lit(0))
    terms = hist.select(
        "segment",
        "k",
        "m",
        (F.col("x") * F.col("m")).alias("total"),
        (F.col("x").cast("double") * F.col("m") * (2 * c + F.col("m") - n)).alias("g"),
    )
    rows = (
        terms.groupBy("segment", "k")
        .agg(F.sum("m").alias("covered"), F.sum("total").alias("total"), F.sum("g").alias("g"))
        .collect()
    )
    found = {(r["segment"], r["k"]): r for r in rows}
    out: dict[str, dict[str, float]] = {}
    for segment in SEGMENTS:
        out[segment] = {}
        for k in ks:
            r = found.get((segment, k))
            covered, total, g = (r["covered"], r["total"], r["g"]) if r else (0, 0, 0.0)
            out[segment][f"coverage@{k}"] = float(covered) / n_items
            out[segment][f"gini@{k}"] = float(g) / (n_items * float(total)) if total else 0.0
    return out


def _as_type(frame: DataFrame, col: str, dtype):
    """``col`` of ``frame`` as ``dtype`` (the truth's): unchanged when it is already (which keeps
    the lists partitioned by user); a string that is not a canonical integer never becomes one
    ("007" matches nothing among integer ids); any other value that does not convert is null."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import IntegralType, StringType

    source = frame.schema[col].dataType
    if source == dtype:
        return F.col(col)
    if isinstance(source, StringType) and isinstance(dtype, IntegralType):
        return F.when(F.col(col).rlike(_INT), F.col(col).try_cast(dtype)).alias(col)
    return F.col(col).try_cast(dtype).alias(col)


def _no_truth_item(recs: DataFrame, truth: DataFrame) -> list[str]:
    """As harness.ids.check_overlap: a notice when no listed item is a truth item (run only when
    nothing was hit, which it implies)."""
    from pyspark.sql import functions as F

    if not recs.join(truth.select(ITEM).distinct(), ITEM, "left_semi").isEmpty():
        return []
    items = recs.agg(F.count_distinct(ITEM), F.min(ITEM)).collect()[0]
    return [
        f"no recommended item is in the truth ({items[0]} distinct listed, e.g. "
        f"{items[1]!r}): every accuracy metric is 0"
    ]


def _no_truth_user(recs: DataFrame, truth: DataFrame, source: str) -> None:
    """As harness.ids.check_overlap: lists of none of the truth's users score nothing."""
    from pyspark.sql import functions as F

    listed = recs.agg(F.count_distinct(USER), F.min(USER)).collect()[0]
    raise ValidationError(
        f"{source}: none of the {listed[0]} users with lists is a truth user (lists: "
        f"{listed[1]!r}, truth: {truth.agg(F.min(USER)).collect()[0][0]!r}, ...): check the user ids"
    )


def _sizes(train: DataFrame | None, categories: DataFrame | None, item_type) -> dict[str, int]:
    """The few numbers the driver needs (train users, catalogue items, category rows), in one job."""
    from pyspark.sql import functions as F

    parts = []
    if train is not None:
        parts.append(_catalog_items(train, item_type).agg(F.count(F.lit(1)).alias("n_items")))
        if USER in train.columns:
            parts.append(
                train.select(USER).distinct().agg(F.count(F.lit(1)).alias("n_train_users"))
            )
    if categories is not None:
        parts.append(categories.agg(F.count(F.lit(1)).alias("n_categorised")))
    if not parts:
        return {}
    row = parts[0]
    for part in parts[1:]:
        row = row.crossJoin(part)
    return row.collect()[0].asDict()


def evaluate(
    recs: DataFrame,
    truth: DataFrame,
    *,
    ks,
    train: DataFrame | None = None,
    item_categories: DataFrame | None = None,
    source: str = "recommendations",
) -> SparkEvaluation:
    """Score ranked lists (``user_id, item_id, rank``) against ``truth`` (``user_id, item_id``),
    as :func:`harness.metrics.evaluate`: averages over all truth users (0 without a list),
    segments warm/cold from ``train``'s users when it has a user_id column."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from harness.metrics import _metric_order

    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"k must be positive integers, got {ks}")
    truth = truth.select(USER, ITEM)
    user_type, item_type = truth.schema[USER].dataType, truth.schema[ITEM].dataType
    validated = recs
    # ids of another type than the truth's: cast (an id that does not convert matches nothing);
    # the same type is left alone, which keeps the lists partitioned by user
    recs = recs.select(
        *(_as_type(recs, c, t) for c, t in ((USER, user_type), (ITEM, item_type))), RANK
    )
    recs = recs.filter(F.col(RANK) <= ks[-1])
    users = truth.groupBy(USER).agg(F.count_distinct(ITEM).alias("n"))
    if train is not None and USER in train.columns:
        seen = (
            train.select(F.col(USER).try_cast(user_type).alias(USER))
            .dropna()
            .distinct()
            .withColumn("_warm", F.lit(True))
        )
        users = users.join(seen, USER, "left").select(
            USER, "n", F.when(F.col("_warm"), "warm").otherwise("cold").alias("segment")
        )
    else:
        users = users.withColumn("segment", F.lit("warm"))
    users = users.persist(StorageLevel.MEMORY_AND_DISK)
    # the lists of truth users, with their segment; read by every family, so kept once
    lists = recs.join(users.select(USER, "segment"), USER, "inner").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    if not lists.count():  # materialised: the validated lists cached upstream can go
        _no_truth_user(recs, truth, source)
    validated.unpersist()
    with_cats = item_categories is not None and "categories" in item_categories.columns
    sizes = _sizes(train, item_categories if with_cats else None, item_type)
    try:
        notices: list[str] = []
        per_user = users.select(USER, "segment").join(
            _ranking(lists, truth, users, ks), USER, "left"
        )
        catalog = None
        if train is None:
            notices.append("coverage and gini skipped: no train items (catalogue)")
        else:
            catalog = _catalog(lists, train, sizes["n_items"], ks, item_type)
        if train is None or USER not in train.columns:
            notices.append("novelty skipped: no train interactions")
        else:
            per_user = per_user.join(
                _novelty(lists, train, sizes["n_train_users"], users, ks, item_type), USER, "left"
            )
        if item_categories is None or not with_cats or not sizes["n_categorised"]:
            notices.append("diversity skipped: no item categories")
        else:
            per_user = per_user.join(
                _diversity(lists, item_categories, users, ks, item_type), USER, "left"
            )
        per_user = per_user.persist(StorageLevel.MEMORY_AND_DISK)  # per-user values stay at hand
        values = [c for c in per_user.columns if c not in (USER, "segment")]
        means = per_user.rollup("segment").agg(*(F.avg(F.col(f"`{c}`")).alias(c) for c in values))
        metrics: dict[str, dict[str, float]] = {}
        for row in means.collect():  # at most 3 rows: all (segment null), warm, cold
            segment = row["segment"] or "all"
            metrics[segment] = {c: float(row[c]) for c in values if row[c] is not None}
        if not metrics.get("all", {}).get(f"hit_rate@{ks[-1]}"):
            notices = _no_truth_item(recs, truth) + notices
    finally:
        lists.unpersist()
        users.unpersist()
    present = set(metrics)
    if catalog is not None:
        for segment in present:
            metrics[segment].update(catalog[segment])
    order = {m: i for i, m in enumerate(_metric_order(ks))}
    metrics = {
        s: dict(sorted(metrics[s].items(), key=lambda kv: order.get(kv[0], len(order))))
        for s in SEGMENTS
        if s in present
    }
    return SparkEvaluation(metrics=metrics, per_user=per_user, notices=notices)


def score_files(
    recs,
    truth,
    *,
    ks,
    catalog=None,
    categories=None,
    dialect: str = "harness",
    master: str | None = None,
    spark: SparkSession | None = None,
):
    """``harness score --engine spark`` (through :func:`harness.scoring.score_files`): read,
    validate, rank and score, all in Spark. Paths or URIs; returns a
    :class:`harness.scoring.Scored` whose evaluation is a :class:`SparkEvaluation`."""
    from harness.scoring import Scored

    if dialect != "harness":
        raise ConfigError(
            "--dialect: the Spark engine computes the harness definitions only; "
            "score with the local engine for another library's"
        )
    recs, truth = str(recs), str(truth)
    catalog, categories = catalog and str(catalog), categories and str(categories)
    spark = spark or session(master)
    truth_frame, integers = validate_truth(read(spark, truth), source=str(truth))
    lists = validate_recommendations(read(spark, recs), source=str(recs))
    from pyspark.sql.types import IntegralType

    for col in integers:  # integer lists against a truth of integer strings: compare integers
        if isinstance(lists.schema[col].dataType, IntegralType):
            truth_frame = truth_frame.withColumn(col, truth_frame[col].cast("bigint"))
    train = cats = None
    if catalog:
        train = read(spark, catalog)
        if ITEM not in train.columns:
            raise ConfigError(f"{catalog}: needs an item_id column (and user_id for novelty)")
    if categories:
        cats = read(spark, categories)
        if "categories" not in cats.columns or ITEM not in cats.columns:
            raise ConfigError(f"{categories}: needs item_id and categories columns")
    return Scored(
        evaluate(lists, truth_frame, ks=ks, train=train, item_categories=cats, source=recs), {}
    )
