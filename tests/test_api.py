"""The plugin contract's helpers: index maps, the CSR matrix, top-k, seen-item masking."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from harness.api import TrainData, batches, mask_seen, recommendations_frame, top_k


def _data(user_ids, item_ids, weights=None) -> TrainData:
    n = len(user_ids)
    return TrainData(
        pl.DataFrame(
            {
                "user_id": user_ids,
                "item_id": item_ids,
                "timestamp": pl.Series([None] * n, dtype=pl.Datetime("us")),
                "weight": pl.Series(weights or [1.0] * n, dtype=pl.Float32),
            }
        )
    )


def test_index_maps_are_sorted_and_unknown_ids_map_to_minus_one():
    data = _data([30, 10, 10, 20], [7, 5, 7, 9])
    assert data.user_ids.to_list() == [10, 20, 30]
    assert data.item_ids.to_list() == [5, 7, 9]
    assert data.user_index(pl.Series([20, 99, 10])).tolist() == [1, -1, 0]
    assert data.item_index(pl.Series([9, 6])).tolist() == [2, -1]


def test_string_ids_map_too():
    data = _data(["u2", "u1"], ["b", "a"])
    assert data.user_index(pl.Series(["u1", "zz", "u2"])).tolist() == [0, -1, 1]


def test_matrix_sums_duplicate_weights_and_popularity_counts_distinct_users():
    data = _data([1, 1, 1, 2], [10, 20, 10, 10], [1.0, 2.0, 0.5, 1.0])
    assert data.matrix.toarray().tolist() == [[1.5, 2.0], [1.0, 0.0]]
    assert data.item_popularity.tolist() == [2, 1]


def test_top_k_orders_by_score_then_index_and_never_prefers_masked():
    scores = np.array([[0.1, 0.5, 0.5, -np.inf, 0.2], [1.0, 2.0, 3.0, 4.0, 5.0]])
    idx, vals = top_k(scores, 3)
    assert idx.tolist() == [[1, 2, 4], [4, 3, 2]]
    assert vals.tolist() == [[0.5, 0.5, 0.2], [5.0, 4.0, 3.0]]
    idx, _ = top_k(scores, 10)  # k larger than the catalogue
    assert idx.shape == (2, 5)


@pytest.mark.parametrize("seed", range(5))
def test_top_k_agrees_with_full_sort(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 5, size=(7, 40)).astype(np.float64)  # many ties
    idx, _ = top_k(scores, 6)
    for row in range(7):
        expected = sorted(range(40), key=lambda j: (-scores[row, j], j))[:6]
        assert idx[row].tolist() == expected


def test_mask_seen_masks_only_warm_rows_and_frame_drops_masked():
    data = _data([1, 1, 2], [10, 20, 30])
    scores = np.zeros((2, 3))
    mask_seen(scores, data.matrix, np.array([0, -1]))
    assert np.isneginf(scores[0, :2]).all() and scores[0, 2] == 0
    assert (scores[1] == 0).all()
    idx, vals = top_k(scores, 2)
    frame = recommendations_frame(pl.Series([1, 99]), idx, vals, data.item_ids)
    assert frame.to_dicts() == [
        {"user_id": 1, "item_id": 30, "score": 0.0},
        {"user_id": 99, "item_id": 10, "score": 0.0},
        {"user_id": 99, "item_id": 20, "score": 0.0},
    ]


def test_batches_cover_the_range_once():
    assert [(s.start, s.stop) for s in batches(7, 3)] == [(0, 3), (3, 6), (6, 7)]
    assert list(batches(0, 3)) == []


def test_train_data_is_immutable_and_owns_its_frames():
    import dataclasses

    frame = pl.DataFrame(
        {
            "user_id": [1, 2],
            "item_id": [5, 6],
            "timestamp": pl.Series([None, None], dtype=pl.Datetime("us")),
            "weight": pl.Series([1.0, 1.0], dtype=pl.Float32),
        }
    )
    data = TrainData(frame)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.interactions = frame.head(1)  # type: ignore[misc]
    frame[0, "item_id"] = 6  # the caller's frame changes in place; the model's view does not
    assert data.interactions["item_id"].to_list() == [5, 6]
    assert data.matrix.toarray().tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_api_reexports_the_kit():
    import harness.api as api
    import harness.kit as kit

    assert set(kit.__all__) - {"format_progress"} <= set(api.__all__)
    assert all(getattr(api, name) is getattr(kit, name) for name in kit.__all__)
