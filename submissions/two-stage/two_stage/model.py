"""The two-stage recommender: generators propose, a LightGBM lambdarank model orders.

``fit`` carves a validation window from the end of train by time (the last ``window_fraction``
of interactions), fits the generators on what came before it, takes their candidates for the
window's users, labels a candidate 1 when the user interacted with it in the window, computes
features from before the window only, and trains the ranker on that. Then it refits the
generators on all of train; ``recommend`` takes their candidates, computes features from all of
train, and returns the ranker's top ``k`` per user. The truth is never involved: the window lies
inside train, before the split's cutoff.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import numpy as np
import polars as pl

from harness.api import Bounds, Columns, TrainData, batches, report_progress
from two_stage.candidates import candidates, default_generators, fit_generators
from two_stage.features import add_features, feature_tables

U, I, T, S = Columns.USER, Columns.ITEM, Columns.TIMESTAMP, Columns.SCORE
NOT_FEATURES = {U, I, "label", "rrf", "query"}
PARALLEL_ROWS = 2_000_000
PREDICT_PARALLEL_ROWS = 200_000


class TwoStageRecommender:
    """Popular + ALS + item-kNN + EASE candidates, re-ranked by a LightGBM lambdarank model."""

    description = "Two-stage: popular/ALS/item-kNN/EASE candidates ranked by LightGBM lambdarank"
    exclude_seen = True  # every generator excludes the user's train items, so the union does too

    def __init__(
        self,
        candidates: Annotated[int, Bounds(ge=1)] = 200,
        window_fraction: Annotated[float, Bounds(gt=0, lt=1)] = 0.1,
        windows: Annotated[int, Bounds(ge=1)] = 5,
        n_estimators: Annotated[int, Bounds(ge=1)] = 150,
        learning_rate: Annotated[float, Bounds(gt=0)] = 0.05,
        num_leaves: Annotated[int, Bounds(ge=2)] = 15,
        min_child_samples: Annotated[int, Bounds(ge=0)] = 50,
        max_train_users: Annotated[int, Bounds(ge=1)] = 1_000,
        generators: str = "popular,als,itemknn,ease",
        als_factors: Annotated[int, Bounds(ge=1)] = 64,
        als_iterations: Annotated[int, Bounds(ge=1)] = 15,
        knn_neighbours: Annotated[int, Bounds(ge=1)] = 50,
        batch_users: Annotated[int, Bounds(ge=1)] = 5_000,
        inner: str = "auto",
        user_fraction: Annotated[float, Bounds(gt=0, lt=1)] = 0.2,
        user_windows: Annotated[int, Bounds(ge=1)] = 3,
        max_window_rows: Annotated[int, Bounds(ge=1)] = 4_000_000,
        rankers: Annotated[int, Bounds(ge=1)] = 5,
        max_ensemble_rows: Annotated[int, Bounds(ge=1)] = 1_000_000,
        objective: str = "lambdarank",
        max_context_rows: Annotated[int, Bounds(ge=0)] = 1_000_000,
    ) -> None:
        if candidates <= 0:
            raise ValueError(f"candidates must be positive, got {candidates}")
        if not 0.0 < window_fraction < 1.0:
            raise ValueError(f"window_fraction must be in (0, 1), got {window_fraction}")
        if not 1 <= windows < 1.0 / window_fraction:
            raise ValueError(f"windows must be in [1, 1/window_fraction), got {windows}")
        if inner not in ("auto", "global", "user"):
            raise ValueError(f"inner must be auto, global or user, got {inner!r}")
        if n_estimators <= 0 or num_leaves < 2 or max_train_users <= 0 or batch_users <= 0:
            raise ValueError(
                "n_estimators, max_train_users and batch_users must be positive, "
                "num_leaves at least 2"
            )
        self.candidates = candidates
        self.window_fraction = window_fraction
        self.windows = windows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.max_train_users = max_train_users
        self.batch_users = batch_users
        if not 0.0 < user_fraction < 1.0:
            raise ValueError(f"user_fraction must be in (0, 1), got {user_fraction}")
        if not 1 <= user_windows < 1.0 / user_fraction:
            raise ValueError(f"user_windows must be in [1, 1/user_fraction), got {user_windows}")
        self.inner, self.user_fraction, self.user_windows = inner, user_fraction, user_windows
        if max_window_rows <= 0:
            raise ValueError(f"max_window_rows must be positive, got {max_window_rows}")
        self.max_window_rows = max_window_rows
        if rankers < 1:
            raise ValueError(f"rankers must be at least 1, got {rankers}")
        self.rankers = rankers
        if max_ensemble_rows <= 0:
            raise ValueError(f"max_ensemble_rows must be positive, got {max_ensemble_rows}")
        self.max_ensemble_rows = max_ensemble_rows
        if objective not in ("lambdarank", "rank_xendcg"):
            raise ValueError(f"objective must be lambdarank or rank_xendcg, got {objective!r}")
        self.objective = objective
        self.max_context_rows = max_context_rows
        self._context = True
        self._per_user = inner == "user"
        self.generator_names = generators
        self._factories = default_generators(
            generators, als_factors, als_iterations, knn_neighbours
        )
        self.ranker = None
        self.features: list[str] = []

    # -- fit ------------------------------------------------------------------------------
    def fit(self, data: TrainData) -> TwoStageRecommender:
        self._train_ranker(self.training_frame(data), data)
        self.serve_on(data)
        return self

    def training_frame(self, data: TrainData) -> pl.DataFrame:
        """The ranker's labelled candidates: one frame stacking every inner window (a ``query``
        column numbers the window), features from before each window only."""
        self.data = data
        self._per_user = self._mode(data) == "user"
        # the recent-context features (similarity to the user's last items, ...) on data of at
        # most ``max_context_rows`` train interactions: decided once on all of train
        self._context = data.interactions.height <= self.max_context_rows
        self.recent_days = _window_days(data, self._carve(data)[2])
        frames, self.candidate_recall_ = [], []
        for i in range(self._n_windows(data)):
            before, window, start = self._carve(data, i)
            if before.height and window.height:
                past = TrainData(
                    before,
                    users=data.users,
                    items=data.items,
                    cutoff=start,
                    seed=data.seed + i,
                    n_threads=data.n_threads,
                )
                frames.append(self._labelled(past, window).with_columns(query=pl.lit(i, pl.Int32)))
        frames = [f for f in frames if f.height]
        if not frames:
            return pl.DataFrame()
        return pl.concat(frames, how="diagonal_relaxed").sort(["query", U, I])

    def _n_windows(self, data: TrainData) -> int:
        """Stacked inner windows: ``user_windows`` or ``windows``, fewer on large data so that the
        generators are fitted on at most ``max_window_rows`` rows over all windows (at least
        one window): each window refits every generator on nearly all of train."""
        wanted = self.user_windows if self._per_user else self.windows
        affordable = max(1, self.max_window_rows // max(data.interactions.height, 1))
        return min(wanted, affordable)

    def serve_on(self, data: TrainData, features: bool = False) -> None:
        """Refit the generators on all of ``data`` and precompute its feature tables (when a
        ranker was trained, or ``features``): what ``recommend`` needs besides the ranker."""
        self.data = data
        self.generators = fit_generators(self._factories, data)
        self._tables = (
            feature_tables(
                data.interactions,
                data.items,
                data.cutoff,
                self.recent_days,
                data.users,
                context=self._context,
            )
            if self.ranker is not None or features
            else None
        )

    def _mode(self, data: TrainData) -> str:
        """How the inner split is carved: ``global`` (time windows, like a global cutoff) or
        ``user`` (each user's latest ``window_fraction``, like a per-user temporal split).
        ``auto``: the split's own kind, i.e. global when it has a cutoff (or no timestamps)."""
        if self.inner != "auto":
            return self.inner
        has_time = data.interactions.get_column(T).null_count() < data.interactions.height
        return "global" if data.cutoff is not None or not has_time else "user"

    def _carve(
        self, data: TrainData, i: int = 0
    ) -> tuple[pl.DataFrame, pl.DataFrame, datetime | None]:
        """Split train into (before window ``i``, window ``i``, the window's start time).

        By time: window 0 holds the last ``window_fraction`` of interactions, window 1 the
        ``window_fraction`` before it, and so on. Without timestamps: a seeded random
        ``window_fraction`` of them (start time None)."""
        inter = data.interactions
        ts = inter.get_column(T)
        if self._per_user and ts.null_count() < ts.len():
            # each user's latest user_fraction (at least one of two or more), ties by item
            inter = inter.sort([U, T, I], nulls_last=False)
            n = pl.len().over(U)
            n_out = (n * self.user_fraction).floor().cast(pl.Int64)
            n_out = pl.when((n_out == 0) & (n >= 2)).then(1).otherwise(n_out)
            # window i: the i-th latest such slice of each user; before it: everything earlier
            from_end = pl.int_range(pl.len()).reverse().over(U)
            marked = inter.with_columns(
                _w=from_end // n_out.clip(lower_bound=1)
                + pl.when(n_out == 0).then(10**9).otherwise(0)
            )
            return (
                marked.filter(pl.col("_w") > i).drop("_w"),
                marked.filter(pl.col("_w") == i).drop("_w"),
                None,
            )
        if ts.null_count() < ts.len():
            times = ts.drop_nulls()
            start = times.quantile(max(0.0, 1.0 - self.window_fraction * (i + 1)), "nearest")
            end = times.quantile(1.0 - self.window_fraction * i, "nearest") if i else None
            in_window = (pl.col(T) >= start) & (
                pl.col(T) < end if end is not None else pl.lit(True)
            )
            return inter.filter(pl.col(T) < start), inter.filter(in_window), start
        rng = np.random.default_rng(data.seed + i)
        mask = pl.Series(rng.random(inter.height) < self.window_fraction)
        return inter.filter(~mask), inter.filter(mask), None

    def _labelled(self, past: TrainData, window: pl.DataFrame) -> pl.DataFrame:
        """Generators fitted on ``past`` propose candidates for the window's users; label 1 when
        the user has the item in ``window``; features from ``past`` only."""
        users = window.get_column(U).unique().sort()
        if users.len() > self.max_train_users:
            users = users.sample(self.max_train_users, seed=past.seed).sort()
        generators = fit_generators(self._factories, past)
        cands = candidates(generators, users, self.candidates)
        positives = window.select(U, I).unique().with_columns(label=pl.lit(1, pl.Int32))
        frame = cands.join(positives, on=[U, I], how="left").with_columns(
            pl.col("label").fill_null(0)
        )
        # recall of the candidate pool: the window's new items (of the sampled users) it holds
        wanted = positives.join(users.to_frame(), on=U, how="semi").join(
            past.interactions.select(U, I), on=[U, I], how="anti"
        )
        found = int(frame.get_column("label").sum())
        self.candidate_recall_.append(found / max(wanted.height, 1))
        report_progress(
            "fit",
            window=len(self.candidate_recall_),
            candidate_recall=found / max(wanted.height, 1),
            candidates_per_user=frame.height / max(users.len(), 1),
        )
        # only users with a positive among their candidates teach the ranker anything
        frame = frame.filter(pl.col("label").max().over(U) > 0)
        if frame.height == 0:
            return frame
        tables = feature_tables(
            past.interactions,
            past.items,
            past.cutoff,
            self.recent_days,
            past.users,
            context=self._context,
        )
        return add_features(
            frame, past.interactions, past.items, past.cutoff, self.recent_days, tables
        )

    def _train_ranker(
        self, frame: pl.DataFrame, data: TrainData, threads: int | None = None
    ) -> None:
        """LightGBM lambdarank on the labelled windows; one query per (window, user).
        ``threads``: LightGBM's threads (default: one below ``PARALLEL_ROWS`` rows)."""
        import lightgbm as lgb

        self.ranker = None
        if frame.height == 0:
            return
        self.features = [c for c in frame.columns if c not in NOT_FEATURES]
        groups = frame.group_by("query", U, maintain_order=True).len().get_column("len").to_numpy()
        params = {
            "objective": self.objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "lambdarank_truncation_level": 20,
            "seed": data.seed,
            "num_threads": threads or _threads(frame.height, data.n_threads),
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        train = lgb.Dataset(
            _matrix(frame, self.features),
            frame.get_column("label").to_numpy(),
            group=groups,
            feature_name=self.features,
            free_raw_data=False,
        )
        # ``rankers`` boosters that differ only in their seed (bagging and feature sampling);
        # their summed score varies less from seed to seed than one booster's. One booster when
        # train holds more than ``max_ensemble_rows`` interactions: serving cost grows with
        # boosters x candidates (synthetic-kion: 52k warm users x ~430 candidates)
        n = self.rankers if data.interactions.height <= self.max_ensemble_rows else 1
        self.boosters_ = [
            lgb.train({**params, "seed": data.seed + j}, train, num_boost_round=self.n_estimators)
            for j in range(n)
        ]
        self.ranker = self.boosters_[0]

    # -- recommend ------------------------------------------------------------------------
    def recommend(self, users: pl.Series, k: int) -> pl.DataFrame:
        """Top ``k`` per user by the ranker's score (reciprocal-rank fusion if none was trained),
        ``batch_users`` warm users at a time; cold users once per distinct case (see
        :meth:`_cold_groups`)."""
        users = pl.Series(U, users).unique(maintain_order=True)
        depth = max(self.candidates, k)
        cold = self.data.user_index(users) < 0
        warm = users.filter(~cold)
        frames = [
            self.rank(
                self.candidate_features(warm.slice(part.start, part.stop - part.start), depth), k
            )
            for part in batches(warm.len(), self.batch_users)
        ]
        if cold.any():
            frames.append(self._recommend_cold(users.filter(cold), depth, k))
        if not frames:
            return pl.DataFrame(
                {U: users, I: self.data.item_ids.head(0), S: pl.Series([], dtype=pl.Float64)}
            )
        return pl.concat(frames)

    def _recommend_cold(self, users: pl.Series, depth: int, k: int) -> pl.DataFrame:
        """Cold users' lists: ranked once per group of users whose features are all equal, then
        copied to every user of the group (61,684 cold users at synthetic-kion fall into 120
        groups: one per row of the user table)."""
        groups = self._cold_groups(users, depth)
        first = groups.unique("_group", keep="first", maintain_order=True)
        lists = self.rank(self.candidate_features(first.get_column(U), depth), k)
        lists = lists.join(first.select(U, "_group"), on=U, how="left").drop(U)
        return (
            groups.select(U, "_group")
            .join(lists, on="_group", how="inner", maintain_order="left_right")
            .select(U, I, S)
        )

    def _cold_groups(self, users: pl.Series, depth: int) -> pl.DataFrame:
        """``user_id``, ``_group``: cold users whose candidates and features are all equal share a
        group. A cold user's features come from the user table only (no interactions), and its
        candidates from the generators, which may still differ per user (``random`` hashes the
        id; a model with a user tower reads the user table): each generator's list is summarised
        by a 64-bit hash of its (item, score, position) rows, and users are grouped by their
        user-feature row and those hashes."""
        keys = users.to_frame()
        for j, (name, model) in enumerate(self.generators.items()):
            recs = model.recommend(users, depth)
            signature = (
                recs.select(
                    U,
                    _h=pl.struct(
                        pl.col(I), pl.col(S).cast(pl.Float64), pl.int_range(pl.len()).over(U)
                    ).hash(seed=j),
                )
                .group_by(U)
                .agg(pl.col("_h").sum().alias(f"_sig_{name}"))  # wraps: order-free checksum
            )
            keys = keys.join(signature, on=U, how="left", maintain_order="left")
        if self._tables is not None:
            keys = keys.join(self._tables["users"], on=U, how="left", maintain_order="left")
        by = [c for c in keys.columns if c != U]
        return keys.select(U, _group=pl.struct(by).rank("dense"))

    def candidate_features(self, users: pl.Series, depth: int) -> pl.DataFrame:
        """The generators' top ``depth`` per user, with the ranker's features (from all of train)."""
        cands = candidates(self.generators, users, depth)
        if self._tables is None:
            return cands
        return add_features(
            cands,
            self.data.interactions,
            self.data.items,
            self.data.cutoff,
            self.recent_days,
            self._tables,
        )

    def rank(self, cands: pl.DataFrame, k: int) -> pl.DataFrame:
        """Each user's top ``k`` of ``cands`` by the ranker (or reciprocal-rank fusion)."""
        if self.ranker is not None:
            matrix = _matrix(cands, self.features)
            # rows are scored independently: as many threads as allowed on a large batch (the
            # spinning that makes small training frames slow is one wait per call here)
            threads = max(1, self.data.n_threads) if cands.height >= PREDICT_PARALLEL_ROWS else 1
            score = sum(b.predict(matrix, num_threads=threads) for b in self.boosters_)
            cands = cands.with_columns(pl.Series(S, score, dtype=pl.Float64))
        else:
            cands = cands.with_columns(pl.col("rrf").alias(S))
        return (
            cands.select(U, I, S)
            .sort([U, S, I], descending=[False, True, False])
            .group_by(U, maintain_order=True)
            .head(k)
        )


def _matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """The feature columns as a float32 matrix (missing features of a part become NaN)."""
    cols = [
        pl.col(c).cast(pl.Float32) if c in frame.columns else pl.lit(None, pl.Float32).alias(c)
        for c in features
    ]
    return frame.select(cols).fill_null(float("nan")).to_numpy()


def _threads(rows: int, allowed: int) -> int:
    """LightGBM threads: one below ``PARALLEL_ROWS`` rows. OpenMP threads spin while they wait;
    on a busy machine two threads on a small problem measured 60x slower than one (30 s vs 0.5 s
    for 7,600 rows x 100 rounds)."""
    return max(1, allowed) if rows >= PARALLEL_ROWS else 1


def _window_days(data: TrainData, start: datetime | None) -> int:
    """Length of the validation window in whole days (at least 1): the horizon of 'recent'."""
    end = data.cutoff if data.cutoff is not None else data.interactions.get_column(T).max()
    if start is None or end is None:
        return 30
    return max(1, round((end - start).total_seconds() / 86_400))
