"""The Python API (harness.prepare/score/submit/leaderboard/compare): the same numbers as the
command line, frames from polars and pandas, notebook-defined models through the sandbox, and
one-line errors for what cannot be scored or serialised."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import harness
from harness.api import TrainData, batches, mask_seen, recommendations_frame, top_k
from harness.errors import ConfigError, DataError, ValidationError

TRUTH = pl.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 12, 13]})
RECS = pl.DataFrame(
    {"user_id": [1, 1, 2, 2], "item_id": [10, 99, 13, 12], "score": [0.9, 0.5, 0.7, 0.6]}
)


class TopSeen:
    """Defined in a test module that no distribution installs: it must travel by value."""

    def __init__(self, boost: float = 1.0):
        self.boost = boost

    def fit(self, data: TrainData) -> None:
        self.data = data
        self.popularity = data.item_popularity.astype(np.float32) * self.boost

    def recommend(self, users: pl.Series, k: int) -> pl.DataFrame:
        rows = self.data.user_index(users)
        frames = []
        for part in batches(users.len(), 512):
            scores = np.tile(self.popularity, (part.stop - part.start, 1))
            mask_seen(scores, self.data.matrix, rows[part])
            idx, top = top_k(scores, k)
            frames.append(recommendations_frame(users[part], idx, top, self.data.item_ids))
        return pl.concat(frames)


def test_score_by_hand_from_polars_and_pandas():
    # user 1: hit at rank 1 of 2 relevant -> recall@2 = 1/2, ndcg@2 = 1/(1 + 1/log2(3));
    # user 2: hit at rank 2 (item 12 scored below 13) of 1 relevant -> ndcg@2 = 1/log2(3);
    # user 3: no list -> 0. Means over the 3 truth users.
    expected_recall = (0.5 + 1 + 0) / 3
    expected_ndcg = (1 / (1 + 1 / np.log2(3)) + 1 / np.log2(3) + 0) / 3
    for recs, truth in ((RECS, TRUTH), (RECS.to_pandas(), TRUTH.to_pandas())):
        scores = harness.score(recs, truth, k=[1, 2])
        assert scores["recall@2"] == pytest.approx(expected_recall, abs=1e-12)
        assert scores["ndcg@2"] == pytest.approx(expected_ndcg, abs=1e-12)
        assert scores["precision@1"] == pytest.approx(1 / 3, abs=1e-12)
    tidy = scores.to_polars()
    assert tidy.columns == ["metric", "k", "segment", "value"]
    ndcg = tidy.filter((pl.col("metric") == "ndcg") & (pl.col("segment") == "all"))
    assert ndcg.get_column("k").to_list() == [1, 2]
    assert "<th>@2</th>" in scores._repr_html_() and "<td>ndcg</td>" in scores._repr_html_()
    assert scores.to_pandas().shape == (tidy.height, 4)


def test_score_equals_the_command_line(tmp_path, cli):
    RECS.write_parquet(tmp_path / "recs.parquet")
    TRUTH.write_parquet(tmp_path / "truth.parquet")
    out = cli(
        "score",
        "--recs",
        str(tmp_path / "recs.parquet"),
        "--truth",
        str(tmp_path / "truth.parquet"),
        "--k",
        "1",
        "--k",
        "2",
        "--json",
    )
    from_cli = json.loads(out.stdout)["segments"]
    from_api = harness.score(tmp_path / "recs.parquet", tmp_path / "truth.parquet", k=(1, 2))
    assert from_api.to_dict() == from_cli


def test_pandas_frames_that_would_be_cast_silently_are_errors():
    indexed = RECS.to_pandas().set_index("user_id")
    with pytest.raises(DataError, match="recs: user_id is in the frame's index.*reset_index"):
        harness.score(indexed, TRUTH)
    mixed = TRUTH.to_pandas().astype({"item_id": object})
    mixed.loc[0, "item_id"] = "10"  # one string among integers
    with pytest.raises(DataError, match="truth: column 'item_id' holds mixed Python types"):
        harness.score(RECS, mixed)
    with pytest.raises(DataError, match="recs: expected a polars or pandas DataFrame, got dict"):
        harness.score({"user_id": [1]}, TRUTH)


def test_a_score_breaking_the_file_contract_is_the_same_error_as_on_the_command_line():
    duplicated = pl.concat([RECS, RECS.head(1)])
    with pytest.raises(ValidationError, match="recs: item listed twice for one user at row 1 "):
        harness.score(duplicated, TRUTH)


@pytest.fixture
def prepared(home, embedded):
    return harness.prepare(embedded, home=home)  # already prepared: the copy is found as it is


def test_prepare_gives_the_training_part_and_never_the_truth(prepared):
    train = prepared.train()
    assert {"user_id", "item_id", "timestamp"} <= set(train.columns)
    assert train.height == prepared.info["train_rows"]
    assert prepared.test_users().height == prepared.info["test_users"]
    assert not any("truth" in name for name in dir(prepared) if not name.startswith("_"))
    data = prepared.train_data()
    assert data.n_users == train.get_column("user_id").n_unique()
    assert "ml-latest-small" in prepared._repr_html_()


def test_submit_by_name_gives_the_numbers_of_the_command_line(prepared, cli, home):
    api_run = harness.submit("popular", dataset="ml-latest-small", k=20, progress=False)
    out = cli("submit", "popular", "--dataset", "ml-latest-small", "--k", "20", "--json")
    cli_run = json.loads(out.stdout)
    assert api_run.status == "ok"
    assert api_run.record.segments == cli_run["segments"]
    assert api_run["ndcg@10"] == cli_run["metrics"]["ndcg@10"]


def test_a_model_defined_here_runs_in_the_sandbox_and_joins_the_board(prepared, home):
    run = harness.submit(TopSeen(boost=2.0), dataset="ml-latest-small", k=20, progress=False)
    assert run.status == "ok" and run.record.sandbox == "bwrap"
    assert run.record.recommender == "TopSeen" and run.record.parameters == {"boost": "2.0"}
    popular = harness.submit("popular", dataset="ml-latest-small", k=20, progress=False)
    assert popular.rank_band is not None and popular.ci[0] <= popular["ndcg@10"] <= popular.ci[1]
    assert "band" in popular._repr_html_() and "95% CI" in popular._repr_html_()
    # the same ranking as the popular baseline (a constant boost changes no order)
    assert run["ndcg@10"] == pytest.approx(popular["ndcg@10"], abs=1e-12)
    board = harness.leaderboard("ml-latest-small")
    assert set(board.to_polars().get_column("run_id")) >= {run.run_id, popular.run_id}
    assert run.run_id in board._repr_html_()
    assert board.to_pandas().shape[0] == len(board.board.rows)
    per_user = run.per_user()
    assert per_user.height == prepared.info["test_users"]


def test_a_class_is_built_with_its_params_and_bad_params_are_one_line_errors(prepared):
    with pytest.raises(ConfigError, match="TopSeen: .*unexpected keyword argument 'factors'"):
        harness.submit(TopSeen, params={"factors": 3}, dataset="ml-latest-small")
    with pytest.raises(
        ConfigError,
        match="object has no fit\\(\\) method: a model needs fit\\(data\\) and recommend",
    ):
        harness.submit(object(), dataset="ml-latest-small")


def test_what_cannot_be_pickled_is_named(prepared, tmp_path):
    model = TopSeen()
    model.log = open(tmp_path / "log.txt", "w")  # noqa: SIM115 - the point of the test
    try:
        with pytest.raises(
            ConfigError, match="cannot be serialised.*attribute 'log' \\(TextIOWrapper\\)"
        ):
            harness.submit(model, dataset="ml-latest-small")
    finally:
        model.log.close()
    torch = pytest.importorskip("torch")
    model = TopSeen()
    model.weights = torch.empty(3, device="meta")  # not on the CPU, as a CUDA tensor would be
    with pytest.raises(
        ConfigError, match="attribute 'weights' holds tensors on meta.*\\.cpu\\(\\)"
    ):
        harness.submit(model, dataset="ml-latest-small")
