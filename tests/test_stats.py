"""harness.stats: bootstrap CIs, paired randomization test, Holm, rank bands, list overlap."""

from __future__ import annotations

import itertools
import math

import numpy as np
import polars as pl
import pytest

from harness import stats


def test_ci_contains_the_mean_and_narrows_with_users():
    rng = np.random.default_rng(0)
    small = rng.random((50, 1))
    big = rng.random((5000, 1))
    ci_small = stats.board_statistics(small)["ci"][0]
    ci_big = stats.board_statistics(big)["ci"][0]
    assert ci_small[0] < small.mean() < ci_small[1]
    assert ci_big[0] < big.mean() < ci_big[1]
    # width ~ 2 * 1.96 * sd / sqrt(n): uniform sd = 0.2887
    assert ci_big[1] - ci_big[0] == pytest.approx(2 * 1.96 * 0.2887 / math.sqrt(5000), rel=0.15)
    assert (ci_small[1] - ci_small[0]) > 5 * (ci_big[1] - ci_big[0])


def test_constant_values_have_a_point_interval():
    ci = stats.board_statistics(np.full((20, 2), 0.25))["ci"]
    assert np.allclose(ci, 0.25)
    # two users: a quarter of the resamples keep nobody; they must not read as a mean of 0
    assert np.allclose(stats.board_statistics(np.full((2, 1), 0.25))["ci"], 0.25)


def test_identical_runs_delta_zero_p_one_same_band():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    [row] = stats.paired_comparison(a, a.copy())
    assert row["delta"] == 0 and row["ci"] == [0.0, 0.0] and row["p_value"] == 1.0
    assert (row["wins"], row["ties"], row["losses"]) == (0, 300, 0)
    board = stats.board_statistics(np.stack([a, a, a], axis=1))
    assert board["rank_band"].tolist() == [[1, 3], [1, 3], [1, 3]]
    assert (board["p_values"] == 1).all()


def test_clearly_better_run_has_a_band_strictly_above():
    rng = np.random.default_rng(2)
    base = rng.random(400)
    values = np.stack([base + 0.2, base + rng.normal(0, 0.01, 400), base], axis=1)
    board = stats.board_statistics(values)
    bands = board["rank_band"].tolist()
    assert bands[0] == [1, 1]  # better than both others
    assert bands[1] == [2, 3] and bands[2] == [2, 3]  # 0.0005 apart in noise 0.01: a tie
    assert board["significant"][0, 1] and board["significant"][0, 2]
    assert not board["significant"][1, 2]


def test_paired_comparison_by_hand():
    a = np.array([1.0, 0.5, 0.0, 0.2])
    b = np.array([0.0, 0.0, 0.0, 0.2])
    [row] = stats.paired_comparison(a, b, resamples=4000)
    assert row["a"] == pytest.approx(0.425) and row["b"] == pytest.approx(0.05)
    assert row["delta"] == pytest.approx(0.375)
    assert (row["wins"], row["ties"], row["losses"]) == (2, 2, 0)
    # differences (1, 0.5, 0, 0): of the 16 sign patterns, the 8 with equal signs on the first
    # two users reach |sum| = 1.5, the others 0.5
    assert row["p_value"] == pytest.approx(0.5, abs=0.03)
    # the resampled deltas lie between the smallest and the largest per-user difference
    assert 0.0 <= row["ci"][0] <= row["delta"] <= row["ci"][1] <= 1.0


def test_randomization_p_matches_exact_enumeration():
    rng = np.random.default_rng(3)
    d = rng.normal(0.3, 1.0, 12)
    signs = np.array(list(itertools.product([-1, 1], repeat=12)))
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    [row] = stats.paired_comparison(d, np.zeros(12), resamples=20000, seed=5)
    assert row["p_value"] == pytest.approx(exact, abs=0.01)


def test_p_beyond_resolution_comes_from_the_normal_limit():
    d = np.random.default_rng(4).normal(0.1, 1.0, 2000)
    [row] = stats.paired_comparison(d, np.zeros(2000), resamples=200)
    z = abs(d.mean()) / (math.sqrt(d @ d) / 2000)  # sign-flip sd of the mean: sqrt(sum d^2)/n
    assert 0 < row["p_value"] < 1 / 201
    assert row["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-3)


def test_bootstrap_ci_agrees_with_a_plain_multinomial_bootstrap():
    rng = np.random.default_rng(6)
    x = rng.exponential(0.1, 3000)
    ours = stats.board_statistics(x[:, None], resamples=2000, seed=1)["ci"][0]
    idx = np.random.default_rng(9).integers(0, len(x), (2000, len(x)))
    plain = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    width = ours[1] - ours[0]
    assert abs(ours[0] - plain[0]) < width / 4 and abs(ours[1] - plain[1]) < width / 4


def test_seeded_and_independent_of_threads():
    x = np.random.default_rng(7).random((5000, 3))
    one = stats.resample(x, 300, seed=3, threads=1)
    two = stats.resample(x, 300, seed=3, threads=2)
    assert np.array_equal(one.means, two.means) and np.array_equal(one.flips, two.flips)
    other = stats.resample(x, 300, seed=4)
    assert not np.array_equal(one.means, other.means)


@pytest.mark.parametrize("users", [1, 7, 64, 5000, 20_001])
def test_the_compiled_sums_draw_the_same_resamples(monkeypatch, users):
    """The compiled kernel (harness.kernels.bit_sums, large boards) sums the same bits as the
    float32 product: the same users kept in every resample (so the same counts), sums equal to
    float32 rounding, whatever the padding of the last chunk; and each sum checked by hand
    against the bits for a small board."""
    x = np.random.default_rng(8).random((users, 3))
    ways = {}
    for way, cells in (("numpy", None), ("compiled", 0)):
        monkeypatch.setattr(stats, "COMPILED_FROM_CELLS", cells)
        ways[way] = stats.resample(x, 300, seed=2)
    assert np.allclose(ways["compiled"].means, ways["numpy"].means, rtol=1e-5, atol=1e-6)
    # sums over all users (the float32 product rounds at about 1e-7 of them)
    assert np.allclose(ways["compiled"].flips, ways["numpy"].flips, rtol=0, atol=1e-6 * users)
    if users <= 64:  # bits by hand: user j is bit 7 - j % 8 of byte j // 8 of the raw words
        raw = np.random.default_rng([2, 0]).bit_generator.random_raw(300)
        bits = np.unpackbits(raw.reshape(300, 1).view(np.uint8), axis=1)[:, :users]
        sums = bits @ x
        kept = bits.sum(axis=1)
        expected = np.where(kept[:, None] > 0, sums / np.maximum(kept, 1)[:, None], x.mean(axis=0))
        assert np.allclose(ways["compiled"].means, expected, rtol=1e-6)


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert stats.holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm(np.array([0.5, 0.9])).tolist() == pytest.approx([1.0, 1.0])


def test_rank_bands_by_hand():
    means = np.array([0.3, 0.2, 0.19, 0.1])
    sig = np.zeros((4, 4), dtype=bool)
    for a, b in [(0, 1), (0, 2), (0, 3), (1, 3), (2, 3)]:  # 1 and 2 tie
        sig[a, b] = sig[b, a] = True
    assert stats.rank_bands(means, sig).tolist() == [[1, 1], [2, 3], [2, 3], [4, 4]]


def test_minimal_detectable_difference_by_hand():
    x = np.array([0.0, 1.0] * 50)  # sd (ddof 1) = 0.5025
    expected = (1.959964 + 0.841621) * np.std(x, ddof=1) / 10
    assert stats.minimal_detectable_difference(x) == pytest.approx(expected, rel=1e-5)


def _lists(rows):
    return pl.DataFrame(rows, schema=["user_id", "item_id", "rank"], orient="row")


def test_rbo_and_jaccard_by_hand():
    a = _lists([(1, "x", 1), (1, "y", 2), (1, "z", 3)])
    b = _lists([(1, "x", 1), (1, "z", 2), (1, "y", 3)])
    # X_1 = 1, X_2 = 1 ({x,y} & {x,z}), X_3 = 3; RBO_ext = X_3/3 p^3 + (1-p)/p (X_1 p + X_2/2 p^2 + X_3/3 p^3)
    p = 0.9
    hand = p**3 + (1 - p) / p * (p + p**2 / 2 + p**3)
    out = stats.list_overlap(a, b, k=2)
    assert out["rbo"] == pytest.approx(hand) and hand == pytest.approx(0.955, abs=1e-3)
    assert out["jaccard@2"] == pytest.approx(1 / 3)  # {x,y} vs {x,z}
    same = stats.list_overlap(a, a, k=3)
    assert same == {"jaccard@3": 1.0, "rbo": pytest.approx(1.0)}
    disjoint = stats.list_overlap(a, _lists([(1, "q", 1), (1, "r", 2), (1, "s", 3)]), k=3)
    assert disjoint == {"jaccard@3": 0.0, "rbo": 0.0}
    # two users: the mean over users
    two = stats.list_overlap(
        pl.concat([a, a.with_columns(user_id=pl.lit(2, dtype=pl.Int64))]),
        pl.concat([b, a.with_columns(user_id=pl.lit(2, dtype=pl.Int64))]),
        k=2,
    )
    assert two["jaccard@2"] == pytest.approx((1 / 3 + 1) / 2)
    assert two["rbo"] == pytest.approx((hand + 1) / 2)
