"""Board statistics, `harness compare`, `show --per-user` and `plot` through the CLI, on runs
whose per-user values and lists are set by hand (no model trained); the embedded default's
comparison is in test_submit.py (with the demo that makes its runs)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from harness.store import runs as store
from harness.store.splits import PreparedSplit, save_split

N = 400
DATASET = "hand"


def _run(home, run_id, name, ndcg, hit, lists=None, *, fingerprint="fp-hand", baseline=False):
    """An ok run with per-user ndcg@10 and hit_rate@10 given per user (users u000..u399)."""
    users = [f"u{i:03d}" for i in range(N)]
    recs_path = None
    if lists is not None:
        recs_path = f"runs/{run_id}.parquet"
        (home / "runs").mkdir(exist_ok=True)
        lists.write_parquet(home / recs_path)
    store.create_run(
        home,
        store.Run(
            run_id=run_id,
            recommender=name,
            k=10,
            dataset=DATASET,
            split="s",
            fingerprint=fingerprint,
            baseline=baseline,
            started_at=datetime(2026, 1, 1),
            recs_path=recs_path,
        ),
    )
    segment = ["cold" if i < 40 else "warm" for i in range(N)]
    per_user = pl.DataFrame(
        {"user_id": users, "segment": segment, "ndcg@10": ndcg, "hit_rate@10": hit}
    )
    means = {"ndcg@10": float(np.mean(ndcg)), "hit_rate@10": float(np.mean(hit))}
    warm = {"ndcg@10": float(np.mean(ndcg[40:])), "hit_rate@10": float(np.mean(hit[40:]))}
    store.finish_run(
        home,
        run_id,
        metrics={"all": means, "warm": warm},
        per_user=per_user,
        fields={"fit_seconds": 1.0, "recommend_seconds": 0.5},
    )


def _lists(items_per_user):
    """user u000.. gets the given items at ranks 1..n."""
    rows = [
        (f"u{u:03d}", item, rank) for u in range(N) for rank, item in enumerate(items_per_user, 1)
    ]
    return pl.DataFrame(rows, schema=["user_id", "item_id", "rank"], orient="row")


@pytest.fixture(scope="session")
def _hand_home(tmp_path_factory):
    """good > mid == mid2 (identical values) > poor, on 400 users (40 cold); built once per test
    process."""
    home = tmp_path_factory.mktemp("hand")
    save_split(
        home,
        PreparedSplit(
            dataset=DATASET,
            split="s",
            fingerprint="fp-hand",
            protocol={"protocol": "ratio"},
            cutoff=None,
            train=pl.DataFrame({"user_id": ["u000"], "item_id": ["a"]}),
            truth=pl.DataFrame({"user_id": ["u000"], "item_id": ["a"]}),
            test_users=pl.DataFrame({"user_id": ["u000"], "cold": [False]}),
            info={"is_default": True, "test_users": N},
        ),
    )
    rng = np.random.default_rng(0)
    base = rng.random(N) * 0.2
    hit_mid = (np.arange(N) % 4 == 0).astype(float)  # users 0, 4, 8, ...
    hit_good = (np.arange(N) % 2 == 0).astype(float)  # users 0, 2, 4, ...
    hit_good[0] = 0.0  # user 0: hit in mid, miss in good
    _run(home, "r-good", "good", base + 0.15, hit_good, _lists(["a", "b", "c"]))
    _run(home, "r-mid", "mid", base, hit_mid, _lists(["a", "c", "b"]), baseline=True)
    _run(home, "r-mid2", "mid2", base.copy(), hit_mid, _lists(["a", "c", "b"]))
    _run(home, "r-poor", "poor", base * 0.1, np.zeros(N))
    _run(home, "r-other", "other", base, hit_mid, fingerprint="fp-else")
    return home, {"base": base, "hit_mid": hit_mid, "hit_good": hit_good}


@pytest.fixture
def hand(home, _hand_home, clone_home):
    """The hand-made runs in the test's home; their per-user values (copies)."""
    template, values = _hand_home
    clone_home(template, home)
    return {name: array.copy() for name, array in values.items()}


def test_board_rows_carry_ci_and_bands(cli, hand):
    out = json.loads(cli("leaderboard", "--dataset", DATASET, "--json").stdout)
    rows = {r["recommender"]: r for r in out["rows"]}
    assert [r["recommender"] for r in out["rows"]][0] == "good" and len(rows) == 4
    for r in rows.values():
        lo, hi = r["ci"]["ndcg@10"]
        assert lo <= r["metrics"]["ndcg@10"] <= hi
    assert rows["good"]["rank_band"] == [1, 1]  # clearly better: strictly above
    assert rows["mid"]["rank_band"] == rows["mid2"]["rank_band"] == [2, 3]  # identical: shared
    assert rows["poor"]["rank_band"] == [4, 4]
    assert rows["mid"]["ci"] == rows["mid2"]["ci"]
    st = out["statistics"]
    assert (st["resamples"], st["seed"], st["users"], st["alpha"]) == (1000, 0, N, 0.05)
    assert st["mdd_reference"].startswith("mid ") and 0 < st["mdd"] < 0.05
    warm = json.loads(
        cli("leaderboard", "--dataset", DATASET, "--segment", "warm", "--json").stdout
    )
    assert warm["statistics"]["users"] == N - 40


def test_board_seed_and_resamples(cli, hand):
    def ci(*extra):
        out = json.loads(cli("leaderboard", "--dataset", DATASET, "--json", *extra).stdout)
        return out["rows"][0]["ci"]["ndcg@10"]

    assert ci("--seed", "3") == ci("--seed", "3") != ci("--seed", "4")
    assert ci("--ci-resamples", "50") != ci()
    res = cli("leaderboard", "--dataset", DATASET, "--ci-resamples", "0", expect=2)
    assert "--ci-resamples" in res.stderr


def test_exports_carry_cis_and_bands(cli, hand, tmp_path):
    board = json.loads(cli("leaderboard", "--dataset", DATASET, "--json").stdout)
    good = board["rows"][0]
    lo, hi = good["ci"]["ndcg@10"]
    md = cli("leaderboard", "--dataset", DATASET, "--format", "markdown").stdout
    line = next(ln for ln in md.splitlines() if "| good |" in ln)
    assert f"{good['metrics']['ndcg@10']:.4f} ±{(hi - lo) / 2:.4f}" in line and "| 1 | 1 |" in line
    assert "| 2–3 |" in md and "95% bootstrap CI" in md and "MDD" in md
    rows = list(
        csv.DictReader(
            io.StringIO(cli("leaderboard", "--dataset", DATASET, "--format", "csv").stdout)
        )
    )
    assert float(rows[0]["ndcg@10_ci_lo"]) == pytest.approx(lo)
    assert float(rows[0]["ndcg@10_ci_hi"]) == pytest.approx(hi)
    assert [(r["band_lo"], r["band_hi"]) for r in rows] == [
        ("1", "1"),
        ("2", "3"),
        ("2", "3"),
        ("4", "4"),
    ]
    out = tmp_path / "b.html"
    cli("leaderboard", "--dataset", DATASET, "--format", "html", "--out", str(out))
    page = out.read_text()
    assert f"±{(hi - lo) / 2:.4f}" in page and "<svg" in page and "</svg>" in page
    assert "<script" not in page and "<img" not in page and 'class="cut"' in page
    table = cli("leaderboard", "--dataset", DATASET).stdout
    assert "2–3" in table and "±" in table


def test_show_per_user_export_and_independent_bootstrap(cli, hand, tmp_path):
    out = tmp_path / "u.csv"
    cli("show", "r-good", "--per-user", "--out", str(out))
    frame = pl.read_csv(out)
    assert frame.columns == ["user_id", "cold", "ndcg@10", "hit_rate@10"]
    assert frame.height == N and frame["cold"].sum() == 40
    assert frame["ndcg@10"].to_numpy() == pytest.approx(hand["base"] + 0.15)
    parquet = tmp_path / "u.parquet"
    cli("show", "r-good", "--per-user", "--out", str(parquet))
    assert pl.read_parquet(parquet).equals(frame)
    # the board's CI agrees with a plain multinomial bootstrap of the exported values
    board = json.loads(cli("leaderboard", "--dataset", DATASET, "--json").stdout)
    lo, hi = board["rows"][0]["ci"]["ndcg@10"]
    x = frame["ndcg@10"].to_numpy()
    idx = np.random.default_rng(11).integers(0, len(x), (4000, len(x)))
    plain = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    assert abs(plain[0] - lo) < (hi - lo) / 4 and abs(plain[1] - hi) < (hi - lo) / 4
    shown = cli("show", "r-good").stdout
    assert "rank 1 of 4 (band 1)" in shown and "95% CI" in shown
    assert json.loads(cli("show", "r-mid", "--json").stdout)["board"]["rank_band"] == [2, 3]
    res = cli("show", "r-good", "--per-user", expect=1)
    assert res.stderr.startswith("error:") and "--out" in res.stderr
    res = cli("show", "r-good", "--per-user", "--out", str(tmp_path / "u.txt"), expect=1)
    assert "use a .parquet or .csv" in res.stderr


def test_compare_json_shape_and_hand_values(cli, hand, tmp_path):
    out = tmp_path / "changed.csv"
    res = json.loads(cli("compare", "r-good", "r-mid", "--json", "--out", str(out)).stdout)
    assert res["a"]["run_id"] == "r-good" and res["b"]["run_id"] == "r-mid"
    m = res["metrics"]["ndcg@10"]
    assert set(m) >= {"a", "b", "delta", "ci", "p_value", "wins", "ties", "losses"}
    assert m["delta"] == pytest.approx(0.15) and m["delta"] == pytest.approx(m["a"] - m["b"])
    assert 0.15 - 1e-6 <= m["ci"][0] <= m["ci"][1] <= 0.15 + 1e-6  # every user +0.15
    assert m["p_value"] < 0.001 and (m["wins"], m["ties"], m["losses"]) == (N, 0, 0)
    # from B to A: mid hits multiples of 4, good even users but 0: user 0 lost, 2, 6, 10, ... won
    assert res["hit_to_miss"] == 1 and res["miss_to_hit"] == N // 4
    changed = pl.read_csv(out)
    assert changed.filter(pl.col("change") == "hit_to_miss")["user_id"].to_list() == ["u000"]
    assert changed.height == 1 + N // 4
    # lists a,b,c vs a,c,b for every user: jaccard@10 = 1; RBO by hand (X_1 = 1, X_2 = 1, X_3 = 3)
    p = 0.9
    assert res["overlap"]["jaccard@10"] == pytest.approx(1.0)
    assert res["overlap"]["rbo"] == pytest.approx(p**3 + (1 - p) / p * (p + p**2 / 2 + p**3))


def test_compare_identical_runs(cli, hand):
    res = json.loads(cli("compare", "r-mid", "r-mid2", "--json").stdout)
    m = res["metrics"]["ndcg@10"]
    assert m["delta"] == 0 and m["ci"] == [0, 0] and m["p_value"] == 1
    assert (m["wins"], m["ties"], m["losses"]) == (0, N, 0)
    assert res["overlap"] == {"jaccard@10": 1.0, "rbo": pytest.approx(1.0)}
    warm = json.loads(cli("compare", "r-good", "r-mid", "--segment", "warm", "--json").stdout)
    assert warm["users"] == N - 40 and warm["metrics"]["ndcg@10"]["wins"] == N - 40
    text = cli("compare", "r-good", "r-mid").stdout
    assert "ndcg@10" in text and "+0.1500" in text and "W/T/L" in text


def test_compare_refuses_what_cannot_be_paired(cli, hand):
    res = cli("compare", "r-good", "r-other", expect=1)
    assert res.stderr.startswith("error:") and "fingerprints differ" in res.stderr
    res = cli("compare", "r-good", "r-mid", "--metric", "recall@10", expect=1)
    assert "recall@10" in res.stderr and "ndcg@10" in res.stderr
    res = cli("compare", "r-good", "nope", expect=1)
    assert "not found" in res.stderr


def test_plot_writes_png_and_svg(cli, hand, tmp_path):
    for name in ("b.png", "b.svg"):
        cli("plot", "--dataset", DATASET, "--out", str(tmp_path / name))
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (tmp_path / "b.svg").read_text()
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    res = cli("plot", "--dataset", DATASET, "--out", str(tmp_path / "b.pdf"), expect=1)
    assert "use a .png or .svg" in res.stderr


def test_data_info_gives_the_minimal_detectable_difference(cli, hand):
    from harness.stats import minimal_detectable_difference

    info = json.loads(cli("data", "info", DATASET, "--json").stdout)["detectable_difference"]
    # the reference is the best baseline (no popular here): mid, whose values are `base`
    assert info["reference"].startswith("mid ") and not info["bound"]
    sd = np.std(hand["base"], ddof=1)
    assert info["value"] == pytest.approx(minimal_detectable_difference(hand["base"]))
    assert info["value"] == pytest.approx((1.959964 + 0.841621) * sd / np.sqrt(N), rel=1e-5)
    assert "detectable ndcg@10" in cli("data", "info", DATASET).stdout


def _as_stored_before_files(home, run_id: str) -> None:
    """Move a run's per-user values back into run_user_metrics, as homes stored them before the
    per-user file (migration 6): a DOUBLE[] per user, NULL user_values_path."""
    with store.connect(home) as con:
        names, path = con.sql(
            "SELECT user_metric_names, user_values_path FROM runs WHERE run_id = ?",
            params=[run_id],
        ).fetchall()[0]
        rows = pl.read_parquet(home / path).select(
            pl.lit(run_id).alias("run_id"),
            "user_id",
            "segment",
            pl.concat_list(names).alias("metric_values"),
        )
        con.register("old_rows", rows)
        con.execute("INSERT INTO run_user_metrics SELECT * FROM old_rows")
        con.execute("UPDATE runs SET user_values_path = NULL WHERE run_id = ?", [run_id])
    (home / path).unlink()


def test_runs_stored_before_the_per_user_files_read_the_same(cli, home, hand):
    board = json.loads(cli("leaderboard", "--dataset", DATASET, "--json").stdout)
    compared = json.loads(cli("compare", "r-good", "r-mid", "--json").stdout)
    per_user = store.user_metrics(home, "r-good")
    assert per_user.columns == ["user_id", "segment", "ndcg@10", "hit_rate@10"]
    for run_id in ("r-good", "r-mid"):  # one old run beside new ones, then two
        _as_stored_before_files(home, run_id)
        assert json.loads(cli("leaderboard", "--dataset", DATASET, "--json").stdout) == board
        assert json.loads(cli("compare", "r-good", "r-mid", "--json").stdout) == compared
    assert store.user_metrics(home, "r-good").equals(per_user)
    store.delete_run(home, "r-poor")  # a new-style run: its file goes with it
    assert not (home / "runs" / "r-poor.users.parquet").exists()
